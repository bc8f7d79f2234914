package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// checkedDB is a migrated test database with one seat sold, one held and one user who only topped up,
// built through the store as the service would build it.
type checkedDB struct {
	url   string
	store *db.Store
	sql   *sqlx.DB // the same database, to break rows by hand
	buyer string   // the user who bought seat 1
}

func newCheckedDB(t *testing.T) checkedDB {
	t.Helper()
	ctx := t.Context()
	url := dbtest.NewURL(t)
	store, err := db.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	_, err = store.Migrate(ctx)
	require.NoError(t, err)

	date := time.Date(2026, 12, 24, 19, 0, 0, 0, time.UTC)
	code := "CHK-" + uuid.NewString()[:8]
	require.NoError(t, store.CreateConcert(ctx, db.NewConcert{
		Code: code, Title: "Check", MaxActive: 5, Dates: []db.NewConcertDate{{Date: date, Seats: 3, Price: 2_500}},
	}))
	book := func(topUp int64, seat int) (user, session string) {
		u, err := store.CreateUser(ctx)
		require.NoError(t, err)
		_, err = store.TopUp(ctx, u.UUID, topUp)
		require.NoError(t, err)
		id := uuid.NewString()
		_, _, err = store.JoinQueue(ctx, db.JoinParams{
			SessionID: id, WorkflowID: "session-" + id, ConcertCode: code, UserUUID: u.UUID, AdmissionWindow: time.Minute,
		})
		require.NoError(t, err)
		_, err = store.HoldSeat(ctx, booking.Hold{
			SessionID: id, ConcertCode: code, ConcertDate: date, SeatNumber: seat, ReservationID: uuid.NewString(), Window: time.Minute,
		})
		require.NoError(t, err)
		return u.UUID, id
	}
	buyer, paying := book(10_000, 1)
	_, err = store.Pay(ctx, paying)
	require.NoError(t, err)
	book(1_000, 2)
	conn, err := sqlx.Open("postgres", url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return checkedDB{url: url, store: store, sql: conn, buyer: buyer}
}

// runCheckCmd runs `concert check` with args and returns what it printed.
func runCheckCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(t.Context(), append([]string{"check"}, args...), &out)
	return out.String(), err
}

func TestCheckReportsOKOnAHealthyDatabase(t *testing.T) {
	t.Parallel()
	d := newCheckedDB(t)

	out, err := runCheckCmd(t, "--database-url", d.url)

	require.NoError(t, err, out)
	assert.Equal(t, "OK: 2 users, 1 seat sold, 1 payment, ledger balanced (8500 won in 3 rows); 1 seat held, 2 sessions; hold grace 1m0s\n", out)
}

func TestCheckFailsAndNamesTheInvariantWhenALedgerRowIsChanged(t *testing.T) {
	t.Parallel()
	d := newCheckedDB(t)
	_, err := d.sql.ExecContext(t.Context(),
		`UPDATE ledger SET delta = delta - 10 WHERE user_uuid = $1 AND kind = 'TOPUP'`, d.buyer)
	require.NoError(t, err)

	out, err := runCheckCmd(t, "--database-url", d.url)

	require.ErrorIs(t, err, errInvariantsBroken)
	assert.Contains(t, out, "FAIL: 1 invariant violation in 2 users")
	assert.Contains(t, out, "ledger off by 10 (balances 8500, ledger sum 8490)")
	assert.Contains(t, out, "\nFAIL balance-equals-ledger user "+d.buyer+": balance 7500 != ledger sum 7490\n")
}

func TestCheckJSONReportParsesAndListsTheViolations(t *testing.T) {
	t.Parallel()
	d := newCheckedDB(t)
	parse := func(out string) checkReport {
		t.Helper()
		var r checkReport
		require.NoError(t, json.Unmarshal([]byte(out), &r), out)
		return r
	}

	out, err := runCheckCmd(t, "--database-url", d.url, "--json", "--hold-grace", "30s")
	require.NoError(t, err, out)
	healthy := parse(out)
	assert.True(t, healthy.OK)
	assert.Equal(t, "30s", healthy.HoldGrace)
	assert.Equal(t, checkSummary{
		Users: 2, Sessions: 2, SeatsSold: 1, SeatsHeld: 1, Payments: 1, Paid: 2_500, LedgerRows: 3,
		LedgerSum: 8_500, Balances: 8_500, LedgerBalanced: true,
	}, healthy.Summary)
	assert.NotNil(t, healthy.Violations, "an empty list, not null")
	assert.Empty(t, healthy.Violations)

	_, err = d.sql.ExecContext(t.Context(), `DELETE FROM ledger WHERE kind = 'PAYMENT'`)
	require.NoError(t, err)
	out, err = runCheckCmd(t, "--database-url", d.url, "--json")
	require.ErrorIs(t, err, errInvariantsBroken)
	broken := parse(out)
	assert.False(t, broken.OK)
	assert.False(t, broken.Summary.LedgerBalanced)
	var invariants []string
	for _, v := range broken.Violations {
		invariants = append(invariants, v.Invariant)
		assert.NotEmpty(t, v.Subject)
		assert.NotEmpty(t, v.Detail)
	}
	assert.ElementsMatch(t, []string{db.InvariantBalanceEqualsLedger, db.InvariantPaymentAmountMatchesLedger}, invariants)
}

func TestCheckRefusesADatabaseWithoutSchemaAndLeavesItUntouched(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)

	out, err := runCheckCmd(t, "--database-url", url)

	require.Error(t, err)
	assert.Contains(t, err.Error(), "schema is missing")
	assert.Contains(t, err.Error(), "concert migrate")
	assert.NotContains(t, out, "OK")
	var tables int
	conn, err := sqlx.Open("postgres", url)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.GetContext(t.Context(), &tables,
		`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`))
	assert.Zero(t, tables, "check must not migrate")
}

func TestCheckReadsTheDatabaseURLFromTheEnvironment(t *testing.T) {
	// t.Setenv: not parallel.
	d := newCheckedDB(t)
	t.Setenv(envDatabaseURL, d.url)

	out, err := runCheckCmd(t)

	require.NoError(t, err, out)
	assert.Contains(t, out, "OK: 2 users")
}

func TestCheckRejectsBadArguments(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--hold-grace", "-1s"},
		{"--hold-grace", "soon"},
		{"--no-such-flag"},
		{"extra"},
	} {
		_, err := runCheckCmd(t, append([]string{"--database-url", "postgres://127.0.0.1:1/none?sslmode=disable"}, args...)...)
		assert.Error(t, err, "%v", args)
	}
}

func TestCheckFailsClearlyWhenTheDatabaseIsUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"check", "--database-url", "postgres://nobody@127.0.0.1:1/none?sslmode=disable"}, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect to database")
	assert.Empty(t, out.String())
}

package db_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

func TestCreateConcertCreatesDatesAndSeatsNumberedFromOne(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	early := time.Date(2026, 12, 24, 19, 0, 0, 0, time.UTC)
	late := time.Date(2026, 12, 25, 18, 30, 0, 0, time.UTC)
	// Dates are given out of order; the store lists them in date order.
	require.NoError(t, store.CreateConcert(t.Context(), db.NewConcert{
		Code: "XMAS", Title: "Christmas Gala", MaxActive: 3,
		Dates: []db.NewConcertDate{{Date: late, Seats: 2, Price: 90_000}, {Date: early, Seats: 4, Price: 50_000}},
	}))

	c, err := store.GetConcert(t.Context(), "XMAS")
	require.NoError(t, err)
	assert.Equal(t, "Christmas Gala", c.Title)
	assert.Equal(t, 3, c.MaxActive)
	assert.False(t, c.AdmissionPaused)

	dates, err := store.ConcertDates(t.Context(), "XMAS")
	require.NoError(t, err)
	require.Len(t, dates, 2)
	assert.WithinDuration(t, early, dates[0].Date, 0)
	assert.Equal(t, 4, dates[0].AvailableSeats)
	assert.WithinDuration(t, late, dates[1].Date, 0)
	assert.Equal(t, 2, dates[1].AvailableSeats)

	seats, err := store.Seats(t.Context(), "XMAS", early)
	require.NoError(t, err)
	assert.Equal(t, []db.Seat{
		{Number: 1, Price: 50_000, Status: seatAvailable},
		{Number: 2, Price: 50_000, Status: seatAvailable},
		{Number: 3, Price: 50_000, Status: seatAvailable},
		{Number: 4, Price: 50_000, Status: seatAvailable},
	}, seats)
	seats, err = store.Seats(t.Context(), "XMAS", late)
	require.NoError(t, err)
	assert.Equal(t, []db.Seat{{Number: 1, Price: 90_000, Status: seatAvailable}, {Number: 2, Price: 90_000, Status: seatAvailable}}, seats)
}

func TestCreateConcertRejectsDuplicatesAndStoresNothingOfThem(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	taken := newShow(t, store, 1, 3, 1_000)
	tests := []struct {
		name    string
		concert db.NewConcert
	}{
		{name: "code taken by another concert", concert: db.NewConcert{
			Code: taken.code, Title: "Impostor", MaxActive: 9,
			Dates: []db.NewConcertDate{{Date: showDate.Add(24 * time.Hour), Seats: 7, Price: 5}},
		}},
		{name: "same date twice in one concert", concert: db.NewConcert{
			Code: "TWICE", Title: "Twice", MaxActive: 1,
			Dates: []db.NewConcertDate{{Date: showDate, Seats: 1, Price: 5}, {Date: showDate, Seats: 1, Price: 5}},
		}},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				require.ErrorIs(t, store.CreateConcert(t.Context(), tt.concert), db.ErrDuplicate)
			})
		}
	})

	// The first concert is untouched, and the failed creations left no rows.
	c, err := store.GetConcert(t.Context(), taken.code)
	require.NoError(t, err)
	assert.Equal(t, "Fixture", c.Title)
	assert.Equal(t, 1, c.MaxActive)
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM concerts`))
	assert.Equal(t, 1, count(t, store, `SELECT count(*) FROM concert_dates`))
	assert.Equal(t, 3, count(t, store, `SELECT count(*) FROM seats`))
}

func TestConcertDatesAndSeatsCountLapsedHoldsAsAvailable(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 5, 1_000)
	// Seat 1 held live, seat 2 held but lapsed, seat 3 sold; seats 4 and 5 were never touched.
	exec(t, store, `UPDATE seats SET status = 'HELD', session_id = 'live', held_until = now() + interval '1 minute'
		WHERE concert_code = $1 AND seat_number = 1`, s.code)
	exec(t, store, `UPDATE seats SET status = 'HELD', session_id = 'lapsed', held_until = now() - interval '1 second'
		WHERE concert_code = $1 AND seat_number = 2`, s.code)
	exec(t, store, `UPDATE seats SET status = 'SOLD', session_id = 'buyer' WHERE concert_code = $1 AND seat_number = 3`, s.code)

	dates, err := store.ConcertDates(t.Context(), s.code)
	require.NoError(t, err)
	require.Len(t, dates, 1)
	assert.Equal(t, 3, dates[0].AvailableSeats, "seats 2, 4 and 5")

	seats, err := store.Seats(t.Context(), s.code, s.date)
	require.NoError(t, err)
	got := make([]string, 0, len(seats))
	for _, st := range seats {
		got = append(got, st.Status)
	}
	assert.Equal(t, []string{seatHeld, seatAvailable, seatSold, seatAvailable, seatAvailable}, got)
}

func TestConcertLookupsOfUnknownKeysAreNotFound(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	s := newShow(t, store, 1, 1, 1_000)
	paused := true
	tests := []struct {
		name string
		call func(t *testing.T) error
	}{
		{name: "GetConcert of unknown code", call: func(t *testing.T) error {
			_, err := store.GetConcert(t.Context(), "NOPE")
			return err
		}},
		{name: "Seats of unknown date", call: func(t *testing.T) error {
			_, err := store.Seats(t.Context(), s.code, s.date.Add(time.Hour))
			return err
		}},
		{name: "Seats of unknown concert", call: func(t *testing.T) error {
			_, err := store.Seats(t.Context(), "NOPE", s.date)
			return err
		}},
		{name: "SetAdmission of unknown code", call: func(t *testing.T) error {
			_, err := store.SetAdmission(t.Context(), "NOPE", &paused, nil)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorIs(t, tt.call(t), db.ErrNotFound)
		})
	}
}

func TestSetAdmissionChangesOnlyTheGivenFields(t *testing.T) {
	t.Parallel()
	store := dbtest.New(t)
	yes, seven := true, 7
	tests := []struct {
		name       string
		paused     *bool
		maxActive  *int
		wantPaused bool
		wantMax    int
	}{
		{name: "pause only", paused: &yes, wantPaused: true, wantMax: 2},
		{name: "max active only", maxActive: &seven, wantPaused: false, wantMax: 7},
		{name: "both", paused: &yes, maxActive: &seven, wantPaused: true, wantMax: 7},
		{name: "neither", wantPaused: false, wantMax: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newShow(t, store, 2, 1, 1_000)

			c, err := store.SetAdmission(t.Context(), s.code, tt.paused, tt.maxActive)
			require.NoError(t, err)
			assert.Equal(t, tt.wantPaused, c.AdmissionPaused)
			assert.Equal(t, tt.wantMax, c.MaxActive)

			stored, err := store.GetConcert(t.Context(), s.code)
			require.NoError(t, err)
			assert.Equal(t, c, stored, "SetAdmission returns the stored concert")
		})
	}

	t.Run("unpause", func(t *testing.T) {
		t.Parallel()
		s := newShow(t, store, 2, 1, 1_000)
		no := false
		_, err := store.SetAdmission(t.Context(), s.code, &yes, nil)
		require.NoError(t, err)
		c, err := store.SetAdmission(t.Context(), s.code, &no, nil)
		require.NoError(t, err)
		assert.False(t, c.AdmissionPaused, "false is a value, not a missing field")
	})
}

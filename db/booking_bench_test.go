package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/db/dbtest"
)

// Benchmarks of the store's hot paths during an on-sale: the seat map every admitted user reads, the hold
// every user races for, the payment, and the status poll every waiting user repeats. They run against real
// PostgreSQL like the tests (`go test -run '^$' -bench . ./db`); one iteration is one store call, and the
// set-up of each iteration (a fresh admitted session, a free seat) is not timed.

// benchDate is the performance of every benchmark concert.
var benchDate = time.Date(2027, 3, 1, 20, 0, 0, 0, time.UTC)

// benchSeatsPerConcert is the size of the concerts the hold and pay benchmarks fill one seat per iteration;
// a new one is put on sale when one is full.
const benchSeatsPerConcert = 2_000

// benchPrice is the ticket price of every benchmark concert.
const benchPrice = 50_000

// benchConcert puts a concert with one performance of seats seats on sale. Its maxActive is large, so every
// session joins ACTIVE.
func benchConcert(b *testing.B, store *db.Store, seats int) string {
	b.Helper()
	code := "B-" + uuid.NewString()[:8]
	if err := store.CreateConcert(context.Background(), db.NewConcert{
		Code: code, Title: "Benchmark", MaxActive: 1_000_000,
		Dates: []db.NewConcertDate{{Date: benchDate, Seats: seats, Price: benchPrice}},
	}); err != nil {
		b.Fatalf("create concert: %v", err)
	}
	return code
}

// benchUser registers a user with a balance that pays for every seat a benchmark can sell.
func benchUser(b *testing.B, store *db.Store) string {
	b.Helper()
	ctx := context.Background()
	u, err := store.CreateUser(ctx)
	if err != nil {
		b.Fatalf("create user: %v", err)
	}
	if _, err := store.TopUp(ctx, u.UUID, 10_000_000); err != nil {
		b.Fatalf("top up: %v", err)
	}
	return u.UUID
}

// benchSession joins a new session of user to the concert and requires that it is admitted at once.
func benchSession(b *testing.B, store *db.Store, code, user string) string {
	b.Helper()
	id := uuid.NewString()
	s, _, err := store.JoinQueue(context.Background(), db.JoinParams{
		SessionID: id, WorkflowID: "bench-" + id, ConcertCode: code, UserUUID: user, AdmissionWindow: time.Hour,
	})
	if err != nil {
		b.Fatalf("join: %v", err)
	}
	if s.Status != "ACTIVE" {
		b.Fatalf("benchmark session is %s, not ACTIVE", s.Status)
	}
	return id
}

// benchSeats hands out free seats, one per call, putting a new concert on sale when the current one is
// full. Each seat goes with a new user with a large balance, since a user has only one live session per
// concert.
type benchSeats struct {
	b     *testing.B
	store *db.Store
	code  string
	next  int
}

func (p *benchSeats) take() (code, user string, seat int) {
	if p.code == "" || p.next > benchSeatsPerConcert {
		p.code, p.next = benchConcert(p.b, p.store, benchSeatsPerConcert), 1
	}
	p.next++
	return p.code, benchUser(p.b, p.store), p.next - 1
}

// BenchmarkSeats reads a whole seat map, as every admitted user does before choosing, for performances of
// several sizes with a tenth of the seats held and a tenth sold.
func BenchmarkSeats(b *testing.B) {
	store := dbtest.New(b)
	ctx := context.Background()
	for _, size := range []int{100, 1_000, 10_000} {
		code := benchConcert(b, store, size)
		if _, err := store.SQL().ExecContext(ctx, `
UPDATE seats SET status = CASE WHEN seat_number % 10 = 1 THEN 'HELD' ELSE 'SOLD' END,
                 session_id = 'bench-' || $1 || '-' || seat_number, reservation_id = gen_random_uuid(),
                 held_until = CASE WHEN seat_number % 10 = 1 THEN now() + interval '1 hour' END
WHERE concert_code = $1 AND seat_number % 10 IN (1, 2)`, code); err != nil {
			b.Fatalf("mark seats: %v", err)
		}
		b.Run(fmt.Sprintf("seats=%d", size), func(b *testing.B) {
			for b.Loop() {
				seats, err := store.Seats(ctx, code, benchDate)
				if err != nil || len(seats) != size {
					b.Fatalf("seats: %d, %v", len(seats), err)
				}
			}
		})
		b.Run(fmt.Sprintf("seats=%d/parallel", size), func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := store.Seats(ctx, code, benchDate); err != nil {
						b.Errorf("seats: %v", err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkConcertDates reads the dates list with its available-seat counts, the first read of every
// admitted user.
func BenchmarkConcertDates(b *testing.B) {
	store := dbtest.New(b)
	ctx := context.Background()
	code := benchConcert(b, store, 1_000)
	for b.Loop() {
		if _, err := store.ConcertDates(ctx, code); err != nil {
			b.Fatalf("dates: %v", err)
		}
	}
}

// BenchmarkHoldSeat holds a free seat for a freshly admitted session: the winning path of a reserve.
func BenchmarkHoldSeat(b *testing.B) {
	store := dbtest.New(b)
	ctx := context.Background()
	pool := &benchSeats{b: b, store: store}
	for b.Loop() {
		b.StopTimer()
		code, user, seat := pool.take()
		session := benchSession(b, store, code, user)
		b.StartTimer()
		if _, err := store.HoldSeat(ctx, booking.Hold{
			SessionID: session, ConcertCode: code, ConcertDate: benchDate, SeatNumber: seat,
			ReservationID: uuid.NewString(), Window: 5 * time.Minute,
		}); err != nil {
			b.Fatalf("hold: %v", err)
		}
	}
}

// BenchmarkHoldSeatTaken asks for a seat someone else holds: the losing path of a reserve, which every
// seat race produces many of. It changes nothing, so one session serves every iteration.
func BenchmarkHoldSeatTaken(b *testing.B) {
	store := dbtest.New(b)
	ctx := context.Background()
	code := benchConcert(b, store, 10)
	owner := benchSession(b, store, code, benchUser(b, store))
	if _, err := store.HoldSeat(ctx, booking.Hold{
		SessionID: owner, ConcertCode: code, ConcertDate: benchDate, SeatNumber: 1, ReservationID: uuid.NewString(), Window: time.Hour,
	}); err != nil {
		b.Fatalf("hold: %v", err)
	}
	loser := benchSession(b, store, code, benchUser(b, store))
	for b.Loop() {
		_, err := store.HoldSeat(ctx, booking.Hold{
			SessionID: loser, ConcertCode: code, ConcertDate: benchDate, SeatNumber: 1, ReservationID: uuid.NewString(), Window: time.Hour,
		})
		if err == nil {
			b.Fatal("a held seat was held again")
		}
	}
}

// BenchmarkPay pays for a held seat: debit, payment, ledger row, seat SOLD and session PAID in one
// transaction.
func BenchmarkPay(b *testing.B) {
	store := dbtest.New(b)
	ctx := context.Background()
	pool := &benchSeats{b: b, store: store}
	for b.Loop() {
		b.StopTimer()
		code, user, seat := pool.take()
		session := benchSession(b, store, code, user)
		if _, err := store.HoldSeat(ctx, booking.Hold{
			SessionID: session, ConcertCode: code, ConcertDate: benchDate, SeatNumber: seat,
			ReservationID: uuid.NewString(), Window: 5 * time.Minute,
		}); err != nil {
			b.Fatalf("hold: %v", err)
		}
		b.StartTimer()
		if _, err := store.Pay(ctx, session); err != nil {
			b.Fatalf("pay: %v", err)
		}
	}
}

// BenchmarkQueueWaiting reads the queue snapshot of waiting rooms of several sizes and places the session at
// the back of it: what the API's read cache does at most once a ReadCacheTTL per concert, so that every
// waiting user's status poll is a binary search.
func BenchmarkQueueWaiting(b *testing.B) {
	store := dbtest.New(b)
	ctx := context.Background()
	for _, waiting := range []int{1_000, 10_000} {
		code := benchConcert(b, store, 10)
		// Each waiting session is a user of its own: user n of this concert has the UUID md5(code-n).
		if _, err := store.SQL().ExecContext(ctx, `
INSERT INTO users (uuid) SELECT md5($1 || '-' || n)::uuid FROM generate_series(1, $2::int) AS n`,
			code, waiting); err != nil {
			b.Fatalf("register the waiting users: %v", err)
		}
		if _, err := store.SQL().ExecContext(ctx, `
INSERT INTO sessions (id, workflow_id, concert_code, user_uuid, status)
SELECT 'bench-' || $1 || '-' || n, 'bench-' || $1 || '-' || n, $1, md5($1 || '-' || n)::uuid, 'WAITING'
FROM generate_series(1, $2::int) AS n`,
			code, waiting); err != nil {
			b.Fatalf("fill the waiting room: %v", err)
		}
		last := fmt.Sprintf("bench-%s-%d", code, waiting)
		b.Run(fmt.Sprintf("waiting=%d", waiting), func(b *testing.B) {
			for b.Loop() {
				sess, err := store.GetSession(ctx, last)
				if err != nil {
					b.Fatalf("session: %v", err)
				}
				q, err := store.Queue(ctx, code)
				if err != nil || q.Position(sess.Seq) != int64(waiting) {
					b.Fatalf("queue: position %d, %v", q.Position(sess.Seq), err)
				}
			}
		})
	}
}

// Package chaos proves that crashes lose nothing (issue 4, promise 3). Its test, TestChaosOnSale, builds the
// concert binary and runs the real stack as separate processes — `concert dev --temporal-only` (a
// file-backed Temporal server), `concert worker` and `concert api` — against a throwaway PostgreSQL
// database. Simulated users go through a whole on-sale over HTTP (token, waiting room, seat map, hold,
// top-up, payment; about one in five abandons its hold) while the test SIGKILLs the worker every two to
// three seconds, SIGKILLs and restarts the Temporal server once on the same port and data directory, and
// terminates every PostgreSQL connection of the database once.
//
// After the chaos stops and the windows pass, the test requires that every session has ended (in
// PostgreSQL and in Temporal, each workflow run completed with the status its row has), that no seat was
// sold twice, that no hold outlives its window, that money is conserved, that every payment a client was
// told about exists and no payment exists that nobody asked for, that every answer a client got is one the
// API contract allows, and that `concert check` passes (in a build without that command, the same checks
// in SQL stand in, and the report says so). It prints a report — sessions, outcomes, kills and restarts
// survived, client retries, anomalies — and writes it to $CONCERT_CHAOS_REPORT (default
// concert-chaos-report.txt in the system's temporary directory).
//
// A "loss" is a result the system reached that a client was not given or could not use — a hold the
// database granted but the reserve answered 409 already-holding, a payment made but answered 410. The
// report lists losses with their sessions, the test keeps the logs and saves those sessions' workflow
// histories; with CONCERT_CHAOS_STRICT=1 each loss (and each user that gave up) also fails the test.
//
// The short form (150 users for 60 seats, a 30 s storm of at least 5 worker kills; about 1.5 minutes on 2
// cores with the build, under 2 minutes inside a full `go test ./...`) runs with every `go test ./...` and
// so in .ci/run. The long form is
//
//	CONCERT_CHAOS_LONG=1 go test ./internal/chaos/ -run TestChaosOnSale -v -timeout 30m
//
// (600 users for 240 seats, a 3-minute storm of at least 40 worker kills, typically 50-60; about 4
// minutes). CONCERT_CHAOS_SESSIONS=N changes the number of users of either form (seats scale with it).
// CONCERT_CHAOS_KEEP=1 keeps the process logs and the Temporal data directory after a passing run; after
// a failing run, or one with losses, they are always kept and their path is logged. CONCERT_CHAOS_BIN=path
// runs a binary built elsewhere instead of building the working tree, and CONCERT_CHAOS_SEED fixes the
// users' choices (the chaos timing cannot be replayed).
//
// The package holds tests only: it must not be imported, and it changes nothing outside the processes and
// the database it starts.
package chaos

// Package chaos proves that crashes lose nothing (issue 4, promise 3). Its test, TestChaosOnSale, builds the
// concert binary and runs the real stack as separate processes — `concert dev --temporal-only` (a
// file-backed Temporal server), `concert worker` and `concert api` — against a throwaway PostgreSQL
// database. Simulated users go through a whole on-sale over HTTP (token, waiting room, seat map, hold,
// top-up, payment; about one in five abandons its hold) while the test SIGKILLs the worker every two to
// three seconds (the first time as a sale's opening draw commits, below), SIGKILLs the API once between
// tokens' commits and their workflows' starts (below), SIGKILLs and restarts the Temporal server once on the
// same port and data directory, and terminates every PostgreSQL connection of the database once.
//
// An order may hold up to three seats (maxSeatsPerOrder): a third of the users want two or three, half of
// them holding all at once (seatNumbers, all or none) and half holding one and adding the rest while HELD;
// each tops up the total and pays once, and the payment's 201 names every seat it bought.
//
// The opening: a third concert, CHAOS-OPENING, opens three seconds into the load (opensAt), and its fans (a
// fifth of the users, 10 to 120) all come before, so they are told to wait for it (WAITING with opensAt); at
// the opening the waiting room, a workflow on the worker, draws their order in one transaction (drawn_at) and
// admits them. Nothing dies before the opening, so the draw comes on time; from the opening on the test
// watches drawn_at and SIGKILLs the worker as soon as the draw has committed, while the step that drew is
// still telling the sessions it admitted, and records the places the draw dealt. It requires that nobody was
// admitted before the opening (no admitted_at before opens_at, and no answer said ACTIVE or HELD before it),
// that the pre-queue was drawn once (drawn_at did not move and every place dealt is kept), and that every
// session that joined before the opening, and every user told to wait for it, ended.
//
// The API crash: a token is issued by one PostgreSQL commit, and the API's starter starts the session's
// workflow a moment later, off the request path. A fifth of the way into the chaos a burst of fresh fans
// (a sixth of the users, 8 to 60) fires its token requests together at a second concert, CHAOS-BURST, which
// has a slot and a seat for each of them, so every token is admitted at the join and its workflow is left
// to the starter; every third of them takes its token and leaves. The API reaches Temporal through a TCP
// gate in the test process, which holds what the API sends from the start of the burst (a Temporal slow to
// answer keeps the starter just as busy); once half of the burst's tokens are answered the test SIGKILLs
// the API, lists the live sessions in PostgreSQL, asks Temporal directly (DescribeWorkflowExecution) which
// of them have a workflow, drops the gate's connections with what they held, and starts the API again on
// the same port. The clients ride it out by retrying (connection refused, reset, 409 idempotency key in
// progress until the dead request's lease lapses). Sessions admitted at the join that have no workflow at
// the kill are "caught in the window"; the report counts them (there are always some of the burst, or the
// test fails), and apart from them the sessions admitted by the waiting room whose notice was on its way
// and the waiting ones, which by design start their workflows with their admission. The verification
// requires that every admitted session without a workflow at the kill ended: its row in a final status
// and its workflow, started later by the fan's first reserve (Update-with-Start) or the waiting room's
// re-notification (Signal-with-Start), completed with that status; only a SOLD_OUT session may end without
// one. The report says which path started the window's workflows and how long after the kill, per concert.
//
// After the chaos stops and the windows pass, the test requires that every session has ended (in
// PostgreSQL and in Temporal, each workflow run completed with the status its row has), that no seat was
// sold twice, that no hold outlives its window, that money is conserved, that every payment a client was
// told about exists with the seats and amount its 201 named, each of those seats SOLD to the client's
// session by that payment, that the seats SOLD are as many as the payments sold (payment_seats), that no
// payment exists that nobody asked for, that every answer a client got is one the API contract allows (a
// hold names the seats asked for at their total, a payment every seat the order held at their total), and
// that `concert check` passes (the same checks in SQL run too, and stand in for it in a build without that
// command; the report says so). It prints a report — sessions, orders, outcomes, kills and restarts
// survived, what the API crash and the opening caught, client retries, anomalies — and writes it to
// $CONCERT_CHAOS_REPORT (default concert-chaos-report.txt in the system's temporary directory).
//
// A "loss" is a result the system reached that a client was not given or could not use — a hold the
// database granted but the reserve answered 409 already-holding (or order-full), or answered 200 only after
// it had lapsed (for several seats, with what other sessions had left of it), a seat paid for whose hold
// was never confirmed, a payment made but answered 410. The report lists losses with their sessions, the
// test keeps the logs and saves those sessions' workflow histories; with CONCERT_CHAOS_STRICT=1 each loss
// (and each user that gave up) also fails the test.
//
// The short form (150 users for 60 seats, a burst of 25 and 30 fans for the opening's 12 seats, a 30 s storm
// of at least 5 worker kills; about 2 minutes on 2 cores with the build) runs with every `go test ./...` and
// so in .ci/run. The long form is
//
//	CONCERT_CHAOS_LONG=1 go test ./internal/chaos/ -run TestChaosOnSale -v -timeout 30m
//
// (600 users for 240 seats, a burst of 60 and 120 fans for the opening's 48 seats, a 3-minute storm of at
// least 40 worker kills, typically 50-60; about 4 minutes). CONCERT_CHAOS_SESSIONS=N changes the number of
// users of either form (seats, the burst and the opening scale with it). CONCERT_CHAOS_KEEP=1 keeps the
// process logs and the Temporal data directory after a passing run; after a failing run, or one with losses,
// they are always kept and their path is logged. CONCERT_CHAOS_BIN=path runs a binary built elsewhere instead
// of building the working tree, and CONCERT_CHAOS_SEED fixes the users' choices (the chaos timing cannot be
// replayed).
//
// The package holds tests only: it must not be imported, and it changes nothing outside the processes and
// the database it starts.
package chaos

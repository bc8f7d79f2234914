package api

// The fuzz targets of promise 7 ("bad input gets a clear error, never a 500 or a crash"). They live in
// package api, not api_test, because FuzzTokenVerify and FuzzBodyDecoding drive the unexported decoders
// (readBody and its accessors, bearer, parseConcert) directly. For the same reason FuzzEndpoints cannot use
// internal/teststack, which imports this package (an import cycle): startFuzzStack assembles the same stack
// (a fresh PostgreSQL database, embedded Temporal, the real worker and this package's real handler on an
// httptest server) from the same parts.
//
// `go test ./api/` runs every seed (the f.Add calls and testdata/fuzz/<FuzzName>/) as a regular test;
// `go test ./api/ -run '^$' -fuzz '^FuzzEndpoints$' -fuzztime 15s` fuzzes one target.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/concert/booking"
	"github.com/ticketing/concert/internal/contract"
	"github.com/ticketing/concert/internal/metrics"
	"github.com/ticketing/concert/internal/testbackend"
	"github.com/ticketing/concert/workflows"
)

// Oracles written from the API's contract, not from its code, so a decoder that drifts from the contract
// disagrees with them.
var (
	// fuzzCanonicalInt is the JSON grammar of an integer: no sign but '-', no leading zeros, no fraction or
	// exponent.
	fuzzCanonicalInt = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
	// fuzzCanonicalUUID is the 36-character hyphenated UUID form, either case.
	fuzzCanonicalUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// fuzzConcertCode is the documented shape of a concert code.
	fuzzConcertCode = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	// fuzzLocalDateTime is the documented shape of a concert date: exactly 2026-12-24T19:00:00, no fraction, no
	// zone.
	fuzzLocalDateTime = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$`)
)

// checkProblem asserts the error contract of a Problem: a 4xx status, a known slug whose title matches, and a
// detail that tells the client what was wrong.
func checkProblem(t *testing.T, where string, p *Problem) {
	t.Helper()
	if p.Status < 400 || p.Status > 499 {
		t.Errorf("%s: problem %s has status %d, want 4xx", where, p.Type, p.Status)
	}
	slug, ok := strings.CutPrefix(p.Type, ProblemTypeBase)
	title, known := problemTitles[slug]
	if !ok || !known {
		t.Errorf("%s: problem type %q is not %s<known slug>", where, p.Type, ProblemTypeBase)
	} else if p.Title != title {
		t.Errorf("%s: problem %s has title %q, want %q", where, slug, p.Title, title)
	}
	if p.Detail == "" {
		t.Errorf("%s: problem %s has no detail", where, p.Type)
	}
}

// wantProblem asserts that p is the given status and slug.
func wantProblem(t *testing.T, where string, p *Problem, status int, slug string) {
	t.Helper()
	if p == nil {
		t.Errorf("%s: accepted, want %d %s", where, status, slug)
		return
	}
	checkProblem(t, where, p)
	if p.Status != status || p.Type != ProblemTypeBase+slug {
		t.Errorf("%s: got %d %s, want %d %s", where, p.Status, p.Type, status, slug)
	}
}

// FuzzTokenVerify checks token parsing: any string may be offered as a token without a panic; a token only
// verifies if it is exactly Sign of the session ID Verify returns, and that ID is a canonical UUID; every
// UUID round-trips through Sign and Verify, and its token is refused under another secret or with any one
// signature character changed; bearer never panics and returns a trimmed token.
func FuzzTokenVerify(f *testing.F) {
	tokens, err := NewTokens([]byte("fuzz-token-secret-0123456789"))
	if err != nil {
		f.Fatal(err)
	}
	other, err := NewTokens([]byte("another-fuzz-secret-987654321"))
	if err != nil {
		f.Fatal(err)
	}
	const id = "3f2a6c1e-8d4b-4c8e-9a51-2b7f0e9d4c11"
	good := tokens.Sign(id)
	for _, s := range []struct{ id, token string }{
		{id, good},
		{id, "Bearer " + good},
		{id, "bEaReR \t " + good + " \r\n"},
		{id, "Basic " + good},
		{id, good[:len(good)-1] + "A"},                // last signature character changed
		{id, good[:len(good)-1]},                      // signature truncated
		{id, good + "A"},                              // signature extended
		{strings.ToUpper(id), good},                   // upper-case ID, token of the lower-case one
		{id, strings.ToUpper(id) + good[len(id):]},    // upper-case ID with the lower-case ID's signature
		{id, other.Sign(id)},                          // signed with another secret
		{id, id + "." + tokens.mac(id+"x")},           // another ID's signature
		{"not-a-uuid", tokens.Sign("not-a-uuid")},     // well signed, but not a session ID
		{"{" + id + "}", tokens.Sign("{" + id + "}")}, // braced UUID, which uuid.Parse accepts
		{"urn:uuid:" + id, tokens.Sign("urn:uuid:" + id)},
		{"3f2a6c1e8d4b4c8e9a512b7f0e9d4c11", tokens.Sign("3f2a6c1e8d4b4c8e9a512b7f0e9d4c11")},
		{"00000000-0000-0000-0000-000000000000", tokens.Sign("00000000-0000-0000-0000-000000000000")},
		{id, good + "." + good},
		{id, "." + good[len(id)+1:]},
		{id, id + "."},
		{id, id},
		{"", ""},
		{"", "."},
		{"", "Bearer"},
		{"", "Bearer "},
		{"", "bearer\u00a0" + good},
		{" " + id, tokens.Sign(" " + id)},
		{id, good + "\x00"},
		{id, "\xff\xfe" + good},
		{id, strings.Repeat("a", 200) + "." + good[len(id)+1:]},
		{id, id + "." + strings.Repeat("A", 200)},
	} {
		f.Add(s.id, s.token)
	}
	f.Fuzz(func(t *testing.T, id, token string) {
		if got, err := tokens.Verify(token); err == nil {
			if want := tokens.Sign(got); want != token {
				t.Fatalf("Verify(%q) accepted it for session %q, whose token is %q", token, got, want)
			}
			if !fuzzCanonicalUUID.MatchString(got) {
				t.Fatalf("Verify(%q) returned %q, not a canonical UUID", token, got)
			}
		} else if !errors.Is(err, errBadToken) {
			t.Fatalf("Verify(%q) failed with %v, want errBadToken", token, err)
		}

		signed := tokens.Sign(id)
		back, err := tokens.Verify(signed)
		if !fuzzCanonicalUUID.MatchString(id) {
			if err == nil {
				t.Fatalf("Verify accepted Sign(%q) = %q, but %q is not a session ID", id, signed, id)
			}
		} else {
			if err != nil || back != id {
				t.Fatalf("Verify(Sign(%q)) = %q, %v; want the ID back", id, back, err)
			}
			if _, err := other.Verify(signed); err == nil {
				t.Fatalf("token %q verified under another secret", signed)
			}
			// Change one signature character, chosen by the other input so the fuzzer moves it around.
			b := []byte(signed)
			i := len(id) + 1 + len(token)%(len(b)-len(id)-1)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			if _, err := tokens.Verify(string(b)); err == nil {
				t.Fatalf("tampered token %q (from %q) verified", b, signed)
			}
			if got := bearer("Bearer " + signed); got != signed {
				t.Fatalf("bearer(\"Bearer \" + %q) = %q", signed, got)
			}
		}

		got := bearer(token)
		if got != strings.TrimSpace(got) {
			t.Fatalf("bearer(%q) = %q, which is not trimmed", token, got)
		}
		if !strings.Contains(token, got) {
			t.Fatalf("bearer(%q) = %q, which is not part of the header", token, got)
		}
	})
}

// fuzzFields are the member names the handlers read; FuzzBodyDecoding reads each of them, and every member
// the body happens to have, through every accessor.
var fuzzFields = []string{"UUID", "amount", "seatNumber", "concertDate", "concertCode", "title", "maxActive",
	"dates", "seats", "price", "paused", "reason", "actor"}

// FuzzBodyDecoding drives arbitrary bytes through readBody and then every accessor (str, integer, userID,
// date, list) and parseConcert, the decoding every endpoint does. Nothing may panic; every refusal is a
// 4xx Problem with a known slug; each decision agrees with encoding/json and strconv: readBody accepts
// exactly one JSON object of at most maxBodyBytes, integer exactly the canonical JSON integers within int64,
// str exactly the JSON strings, list exactly the arrays of objects.
func FuzzBodyDecoding(f *testing.F) {
	const u = "3f2a6c1e-8d4b-4c8e-9a51-2b7f0e9d4c11"
	for _, s := range []string{
		// What each endpoint sends when it is used right.
		`{"UUID":"` + u + `"}`,
		`{"UUID":"` + u + `","concertDate":"2026-12-24T19:00:00","seatNumber":1}`,
		`{"amount":50000}`,
		`{"concertCode":"ABC-2026","title":"A concert","maxActive":2,"dates":[{"concertDate":"2026-12-24T19:00:00","seats":3,"price":110000},{"concertDate":"2026-12-25T19:00:00","seats":1,"price":0}]}`,
		`{"paused":true,"maxActive":3}`,
		`{"reason":"customer asked","actor":"alice"}`,
		`{}`,
		// Not one JSON object.
		``, ` `, "\t\r\n", "\u00a0", "\v{}", `null`, `[]`, `[{}]`, `"{}"`, `42`, `true`, `UUID=x&amount=1`,
		`{`, `}`, `{"a":}`, `{"a":1,}`, `{'a':1}`, `{"a":1} {}`, `{"a":1}x`, `{"a":1}]`, "\xef\xbb\xbf{}",
		`{"a":"` + "\xff\xfe" + `"}`, `{"a":"\ud800"}`, `{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		// Integers: only canonical JSON integers within int64.
		`{"amount":"10"}`, `{"amount":10.0}`, `{"amount":1e3}`, `{"amount":1E+3}`, `{"amount":-0}`, `{"amount":-5}`,
		`{"amount":9223372036854775807}`, `{"amount":9223372036854775808}`, `{"amount":-9223372036854775808}`,
		`{"amount":-9223372036854775809}`, `{"amount":99999999999999999999}`, `{"amount":null}`, `{"amount":true}`,
		`{"amount":[1]}`, `{"amount":{"v":1}}`, `{"Amount":5}`, `{"amount":1,"amount":"x"}`, `{"amount":"x","amount":1}`,
		`{"amount" : 7 }`,
		// Strings, UUIDs and dates.
		`{"UUID":42}`, `{"UUID":null}`, `{"UUID":""}`, `{"UUID":"not-a-uuid"}`, `{"UUID":"` + strings.ToUpper(u) + `"}`,
		`{"UUID":"{` + u + `}"}`, `{"UUID":"urn:uuid:` + u + `"}`, `{"UUID":"3f2a6c1e8d4b4c8e9a512b7f0e9d4c11"}`,
		`{"UUID":"3f2a6c1e-8d4b-4c8e-9a51-2b7f0e9d4c1g"}`, `{"UUID":"\u0033f2a6c1e-8d4b-4c8e-9a51-2b7f0e9d4c11"}`,
		`{"concertDate":"2026-12-24T19:00:00Z"}`, `{"concertDate":"2026-12-24T19:00:00+09:00"}`,
		`{"concertDate":"2026-12-24 19:00:00"}`, `{"concertDate":"24-12-2026"}`, `{"concertDate":"2026-12-24T19:00:00.5"}`,
		`{"concertDate":"2026-02-30T19:00:00"}`, `{"concertDate":"2026-12-24T24:00:00"}`, `{"concertDate":"2026-12-24T9:00:00"}`,
		`{"concertDate":20261224}`,
		// Lists and concerts.
		`{"dates":{}}`, `{"dates":[null]}`, `{"dates":[1,2]}`, `{"dates":[[]]}`, `{"dates":"x"}`, `{"dates":[]}`,
		`{"concertCode":"no spaces","title":"t","maxActive":1,"dates":[{"concertDate":"2026-12-24T19:00:00","seats":1,"price":1}]}`,
		`{"concertCode":"A","title":"","maxActive":1,"dates":[]}`,
		`{"concertCode":"A","title":"t","maxActive":100001,"dates":[]}`,
		`{"concertCode":"A","title":"t","maxActive":1,"dates":[{"concertDate":"2026-12-24T19:00:00","seats":100001,"price":1}]}`,
		`{"concertCode":"A","title":"t","maxActive":1,"dates":[{"concertDate":"2026-12-24T19:00:00","seats":1,"price":-1}]}`,
		`{"concertCode":"A","title":"t","maxActive":1,"dates":[{"concertDate":"2026-12-24T19:00:00","seats":1,"price":1},{"concertDate":"2026-12-24T19:00:00","seats":1,"price":1}]}`,
		`{"concertCode":"A","title":"t","maxActive":1,"dates":[{"concertDate":"2026-12-24T19:00:00","seats":1,"price":1},{"concertDate":"2026-12-24T19:00:00.000000001","seats":1,"price":1}]}`,
		`{"paused":"yes"}`, `{"paused":1}`, `{"reason":"\u0000"}`,
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(""), true)
	f.Add([]byte(" \n"), true)
	f.Add([]byte("\u00a0"), true)
	f.Add([]byte(`{"UUID":"`+strings.Repeat("a", maxBodyBytes-11)+`"}`), false) // exactly maxBodyBytes
	f.Add([]byte(`{"UUID":"`+strings.Repeat("a", maxBodyBytes-10)+`"}`), false) // one byte over
	f.Add(bytes.Repeat([]byte(" "), maxBodyBytes+1), true)

	f.Fuzz(func(t *testing.T, raw []byte, optional bool) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/fuzz", bytes.NewReader(raw))
		b, p := readBody(httptest.NewRecorder(), r, optional)
		switch {
		case len(raw) > maxBodyBytes:
			wantProblem(t, "readBody of an oversized body", p, http.StatusRequestEntityTooLarge, "payload-too-large")
			return
		case len(bytes.TrimSpace(raw)) == 0 && optional: // an absent body: readBody trims Unicode spaces, not only JSON's four
			if p != nil || b == nil || len(b) != 0 {
				t.Fatalf("readBody(%q, optional) = %v, %v; want an empty body", raw, b, p)
			}
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || m == nil {
			wantProblem(t, fmt.Sprintf("readBody(%q)", raw), p, http.StatusBadRequest, "invalid-json")
			return
		}
		if p != nil || b == nil {
			t.Fatalf("readBody(%q) refused a JSON object: %v", raw, p)
		}
		checkMembers(t, b, true)
		checkParseConcert(t, b)
	})
}

// checkMembers reads the body's members through every accessor and compares each answer with encoding/json
// and strconv; nested bodies of a list are read the same way, one level down.
func checkMembers(t *testing.T, b body, nested bool) {
	t.Helper()
	names := append([]string(nil), fuzzFields...)
	for k := range b {
		if len(names) > 2*len(fuzzFields) {
			break
		}
		names = append(names, k)
	}
	for _, name := range names {
		raw, present := b[name]
		given := present && string(raw) != "null"
		where := fmt.Sprintf("member %q = %s", name, raw)

		var wantStr string
		// PostgreSQL text cannot hold U+0000, so str refuses it up front.
		strOK := given && json.Unmarshal(raw, &wantStr) == nil && !strings.ContainsRune(wantStr, 0)
		s, p := b.str(name)
		switch {
		case strOK && (p != nil || s != wantStr):
			t.Errorf("%s: str = %q, %v; want %q", where, s, p, wantStr)
		case !strOK:
			wantProblem(t, where+": str", p, http.StatusBadRequest, "invalid-request")
		}

		wantInt, err := strconv.ParseInt(string(raw), 10, 64)
		intOK := given && fuzzCanonicalInt.Match(raw) && err == nil
		n, p := b.integer(name)
		switch {
		case intOK && (p != nil || n != wantInt):
			t.Errorf("%s: integer = %d, %v; want %d", where, n, p, wantInt)
		case !intOK:
			wantProblem(t, where+": integer", p, http.StatusBadRequest, "invalid-request")
		}

		wantDate, err := time.Parse(booking.DateLayout, wantStr)
		dateOK := strOK && fuzzLocalDateTime.MatchString(wantStr) && err == nil
		d, p := b.date(name)
		switch {
		case dateOK && (p != nil || !d.Equal(wantDate) || d.Location() != time.UTC):
			t.Errorf("%s: date = %v, %v; want %v in UTC", where, d, p, wantDate)
		case !dateOK:
			wantProblem(t, where+": date", p, http.StatusBadRequest, "invalid-request")
		}

		var elems []json.RawMessage
		listOK := given && json.Unmarshal(raw, &elems) == nil
		for _, e := range elems {
			listOK = listOK && len(e) > 0 && e[0] == '{'
		}
		items, p := b.list(name)
		switch {
		case listOK && (p != nil || len(items) != len(elems)):
			t.Errorf("%s: list = %d items, %v; want %d", where, len(items), p, len(elems))
		case !listOK:
			wantProblem(t, where+": list", p, http.StatusBadRequest, "invalid-request")
		case nested:
			for i, it := range items {
				if i == 4 {
					break
				}
				checkMembers(t, it, false)
			}
		}

		if name == "UUID" {
			id, p := b.userID()
			switch uuidOK := strOK && fuzzCanonicalUUID.MatchString(wantStr); {
			case uuidOK && (p != nil || id != strings.ToLower(wantStr)):
				t.Errorf("%s: userID = %q, %v; want %q", where, id, p, strings.ToLower(wantStr))
			case !uuidOK:
				wantProblem(t, where+": userID", p, http.StatusBadRequest, "invalid-request")
			}
		}
	}
}

// checkParseConcert runs the admin's concert decoding on b: a refusal is a 400, an acceptance keeps every
// documented limit.
func checkParseConcert(t *testing.T, b body) {
	t.Helper()
	c, p := parseConcert(b)
	if p != nil {
		wantProblem(t, "parseConcert", p, http.StatusBadRequest, "invalid-request")
		return
	}
	if !fuzzConcertCode.MatchString(c.Code) || c.Title == "" || len(c.Title) > maxTitleLength ||
		c.MaxActive < 1 || c.MaxActive > maxMaxActive || len(c.Dates) == 0 || len(c.Dates) > maxDates {
		t.Fatalf("parseConcert accepted %+v", c)
	}
	seen := map[time.Time]bool{}
	for _, d := range c.Dates {
		if d.Seats < 1 || d.Seats > maxConcertSeats || d.Price < 0 || d.Price > maxTicketPrice || seen[d.Date] {
			t.Fatalf("parseConcert accepted date %+v of %+v", d, c)
		}
		seen[d.Date] = true
	}
}

// Fixtures of the FuzzEndpoints stack. Inputs name them through placeholders, which are replaced in the path
// parameter, the body and the token before the request is sent, so the fuzzer can reach past the checks
// that need a real token, user or booking.
const (
	fuzzAdminToken   = "fuzz-admin-token"
	fuzzConcert      = "FUZZ"  // maxActive 1: {active} holds the only slot, {waiting} waits
	fuzzOtherConcert = "OTHER" // {other}'s concert
	fuzzDate         = "2026-12-24T19:00:00"
	// fuzzMaxNewSeats bounds the seats a fuzzed concert may create, so the database stays small.
	fuzzMaxNewSeats = 200
	// fuzzRequestTimeout is below the fuzzer's own 10 s limit per input, so a hung request is reported as
	// such rather than as a worker that deadlocked.
	fuzzRequestTimeout = 8 * time.Second
)

// fuzzStack is the running service FuzzEndpoints sends requests to.
type fuzzStack struct {
	url    string
	http   *http.Client
	tokens *Tokens
	subst  *strings.Replacer // placeholders → real tokens, UUIDs and booking IDs
}

// startFuzzStack starts the booking service as internal/teststack does (on the same internal/testbackend), and creates the fixtures. tb is the
// fuzz target's *testing.F, so the stack lives as long as the fuzzing process.
func startFuzzStack(tb testing.TB) *fuzzStack {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	b := testbackend.Start(tb, log, false)
	store, c, reg := b.Store, b.Temporal, b.Registry
	secret := []byte("fuzz-token-secret-0123456789")
	h, err := New(store, c, Config{
		AdminToken: fuzzAdminToken, TokenSecret: secret, HoldWindow: 5 * time.Minute,
		AdmissionWindow: 10 * time.Minute, AdmissionTick: 200 * time.Millisecond, Logger: log,
		Instrument: metrics.HTTPMiddleware(reg), Metrics: metrics.Handler(reg),
	})
	if err != nil {
		tb.Fatalf("api: %v", err)
	}
	hs := httptest.NewServer(h)
	tb.Cleanup(hs.Close)
	tokens, err := NewTokens(secret)
	if err != nil {
		tb.Fatal(err)
	}
	httpc := hs.Client()
	httpc.Timeout = fuzzRequestTimeout
	httpc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s := &fuzzStack{url: hs.URL, http: httpc, tokens: tokens}

	must := func(status int, method, path, token, body string) map[string]any {
		tb.Helper()
		got, raw := s.setupRequest(tb, method, path, token, body)
		if got != status {
			tb.Fatalf("setup: %s %s: %d %s, want %d", method, path, got, raw, status)
		}
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	concert := func(code string, maxActive int) string {
		return fmt.Sprintf(`{"concertCode":%q,"title":"Fuzz","maxActive":%d,"dates":[{"concertDate":%q,"seats":5,"price":50000}]}`,
			code, maxActive, fuzzDate)
	}
	must(http.StatusCreated, http.MethodPost, fuzzRouteCreateConcert, fuzzAdminToken, concert(fuzzConcert, 1))
	must(http.StatusCreated, http.MethodPost, fuzzRouteCreateConcert, fuzzAdminToken, concert(fuzzOtherConcert, 5))
	user := func() string {
		id, _ := must(http.StatusCreated, http.MethodPost, "/api/v1/users", "", "")["UUID"].(string)
		if id == "" {
			tb.Fatal("setup: a new user has no UUID")
		}
		return id
	}
	active, waiting, victim, stranger := user(), user(), user(), user()
	token := func(code, id string) string {
		tok, _ := must(http.StatusCreated, http.MethodPost, "/api/v1/concerts/"+code+"/token", "", `{"UUID":"`+id+`"}`)["token"].(string)
		if tok == "" {
			tb.Fatalf("setup: no token for %s at %s", id, code)
		}
		return tok
	}
	activeTok := token(fuzzConcert, active)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if must(http.StatusOK, http.MethodGet, "/api/v1/concerts/"+fuzzConcert+"/token", activeTok, "")["status"] == string(booking.StatusActive) {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("setup: the first session of %s was not admitted", fuzzConcert)
		}
	}
	waitingTok := token(fuzzConcert, waiting)
	token(fuzzConcert, victim)
	otherTok := token(fuzzOtherConcert, stranger)
	s.subst = strings.NewReplacer(
		"{admin}", fuzzAdminToken,
		"{active}", activeTok,
		"{waiting}", waitingTok,
		"{other}", otherTok,
		"{user}", active,
		"{stranger}", stranger,
		"{booking}", workflows.SessionWorkflowID(fuzzConcert, victim),
	)
	return s
}

// setupRequest sends one request while the stack is being prepared; a transport error stops the target.
func (s *fuzzStack) setupRequest(tb testing.TB, method, path, token, body string) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		tb.Fatalf("setup: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		tb.Fatalf("setup: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("setup: %s %s: %v", method, path, err)
	}
	return resp.StatusCode, raw
}

// fuzzMethods are the methods FuzzEndpoints picks from: the API's own and some it never serves.
var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete,
	http.MethodHead, http.MethodOptions}

// fuzzRoute is a request target FuzzEndpoints picks from. The fuzzed parameter replaces {p} (path-escaped)
// or {q} (query-escaped).
type fuzzRoute struct {
	path string
	// admin routes answer 2xx only to the admin token.
	admin bool
	// session lists the methods that answer 2xx only to a valid queue token.
	session []string
	// accepts, if set, says why a 2xx for this method, parameter and body would be wrong ("" if it may be
	// right): the contract's preconditions of success, checked without the API's code.
	accepts func(method, param string, body []byte) string
}

// Routes that FuzzEndpoints treats specially.
const (
	fuzzRouteCreateConcert = "/api/v1/admin/concerts"
	fuzzRouteCancel        = "/api/v1/admin/bookings/{p}/cancel"
	fuzzRoutePageToken     = "/api/v1/admin/bookings?pageToken={q}"
)

// fuzzRoutes covers every route of the route table, each query parameter a handler reads, and paths that
// match no route.
var fuzzRoutes = []fuzzRoute{
	{path: "/api/v1/concerts/{p}/token", session: []string{http.MethodGet, http.MethodDelete}, accepts: func(m, p string, b []byte) string {
		if m != http.MethodPost {
			return ""
		}
		if !fuzzConcertCode.MatchString(p) {
			return "a malformed concert code"
		}
		return fuzzNeedUUID(b)
	}},
	{path: "/api/v1/concerts/{p}", session: []string{http.MethodGet, http.MethodPatch}, accepts: func(m, _ string, b []byte) string {
		if m != http.MethodPatch {
			return ""
		}
		if why := fuzzNeedUUID(b); why != "" {
			return why
		}
		if n, ok := fuzzMemberInt(b, "seatNumber"); !ok || n < 1 {
			return "no positive integer seatNumber"
		}
		var date string
		if json.Unmarshal(fuzzMember(b, "concertDate"), &date) != nil || !fuzzLocalDateTime.MatchString(date) {
			return "a malformed concertDate"
		}
		return ""
	}},
	{path: "/api/v1/concerts/{p}/seats?concertDate=" + fuzzDate, session: []string{http.MethodGet}},
	{path: "/api/v1/concerts/" + fuzzConcert + "/seats?concertDate={q}", session: []string{http.MethodGet}, accepts: func(_, p string, _ []byte) string {
		if _, err := time.Parse(booking.DateLayout, p); err != nil || !fuzzLocalDateTime.MatchString(p) {
			return "a malformed concertDate"
		}
		return ""
	}},
	{path: "/api/v1/concerts/" + fuzzConcert + "?UUID={q}", session: []string{http.MethodGet}, accepts: func(_, p string, _ []byte) string {
		if p != "" && !fuzzCanonicalUUID.MatchString(p) {
			return "a malformed UUID query"
		}
		return ""
	}},
	{path: "/api/v1/users", accepts: func(_, _ string, b []byte) string {
		var m map[string]json.RawMessage
		if len(bytes.TrimSpace(b)) > 0 && (json.Unmarshal(b, &m) != nil || m == nil) {
			return "a body that is not a JSON object"
		}
		return ""
	}},
	{path: "/api/v1/users/{p}/balance", accepts: func(m, p string, b []byte) string {
		if !fuzzCanonicalUUID.MatchString(p) {
			return "a malformed UUID"
		}
		if n, ok := fuzzMemberInt(b, "amount"); m == http.MethodPatch && (!ok || n < 1 || n > booking.MaxTopUp) {
			return "an amount that is not an integer between 1 and MaxTopUp"
		}
		return ""
	}},
	{path: "/api/v1/payments", session: []string{http.MethodPost}, accepts: func(_, _ string, b []byte) string {
		return fuzzNeedUUID(b)
	}},
	{path: fuzzRouteCreateConcert, admin: true},
	{path: "/api/v1/admin/concerts/{p}/admission", admin: true, accepts: func(_, p string, _ []byte) string {
		if !fuzzConcertCode.MatchString(p) {
			return "a malformed concert code"
		}
		return ""
	}},
	{path: "/api/v1/admin/bookings?concertCode={q}", admin: true},
	{path: "/api/v1/admin/bookings?status={q}", admin: true},
	{path: "/api/v1/admin/bookings?stuckOnly={q}&limit=5", admin: true},
	{path: "/api/v1/admin/bookings?limit={q}", admin: true},
	{path: fuzzRoutePageToken, admin: true},
	{path: fuzzRouteCancel, admin: true, accepts: func(_, p string, b []byte) string {
		if !strings.HasPrefix(p, "booking-") {
			return "a bookingId without the booking- prefix"
		}
		var reason string
		if json.Unmarshal(fuzzMember(b, "reason"), &reason) != nil || strings.TrimSpace(reason) == "" {
			return "no reason"
		}
		return ""
	}},
	{path: "/healthz"},
	{path: "/readyz"},
	{path: "/openapi.yaml"},
	{path: "/metrics"},
	{path: "/{p}"},
	{path: "/api/v1/{p}"},
	{path: "/api/v1/concerts"},
	{path: "/api/v1/users/{p}/bookings", accepts: fuzzNeedsUUIDPath},
	{path: "/api/v1/users/" + fuzzUser + "/bookings?limit={q}", accepts: func(_, p string, _ []byte) string {
		if n, err := strconv.Atoi(p); p != "" && (err != nil || n < 1 || n > 100) {
			return "a limit that is not an integer between 1 and 100"
		}
		return ""
	}},
	{path: "/api/v1/users/" + fuzzUser + "/bookings?pageToken={q}"},
}

// fuzzUser is a well-formed user UUID in fuzzed paths; it may or may not exist.
const fuzzUser = "3f2a6c1e-8d4b-4c8e-9a51-2b7f0e9d4c11"

// fuzzNeedsUUIDPath says why a 2xx for a path parameter that is not a canonical UUID would be wrong.
func fuzzNeedsUUIDPath(_, p string, _ []byte) string {
	if !fuzzCanonicalUUID.MatchString(p) {
		return "a malformed UUID"
	}
	return ""
}

// fuzzMember returns a top-level member of a JSON object body, or nil.
func fuzzMember(b []byte, name string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m[name]
}

// fuzzMemberInt returns a member that is a canonical JSON integer within int64.
func fuzzMemberInt(b []byte, name string) (int64, bool) {
	raw := fuzzMember(b, name)
	if !fuzzCanonicalInt.Match(raw) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

// fuzzNeedUUID says why a body without a canonical "UUID" string may not succeed.
func fuzzNeedUUID(b []byte) string {
	var id string
	if json.Unmarshal(fuzzMember(b, "UUID"), &id) != nil || !fuzzCanonicalUUID.MatchString(id) {
		return "no canonical UUID in the body"
	}
	return ""
}

// fuzzHeaderValue reports whether net/http will send v as a header value; a value it refuses never reaches
// the API.
func fuzzHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// fuzzCoordinator reports whether this process only coordinates the fuzzing of target: `go test -fuzz`
// runs the target's setup in the coordinator too, but only its worker processes (-test.fuzzworker) call the
// fuzz function. If the flags cannot be read it answers false, and the stack is started anyway.
func fuzzCoordinator(target string) bool {
	pattern, worker := flag.Lookup("test.fuzz"), flag.Lookup("test.fuzzworker")
	if pattern == nil || worker == nil || pattern.Value.String() == "" || worker.Value.String() == "true" {
		return false
	}
	matched, err := regexp.MatchString(pattern.Value.String(), target)
	return err == nil && matched
}

// FuzzEndpoints sends fuzzed requests (method, route, path or query parameter, body, Authorization header,
// and one more header value sent as both Idempotency-Key and X-Actor) through the real router of a real
// stack, and checks the error contract of promise 7: never a 5xx; every 4xx is application/problem+json
// whose body has a known type, its title, the response's status and a detail; every 401 challenges with
// WWW-Authenticate; and a 2xx only where the contract allows one (the admin token on admin routes, a valid
// queue token on session routes, well-formed IDs, dates and amounts). Requests may succeed and change state
// (users, top-ups, holds, cancellations); concerts it creates are kept small.
func FuzzEndpoints(f *testing.F) {
	const u = "3f2a6c1e-8d4b-4c8e-9a51-2b7f0e9d4c11" // a user that does not exist
	type seed struct {
		method, route uint8
		param, body   string
		token         string
	}
	const (
		get, post, patch, put, del, head, options = 0, 1, 2, 3, 4, 5, 6
	)
	const (
		rToken, rConcert, rSeats, rSeatsDate, rConcertUUID, rUsers, rBalance, rPayments, rAdminConcerts,
		rAdmission, rListCode, rListStatus, rListStuck, rListLimit, rListPage, rCancel, rHealth, rReady,
		rOpenAPI, rMetrics, rRoot, rV1, rConcerts, rBookings, rBookingsLimit, rBookingsPage = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
			10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25
	)
	if len(fuzzRoutes) != rBookingsPage+1 || fuzzRoutes[rAdminConcerts].path != fuzzRouteCreateConcert ||
		fuzzRoutes[rListPage].path != fuzzRoutePageToken || fuzzRoutes[rCancel].path != fuzzRouteCancel {
		f.Fatal("the route indexes of the seeds no longer match fuzzRoutes")
	}
	reserve := func(user, date, seat string) string {
		return `{"UUID":"` + user + `","concertDate":"` + date + `","seatNumber":` + seat + `}`
	}
	concert := func(code, maxActive, seats string) string {
		return `{"concertCode":"` + code + `","title":"Fuzz","maxActive":` + maxActive +
			`,"dates":[{"concertDate":"` + fuzzDate + `","seats":` + seats + `,"price":1000}]}`
	}
	for _, s := range []seed{
		// POST /concerts/{concertCode}/token
		{post, rToken, fuzzConcert, `{"UUID":"{user}"}`, ""},
		{post, rToken, fuzzConcert, `{"UUID":"` + u + `"}`, ""},
		{post, rToken, "NOPE", `{"UUID":"{user}"}`, ""},
		{post, rToken, "bad code", `{"UUID":"{user}"}`, ""},
		{post, rToken, "FUZZ/../OTHER", `{"UUID":"{user}"}`, ""},
		{post, rToken, "..", `{"UUID":"{user}"}`, ""},
		{post, rToken, "", `{"UUID":"{user}"}`, ""},
		{post, rToken, strings.Repeat("A", 65), `{"UUID":"{user}"}`, ""},
		{post, rToken, "\xff\x00", `{"UUID":"{user}"}`, ""},
		{post, rToken, fuzzConcert, `{"UUID":42}`, ""},
		{post, rToken, fuzzConcert, `{"UUID":"not-a-uuid"}`, ""},
		{post, rToken, fuzzConcert, `UUID={user}`, ""},
		{post, rToken, fuzzConcert, ``, ""},
		{post, rToken, fuzzConcert, `{"UUID":"{user}"} {}`, ""},
		{post, rToken, fuzzConcert, `{"UUID":"` + strings.Repeat("a", 70_000) + `"}`, ""},
		// GET /concerts/{concertCode}/token
		{get, rToken, fuzzConcert, "", "Bearer {active}"},
		{get, rToken, fuzzConcert, "", "Bearer {waiting}"},
		{get, rToken, fuzzConcert, "", "{active}"},
		{get, rToken, fuzzConcert, "", "Bearer {active}x"},
		{get, rToken, fuzzConcert, "", "Bearer {other}"},
		{get, rToken, fuzzConcert, "", "Bearer garbage"},
		{get, rToken, fuzzConcert, "", "Bearer " + u + ".c2lnbmF0dXJl"},
		{get, rToken, fuzzConcert, "", ""},
		{get, rToken, fuzzConcert, "", "Basic YWRtaW46YWRtaW4="},
		{get, rToken, fuzzConcert, "", "Bearer " + strings.Repeat("x", 4000)},
		{get, rToken, "fuzz", "", "Bearer {active}"},
		// GET and PATCH /concerts/{concertCode}
		{get, rConcert, fuzzConcert, "", "Bearer {active}"},
		{get, rConcert, fuzzConcert, "", "Bearer {waiting}"},
		{get, rConcert, fuzzConcertCodeless, "", "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "1"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "2"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "0"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, `"1"`), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "1.5"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "1e0"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "2147483648"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "99999999999999999999"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "999"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", "2027-01-01T19:00:00", "1"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", "2026-12-24T19:00:00Z", "1"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", "2026-12-24T19:00:00.5", "1"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{stranger}", fuzzDate, "1"), "Bearer {active}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "1"), "Bearer {waiting}"},
		{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "1"), "Bearer {other}"},
		{patch, rConcert, fuzzConcert, `[]`, "Bearer {active}"},
		// GET /concerts/{concertCode}/seats
		{get, rSeats, fuzzConcert, "", "Bearer {active}"},
		{get, rSeats, "NOPE", "", "Bearer {active}"},
		{get, rSeatsDate, fuzzDate, "", "Bearer {active}"},
		{get, rSeatsDate, "", "", "Bearer {active}"},
		{get, rSeatsDate, "24-12-2026", "", "Bearer {active}"},
		{get, rSeatsDate, "2026-12-24T19:00:00+09:00", "", "Bearer {active}"},
		{get, rSeatsDate, "2027-01-01T19:00:00", "", "Bearer {active}"},
		{get, rSeatsDate, "2026-12-24T19:00:00.000000001", "", "Bearer {active}"},
		{get, rSeatsDate, "2026-12-24T9:00:00", "", "Bearer {active}"},
		{get, rSeatsDate, "0000-01-01T00:00:00", "", "Bearer {active}"},
		{get, rSeatsDate, "9999-12-31T23:59:59", "", "Bearer {active}"},
		{get, rConcertUUID, "{user}", "", "Bearer {active}"},
		{get, rConcertUUID, "{stranger}", "", "Bearer {active}"},
		{get, rConcertUUID, "nobody", "", "Bearer {active}"},
		// POST /users, GET and PATCH /users/{UUID}/balance
		{post, rUsers, "", ``, ""},
		{post, rUsers, "", `{}`, ""},
		{post, rUsers, "", `[]`, ""},
		{post, rUsers, "", `{"balance":1000000}`, ""},
		{post, rUsers, "", "\xef\xbb\xbf{}", ""},
		{get, rBalance, "{user}", "", ""},
		{get, rBalance, u, "", ""},
		{get, rBalance, strings.ToUpper(u), "", ""},
		{get, rBalance, "{" + u + "}", "", ""},
		{get, rBalance, "xyz", "", ""},
		{get, rBalance, "' OR '1'='1", "", ""},
		{patch, rBalance, "{user}", `{"amount":100}`, ""},
		{patch, rBalance, "{user}", `{"amount":0}`, ""},
		{patch, rBalance, "{user}", `{"amount":-5}`, ""},
		{patch, rBalance, "{user}", `{"amount":10.5}`, ""},
		{patch, rBalance, "{user}", `{"amount":"10"}`, ""},
		{patch, rBalance, "{user}", `{"amount":1e3}`, ""},
		{patch, rBalance, "{user}", `{"amount":10000001}`, ""},
		{patch, rBalance, "{user}", `{"amount":9223372036854775807}`, ""},
		{patch, rBalance, "{user}", `{"amount":99999999999999999999}`, ""},
		{patch, rBalance, "{user}", `{"amount":null}`, ""},
		{patch, rBalance, "{user}", `{}`, ""},
		{patch, rBalance, u, `{"amount":100}`, ""},
		{put, rBalance, "{user}", `{"amount":100}`, ""},
		// POST /payments
		{post, rPayments, "", `{"UUID":"{user}"}`, "Bearer {active}"},
		{post, rPayments, "", `{"UUID":"{stranger}"}`, "Bearer {active}"},
		{post, rPayments, "", `{"UUID":"{user}"}`, "Bearer {waiting}"},
		{post, rPayments, "", `{"UUID":"{user}"}`, ""},
		{post, rPayments, "", `{}`, "Bearer {active}"},
		{post, rPayments, "", `{"UUID":"{user}","amount":1}`, "Bearer {active}"},
		// POST /admin/concerts
		{post, rAdminConcerts, "", concert("FZ2", "1", "3"), "Bearer {admin}"},
		{post, rAdminConcerts, "", concert(fuzzConcert, "1", "3"), "Bearer {admin}"},
		{post, rAdminConcerts, "", concert("FZ3", "0", "3"), "Bearer {admin}"},
		{post, rAdminConcerts, "", concert("FZ3", "1", "0"), "Bearer {admin}"},
		{post, rAdminConcerts, "", concert("FZ3", "1", "100001"), "Bearer {admin}"},
		{post, rAdminConcerts, "", concert("no spaces", "1", "3"), "Bearer {admin}"},
		{post, rAdminConcerts, "", concert("FZ3", `"1"`, "3"), "Bearer {admin}"},
		{post, rAdminConcerts, "", `{"concertCode":"FZ3","title":"t","maxActive":1,"dates":[]}`, "Bearer {admin}"},
		{post, rAdminConcerts, "", `{"concertCode":"FZ3","title":"t","maxActive":1,"dates":[null]}`, "Bearer {admin}"},
		{post, rAdminConcerts, "", `{"concertCode":"FZ4","title":"a\u0000","maxActive":1,"dates":[{"concertDate":"2026-12-24T19:00:00","seats":1,"price":1}]}`, "Bearer {admin}"},
		{post, rAdminConcerts, "", `{"concertCode":"FZ5","title":"` + strings.Repeat("\u00e9", 100) + `","maxActive":1,"dates":[{"concertDate":"0000-01-01T00:00:00","seats":1,"price":1},{"concertDate":"9999-12-31T23:59:59","seats":1,"price":1}]}`, "Bearer {admin}"},
		{post, rAdminConcerts, "", concert("FZ3", "1", "3"), ""},
		{post, rAdminConcerts, "", concert("FZ3", "1", "3"), "Bearer nope"},
		{post, rAdminConcerts, "", concert("FZ3", "1", "3"), "Bearer {admin}x"},
		{post, rAdminConcerts, "", concert("FZ3", "1", "3"), "Bearer {active}"},
		{post, rAdminConcerts, "", concert("FZ3", "1", "3"), "{admin}"},
		// POST /admin/concerts/{concertCode}/admission
		{post, rAdmission, fuzzConcert, `{"paused":false,"maxActive":1}`, "Bearer {admin}"},
		{post, rAdmission, fuzzConcert, `{"paused":"no"}`, "Bearer {admin}"},
		{post, rAdmission, fuzzConcert, `{"maxActive":0}`, "Bearer {admin}"},
		{post, rAdmission, fuzzConcert, `{}`, "Bearer {admin}"},
		{post, rAdmission, "NOPE", `{"paused":false}`, "Bearer {admin}"},
		{post, rAdmission, "bad code", `{"paused":false}`, "Bearer {admin}"},
		{post, rAdmission, fuzzConcert, `{"paused":false}`, ""},
		// GET /admin/bookings
		{get, rListCode, fuzzConcert, "", "Bearer {admin}"},
		{get, rListCode, "x' OR '1'='1", "", "Bearer {admin}"},
		{get, rListStatus, "HELD", "", "Bearer {admin}"},
		{get, rListStatus, "held", "", "Bearer {admin}"},
		{get, rListStatus, "HELD' OR 'x'='x", "", "Bearer {admin}"},
		{get, rListStuck, "true", "", "Bearer {admin}"},
		{get, rListStuck, "maybe", "", "Bearer {admin}"},
		{get, rListLimit, "0", "", "Bearer {admin}"},
		{get, rListLimit, "1001", "", "Bearer {admin}"},
		{get, rListLimit, "-1", "", "Bearer {admin}"},
		{get, rListLimit, "1e3", "", "Bearer {admin}"},
		{get, rListPage, "!!!", "", "Bearer {admin}"},
		{get, rListPage, "eyJ4IjoxfQ", "", "Bearer {admin}"},
		{get, rListPage, "AAAA", "", "Bearer {admin}"},
		{get, rListPage, "WzFd", "", "Bearer {admin}"},
		{get, rListCode, fuzzConcert, "", ""},
		{get, rListCode, fuzzConcert, "", "Bearer {active}"},
		// POST /admin/bookings/{bookingId}/cancel
		{post, rCancel, "{booking}", `{"reason":"fuzz seed","actor":"fuzz"}`, "Bearer {admin}"},
		{post, rCancel, "{booking}", `{"reason":"   "}`, "Bearer {admin}"},
		{post, rCancel, "{booking}", `{"reason":42}`, "Bearer {admin}"},
		{post, rCancel, "{booking}", `{}`, "Bearer {admin}"},
		{post, rCancel, "booking-" + fuzzConcert + "-" + u, `{"reason":"no such booking"}`, "Bearer {admin}"},
		{post, rCancel, "booking-", `{"reason":"empty ID"}`, "Bearer {admin}"},
		{post, rCancel, "not-a-booking", `{"reason":"x"}`, "Bearer {admin}"},
		{post, rCancel, "booking-" + strings.Repeat("x", 300), `{"reason":"x"}`, "Bearer {admin}"},
		{post, rCancel, "{booking}", `{"reason":"x"}`, ""},
		{post, rCancel, "{booking}", `{"reason":"x\u0000"}`, "Bearer {admin}"},
		{post, rCancel, "{booking}", `{"reason":"x","actor":"a\u0000"}`, "Bearer {admin}"},
		{post, rCancel, "booking-\xff", `{"reason":"x"}`, "Bearer {admin}"},
		{post, rCancel, "booking-\u00e9", `{"reason":"x"}`, "Bearer {admin}"},
		{post, rCancel, "booking-\x00", `{"reason":"x"}`, "Bearer {admin}"},
		// Probes, documents and routing.
		{get, rHealth, "", "", ""},
		{get, rReady, "", "", ""},
		{get, rOpenAPI, "", "", ""},
		{get, rMetrics, "", "", ""},
		{post, rHealth, "", "", ""},
		{get, rRoot, "nothing-here", "", ""},
		{get, rRoot, "", "", ""},
		{get, rV1, "concerts", "", ""},
		{get, rV1, "users/{user}/balance", "", ""},
		{del, rPayments, "", "", ""},
		{head, rConcert, fuzzConcert, "", "Bearer {active}"},
		{options, rUsers, "", "", ""},
		{put, rAdminConcerts, "", concert("FZ3", "1", "3"), "Bearer {admin}"},
		// Leaving (DELETE on the token), without a token and with another concert's.
		{del, rToken, fuzzConcert, "", ""},
		{del, rToken, fuzzConcert, "", "Bearer {other}"},
		// The public concert list and a fan's bookings.
		{get, rConcerts, "", "", ""},
		{post, rConcerts, "", "{}", ""},
		{get, rBookings, "{user}", "", ""},
		{get, rBookings, "not-a-uuid", "", ""},
		{get, rBookingsLimit, "0", "", ""},
		{get, rBookingsLimit, "5", "", ""},
		{get, rBookingsLimit, "1e3", "", ""},
		{get, rBookingsPage, "nope!", "", ""},
		{get, rBookingsPage, "MTI", "", ""},
	} {
		f.Add(s.method, s.route, s.param, []byte(s.body), s.token, "")
	}
	// The Idempotency-Key header of top-ups, holds and payments, and the X-Actor header of admin actions.
	for _, s := range []struct {
		seed
		header string
	}{
		{seed{patch, rBalance, "{user}", `{"amount":1}`, ""}, "fuzz-topup-1"},
		{seed{patch, rBalance, "{user}", `{"amount":2}`, ""}, "fuzz-topup-1"}, // same key, another body
		{seed{patch, rBalance, "{user}", `{"amount":"1"}`, ""}, "fuzz-topup-2"},
		{seed{patch, rBalance, "xyz", `{"amount":1}`, ""}, "fuzz-topup-3"},
		{seed{patch, rBalance, "{user}", `{"amount":1}`, ""}, "key with spaces"},
		{seed{patch, rBalance, "{user}", `{"amount":1}`, ""}, "\xff\xfe"},
		{seed{patch, rBalance, "{user}", `{"amount":1}`, ""}, strings.Repeat("k", 256)},
		{seed{patch, rBalance, "{user}", `{"amount":1}`, ""}, "\u00e9t\u00e9"},
		{seed{patch, rBalance, "{user}", `{"amount":1}`, ""}, " "},
		{seed{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "3"), "Bearer {active}"}, "fuzz-hold-1"},
		{seed{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "x"), "Bearer {active}"}, "fuzz-hold-2"},
		{seed{patch, rConcert, fuzzConcert, reserve("{user}", fuzzDate, "3"), "Bearer {waiting}"}, "fuzz-hold-3"},
		{seed{post, rPayments, "", `{"UUID":"{user}"}`, "Bearer {active}"}, "fuzz-pay-1"},
		{seed{post, rPayments, "", `{"UUID":"{user}"}`, "Bearer garbage"}, "fuzz-pay-2"},
		{seed{post, rPayments, "", `{"UUID":"` + strings.Repeat("a", 70_000) + `"}`, "Bearer {active}"}, "fuzz-pay-3"},
		{seed{post, rUsers, "", `{}`, ""}, "ignored-here"},
		{seed{post, rAdmission, fuzzConcert, `{"paused":false}`, "Bearer {admin}"}, "support-alice"},
		{seed{post, rAdmission, fuzzConcert, `{"paused":false}`, "Bearer {admin}"}, strings.Repeat("a", 101)},
		{seed{post, rAdmission, fuzzConcert, `{"paused":false}`, "Bearer {admin}"}, "\xff"}, // 200; the audit row is lost
		{seed{post, rCancel, "{booking}", `{"reason":"x"}`, "Bearer {admin}"}, "\xff"},
	} {
		f.Add(s.method, s.route, s.param, []byte(s.body), s.token, s.header)
	}
	var stack *fuzzStack
	if !fuzzCoordinator(f.Name()) {
		stack = startFuzzStack(f)
	}
	f.Fuzz(func(t *testing.T, methodIdx, routeIdx uint8, param string, payload []byte, token, header string) {
		if stack == nil {
			t.Fatal("the fuzz function ran in the coordinating process, which has no stack")
		}
		in := fuzzRequest{
			method: fuzzMethods[int(methodIdx)%len(fuzzMethods)], route: fuzzRoutes[int(routeIdx)%len(fuzzRoutes)],
			param: stack.subst.Replace(param), body: []byte(stack.subst.Replace(string(payload))),
			token: stack.subst.Replace(token), header: header,
		}
		if !fuzzHeaderValue(in.token) || !fuzzHeaderValue(in.header) {
			return // net/http refuses to send it
		}
		if in.tooLargeConcert() {
			return // too large to create on every input
		}
		stack.check(t, in)
	})
}

// fuzzRequest is one FuzzEndpoints input with its placeholders replaced.
type fuzzRequest struct {
	method string
	route  fuzzRoute
	param  string
	body   []byte
	token  string // the whole Authorization header
	header string // the Idempotency-Key and X-Actor headers; no route reads both
}

// admin reports whether the request carries the admin token.
func (in fuzzRequest) admin() bool { return bearer(in.token) == fuzzAdminToken }

// tooLargeConcert reports whether the request could create a concert with more than fuzzMaxNewSeats seats.
// Any route counts: a parameter holding "/" can reach the create-concert route from another template.
func (in fuzzRequest) tooLargeConcert() bool {
	var b body
	if !in.admin() || json.Unmarshal(in.body, &b) != nil {
		return false
	}
	c, p := parseConcert(b)
	if p != nil {
		return false
	}
	seats := 0
	for _, d := range c.Dates {
		seats += d.Seats
	}
	return seats > fuzzMaxNewSeats
}

// check sends the request and asserts the error contract on the answer.
func (s *fuzzStack) check(t *testing.T, in fuzzRequest) {
	t.Helper()
	target := strings.Replace(in.route.path, "{p}", url.PathEscape(in.param), 1)
	target = strings.Replace(target, "{q}", url.QueryEscape(in.param), 1)
	req, err := http.NewRequest(in.method, s.url+target, bytes.NewReader(in.body))
	if err != nil {
		t.Fatalf("build request %s %s: %v", in.method, target, err)
	}
	if in.token != "" {
		req.Header.Set("Authorization", in.token)
	}
	if in.header != "" {
		req.Header.Set("Idempotency-Key", in.header)
		req.Header.Set("X-Actor", in.header)
	}
	where := fmt.Sprintf("%s %s (Authorization %q, Idempotency-Key and X-Actor %q, body %q)", in.method, target, in.token, in.header, in.body)
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s: no answer: %v", where, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read the answer: %v", where, err)
	}
	where += fmt.Sprintf(" → %d %s", resp.StatusCode, raw)
	c, err := fuzzContract()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(context.Background(), contract.Exchange{
		Request: req, RequestBody: in.body, Status: resp.StatusCode, Header: resp.Header, Body: raw,
	}); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	switch code := resp.StatusCode; {
	case code >= 500:
		t.Fatalf("%s: a server error for a client's input", where)
	case code >= 400:
		checkProblemResponse(t, where, in.method, resp, raw)
	case code >= 200 && code < 300 && !strings.Contains(in.param, "/"): // with a '/' another route may have answered
		if in.route.admin && !in.admin() {
			t.Fatalf("%s: an admin route succeeded without the admin token", where)
		}
		if slices.Contains(in.route.session, in.method) {
			if _, err := s.tokens.Verify(bearer(in.token)); err != nil {
				t.Fatalf("%s: a session route succeeded without a valid queue token", where)
			}
		}
		if in.route.accepts != nil {
			if why := in.route.accepts(in.method, in.param, in.body); why != "" {
				t.Fatalf("%s: succeeded with %s", where, why)
			}
		}
	}
	t.Log(where)
}

// fuzzContract is the checker of this package's OpenAPI document (see internal/contract), loaded once.
var fuzzContract = sync.OnceValues(func() (*contract.Checker, error) { return contract.New(openAPI) })

// fuzzConcertCodeless is a concert path parameter that is a valid code but no concert: the session routes
// must answer 403 wrong-concert for it, not look it up.
const fuzzConcertCodeless = "NO-SUCH-CONCERT"

// checkProblemResponse checks one 4xx answer: problem+json, a body with a known type, its title, the status
// of the response and a detail, and a Bearer challenge on 401.
func checkProblemResponse(t *testing.T, where, method string, resp *http.Response, raw []byte) {
	t.Helper()
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q, want application/problem+json", where, resp.Header.Get("Content-Type"))
	}
	if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("%s: a 401 without a Bearer challenge", where)
	}
	if method == http.MethodHead {
		return // no body
	}
	var p struct {
		Type   *string  `json:"type"`
		Title  *string  `json:"title"`
		Status *float64 `json:"status"`
		Detail *string  `json:"detail"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("%s: the problem is not a JSON object: %v", where, err)
	}
	if p.Type == nil || p.Title == nil || p.Status == nil {
		t.Fatalf("%s: the problem lacks type, title or status", where)
	}
	slug, ok := strings.CutPrefix(*p.Type, ProblemTypeBase)
	if title, known := problemTitles[slug]; !ok || !known || *p.Title != title {
		t.Fatalf("%s: unknown problem type %q or wrong title %q", where, *p.Type, *p.Title)
	}
	if int(*p.Status) != resp.StatusCode {
		t.Fatalf("%s: the body's status %v is not the response's", where, *p.Status)
	}
	if p.Detail == nil || *p.Detail == "" {
		t.Fatalf("%s: the problem has no detail", where)
	}
}

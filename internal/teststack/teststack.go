// Package teststack runs the whole booking service inside a test: a fresh PostgreSQL database, an embedded
// in-memory Temporal server, the real worker and the real HTTP API on an httptest server. Nothing is mocked.
// Integration tests of several packages share it, so they all exercise exactly what `concert dev` runs.
package teststack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"

	"github.com/ticketing/concert/api"
	"github.com/ticketing/concert/db"
	"github.com/ticketing/concert/internal/contract"
	"github.com/ticketing/concert/internal/devserver"
	"github.com/ticketing/concert/internal/metrics"
	"github.com/ticketing/concert/internal/testbackend"
)

// AdminToken is the admin token of every test stack.
const AdminToken = "test-admin-token"

// Options tunes a stack; zero values take the production defaults except where noted.
type Options struct {
	HoldWindow      time.Duration // default 5m
	AdmissionWindow time.Duration // default 10m
	AdmissionTick   time.Duration // default 200ms, so tests see admissions quickly
	StuckGrace      time.Duration // default 1m
	// UserRateLimit and AddressRateLimit are off unless set, so tests can issue tokens in bursts.
	UserRateLimit, AddressRateLimit api.RateLimit
	// StartWaitingQueue is api.Config's: positive starts waiting sessions' workflows before their admission.
	StartWaitingQueue int
	// WebUI serves the Temporal Web UI too (Server.UIAddress), for tests that click in it as an operator.
	WebUI bool
}

// Stack is a running booking service.
type Stack struct {
	t     testing.TB
	Store *db.Store
	// DatabaseURL and SQL reach the store's database directly (see testbackend.Backend).
	DatabaseURL string
	SQL         *sqlx.DB
	Temporal    client.Client
	Server      *devserver.Server
	URL         string // base URL of the API, without a trailing slash
	HTTP        *http.Client

	backend *testbackend.Backend
}

// Start brings up a stack and stops it when the test ends.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	if opts.HoldWindow == 0 {
		opts.HoldWindow = 5 * time.Minute
	}
	if opts.AdmissionWindow == 0 {
		opts.AdmissionWindow = 10 * time.Minute
	}
	if opts.AdmissionTick == 0 {
		opts.AdmissionTick = 200 * time.Millisecond
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b := testbackend.Start(t, log, opts.WebUI)
	store, c, reg := b.Store, b.Temporal, b.Registry
	h, err := api.New(store, c, api.Config{
		AdminToken: AdminToken, TokenSecret: []byte("test-token-secret-0123456789"),
		HoldWindow: opts.HoldWindow, AdmissionWindow: opts.AdmissionWindow, AdmissionTick: opts.AdmissionTick, StuckGrace: opts.StuckGrace, Logger: log,
		Instrument: metrics.HTTPMiddleware(reg), Metrics: metrics.Handler(reg),
		UserRateLimit: opts.UserRateLimit, AddressRateLimit: opts.AddressRateLimit, StartWaitingQueue: opts.StartWaitingQueue,
	})
	if err != nil {
		t.Fatalf("teststack: api: %v", err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return &Stack{t: t, Store: store, DatabaseURL: b.DatabaseURL, SQL: b.SQL, Temporal: c, Server: b.Server, URL: hs.URL, HTTP: hs.Client(), backend: b}
}

// StopWorker stops the worker, as a crashed or stuck worker fleet would: workflows stop making progress
// while the API and Temporal go on answering. Stopping twice is harmless.
func (s *Stack) StopWorker() { s.backend.StopWorker() }

// Response is a decoded API response.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// Str returns a string member of the body ("" if absent).
func (r Response) Str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// Int returns a numeric member of the body (0 if absent).
func (r Response) Int(key string) int64 {
	f, _ := r.Body[key].(float64)
	return int64(f)
}

// ProblemType returns the problem type of an error response.
func (r Response) ProblemType() string { return r.Str("type") }

// Do sends a request with an optional JSON body (a string is sent as is) and bearer token, and decodes the
// JSON answer. Transport errors fail the test.
func (s *Stack) Do(method, path, token string, body any) Response {
	s.t.Helper()
	var rd io.Reader
	var sent []byte
	switch b := body.(type) {
	case nil:
	case string:
		sent = []byte(b)
		rd = bytes.NewReader(sent)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("marshal body: %v", err)
		}
		sent = raw
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	out := Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.Body)
	}
	s.checkContract(req, sent, out)
	return out
}

// apiContract is the checker of the API's document, loaded once per test binary.
var apiContract = sync.OnceValues(func() (*contract.Checker, error) { return contract.New(api.OpenAPI()) })

// checkContract fails the test when the exchange drifts from the API's OpenAPI document (see package
// contract): every end-to-end request a test sends through Do is checked.
func (s *Stack) checkContract(req *http.Request, sent []byte, r Response) {
	s.t.Helper()
	c, err := apiContract()
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	if err := c.Check(context.Background(), contract.Exchange{
		Request: req, RequestBody: sent, Status: r.Status, Header: r.Header, Body: r.Raw,
	}); err != nil {
		s.t.Errorf("contract: %v\nresponse body: %s", err, r.Raw)
	}
}

// ConcertDate is one performance for CreateConcert.
type ConcertDate struct {
	Date  string
	Seats int
	Price int64
}

// CreateConcert puts a concert on sale through the admin API.
func (s *Stack) CreateConcert(code string, maxActive int, dates ...ConcertDate) {
	s.t.Helper()
	ds := make([]map[string]any, len(dates))
	for i, d := range dates {
		ds[i] = map[string]any{"concertDate": d.Date, "seats": d.Seats, "price": d.Price}
	}
	r := s.Do(http.MethodPost, "/api/v1/admin/concerts", AdminToken, map[string]any{
		"concertCode": code, "title": "Concert " + code, "maxActive": maxActive, "dates": ds,
	})
	if r.Status != http.StatusCreated {
		s.t.Fatalf("create concert %s: %d %s", code, r.Status, r.Raw)
	}
}

// CreateUser registers a user through the API and tops up the balance if positive.
func (s *Stack) CreateUser(balance int64) string {
	s.t.Helper()
	r := s.Do(http.MethodPost, "/api/v1/users", "", map[string]any{})
	if r.Status != http.StatusCreated {
		s.t.Fatalf("create user: %d %s", r.Status, r.Raw)
	}
	id := r.Str("UUID")
	if balance > 0 {
		r = s.Do(http.MethodPatch, "/api/v1/users/"+id+"/balance", "", map[string]any{"amount": balance})
		if r.Status != http.StatusOK {
			s.t.Fatalf("top up: %d %s", r.Status, r.Raw)
		}
	}
	return id
}

// BookingID is the booking ID (workflow ID) of the user's newest session for the concert, as support staff
// find it in the bookings list.
func (s *Stack) BookingID(code, user string) string {
	s.t.Helper()
	sess, err := s.Store.LatestSession(context.Background(), code, user)
	if err != nil {
		s.t.Fatalf("booking of %s for %s: %v", user, code, err)
	}
	return sess.WorkflowID
}

// Token asks for a queue token and fails the test unless it gets 200 or 201.
func (s *Stack) Token(code, user string) Response {
	s.t.Helper()
	r := s.Do(http.MethodPost, "/api/v1/concerts/"+code+"/token", "", map[string]any{"UUID": user})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		s.t.Fatalf("token for %s at %s: %d %s", user, code, r.Status, r.Raw)
	}
	return r
}

// ClickInUI does what a button of the Temporal Web UI does for a workflow, through the UI server's own
// HTTP API (the stack must have Options.WebUI): action is "cancel" ("Request Cancellation") or "terminate".
// Like the browser, it first fetches a page for the CSRF cookie and sends it back as X-CSRF-TOKEN.
func (s *Stack) ClickInUI(workflowID, action string, body any) {
	s.t.Helper()
	ui := s.Server.UIAddress()
	if ui == "" {
		s.t.Fatalf("ClickInUI: the stack has no Web UI (set Options.WebUI)")
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatalf("cookie jar: %v", err)
	}
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page, err := browser.Get(ui + "/api/v1/settings")
	if err != nil {
		s.t.Fatalf("ClickInUI: open the UI: %v", err)
	}
	_ = page.Body.Close()
	var csrf string
	for _, c := range page.Cookies() {
		if c.Name == "_csrf" {
			csrf = c.Value
		}
	}
	if csrf == "" {
		s.t.Fatalf("ClickInUI: the UI set no _csrf cookie")
	}
	raw, err := json.Marshal(body)
	if err != nil {
		s.t.Fatalf("ClickInUI: %v", err)
	}
	target := ui + "/api/v1/namespaces/" + s.Server.Namespace() + "/workflows/" + url.PathEscape(workflowID) + "/" + action
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(raw))
	if err != nil {
		s.t.Fatalf("ClickInUI: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-TOKEN", csrf)
	resp, err := browser.Do(req)
	if err != nil {
		s.t.Fatalf("ClickInUI %s %s: %v", action, workflowID, err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("ClickInUI %s %s: %d %s", action, workflowID, resp.StatusCode, answer)
	}
}

// ListInUI returns the workflow IDs the Temporal Web UI's workflow list shows for a filter typed in its
// search box, through the UI server's own HTTP API (the stack must have Options.WebUI).
func (s *Stack) ListInUI(query string) []string {
	s.t.Helper()
	ui := s.Server.UIAddress()
	if ui == "" {
		s.t.Fatalf("ListInUI: the stack has no Web UI (set Options.WebUI)")
	}
	resp, err := http.Get(ui + "/api/v1/namespaces/" + s.Server.Namespace() + "/workflows?query=" + url.QueryEscape(query))
	if err != nil {
		s.t.Fatalf("ListInUI %q: %v", query, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("ListInUI %q: %d %s", query, resp.StatusCode, raw)
	}
	var list struct {
		Executions []struct {
			Execution struct {
				WorkflowID string `json:"workflowId"`
			} `json:"execution"`
		} `json:"executions"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		s.t.Fatalf("ListInUI %q: %v in %s", query, err, raw)
	}
	ids := make([]string, 0, len(list.Executions))
	for _, e := range list.Executions {
		ids = append(ids, e.Execution.WorkflowID)
	}
	return ids
}

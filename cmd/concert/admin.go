package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const adminUsage = `usage:
  concert admin bookings list [--concert CODE] [--status STATUS] [--stuck] [--limit N] [--json]
  concert admin bookings cancel BOOKING_ID --reason TEXT [--actor NAME]
  concert admin admission CONCERT_CODE [--pause | --resume] [--max-active N] [--opens-at T] [--closes-at T|now]

Talks to the API at $CONCERT_API_URL (default http://127.0.0.1:8080) with $CONCERT_ADMIN_TOKEN.
`

// runAdmin is the support and operator CLI: the admin API's operations from a terminal.
func runAdmin(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(out, adminUsage)
		return errors.New("admin: no command given")
	}
	switch {
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help":
		fmt.Fprint(out, adminUsage) // asked for: the usage, and success
		return nil
	case args[0] == "bookings" && len(args) > 1 && args[1] == "list":
		return adminListBookings(ctx, args[2:], out)
	case args[0] == "bookings" && len(args) > 1 && args[1] == "cancel":
		return adminCancelBooking(ctx, args[2:], out)
	case args[0] == "admission":
		return adminAdmission(ctx, args[1:], out)
	}
	fmt.Fprint(out, adminUsage)
	return fmt.Errorf("admin: unknown command %q", strings.Join(args, " "))
}

// adminClient calls the admin API.
type adminClient struct {
	base, token string
	http        *http.Client
}

// adminFlags adds the connection flags every admin command shares.
func adminFlags(fs *flag.FlagSet) *adminClient {
	c := &adminClient{http: &http.Client{Timeout: 60 * time.Second}}
	fs.StringVar(&c.base, "api-url", env(envAPIURL, defaultAPIURL), "API base URL ("+envAPIURL+")")
	fs.StringVar(&c.token, "admin-token", os.Getenv(envAdminToken), "admin token ("+envAdminToken+")")
	return c
}

// call sends one admin request and decodes the JSON answer into out; a problem answer becomes an error
// carrying its title and detail.
func (c *adminClient) call(ctx context.Context, method, path string, body, out any) (int, error) {
	if c.token == "" {
		return 0, fmt.Errorf("set %s or --admin-token", envAdminToken)
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("call %s: %w", c.base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 400 {
		var p struct{ Title, Detail string }
		_ = json.Unmarshal(raw, &p)
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, p.Title, p.Detail)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

func adminListBookings(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("concert admin bookings list", flag.ContinueOnError)
	c := adminFlags(fs)
	concert := fs.String("concert", "", "only this concert")
	status := fs.String("status", "", "only this status (WAITING, ACTIVE, HELD, PAID, EXPIRED, CANCELLED, SOLD_OUT, CLOSED)")
	stuck := fs.Bool("stuck", false, "only live sessions past their deadline plus the grace period, from PostgreSQL, with what each needs")
	limit := fs.Int("limit", 100, "at most this many")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"concertCode": *concert, "status": *status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *stuck {
		q.Set("stuckOnly", "true")
	}
	q.Set("limit", fmt.Sprint(*limit))
	var resp struct {
		Bookings []struct {
			BookingID   string  `json:"bookingId"`
			ConcertCode string  `json:"concertCode"`
			UUID        string  `json:"UUID"`
			Status      string  `json:"status"`
			ConcertDate *string `json:"concertDate"`
			SeatNumber  *int64  `json:"seatNumber"`
			SeatNumbers []int   `json:"seatNumbers"`
			Since       *string `json:"since"`
			Deadline    *string `json:"deadline"`
			Stuck       bool    `json:"stuck"`
			StuckReason string  `json:"stuckReason"`
		} `json:"bookings"`
	}
	var raw json.RawMessage
	if _, err := c.call(ctx, http.MethodGet, "/api/v1/admin/bookings?"+q.Encode(), nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		_, err := fmt.Fprintln(out, string(raw))
		return err
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	header := "BOOKING ID\tSTATUS\tSEAT\tSINCE\tDEADLINE\tSTUCK"
	if *stuck {
		header += "\tWHAT IT NEEDS"
	}
	fmt.Fprintln(tw, header)
	for _, b := range resp.Bookings {
		seat := "-"
		if b.ConcertDate != nil && b.SeatNumber != nil {
			seat = fmt.Sprintf("%s #%d", *b.ConcertDate, *b.SeatNumber)
			for _, n := range b.SeatNumbers {
				if int64(n) != *b.SeatNumber {
					seat += fmt.Sprintf(",%d", n)
				}
			}
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%t", b.BookingID, b.Status, seat, deref(b.Since), deref(b.Deadline), b.Stuck)
		if *stuck {
			line += "\t" + b.StuckReason
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d booking(s)\n", len(resp.Bookings))
	return nil
}

func adminCancelBooking(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("concert admin bookings cancel", flag.ContinueOnError)
	c := adminFlags(fs)
	reason := fs.String("reason", "", "why (recorded in the audit table; required)")
	actor := fs.String("actor", os.Getenv("USER"), "who is cancelling (recorded in the audit table)")
	id, rest := "", args
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if id == "" || *reason == "" {
		return errors.New("usage: concert admin bookings cancel BOOKING_ID --reason TEXT")
	}
	var resp struct{ Status, Outcome string }
	code, err := c.call(ctx, http.MethodPost, "/api/v1/admin/bookings/"+url.PathEscape(id)+"/cancel",
		map[string]string{"reason": *reason, "actor": *actor}, &resp)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s (%s)\n", id, resp.Status, resp.Outcome)
	if code == http.StatusAccepted {
		fmt.Fprintln(out, "the session has not ended yet: the workers may be behind; check again with `concert admin bookings list --stuck`")
	}
	return nil
}

func adminAdmission(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("concert admin admission", flag.ContinueOnError)
	c := adminFlags(fs)
	pause := fs.Bool("pause", false, "stop admitting waiting users")
	resume := fs.Bool("resume", false, "admit waiting users again")
	maxActive := fs.Int("max-active", 0, "how many users may be admitted at once")
	opensAt := fs.String("opens-at", "", "move the opening of a sale that has not opened (an instant with its zone, like 2026-12-01T10:00:00Z)")
	closesAt := fs.String("closes-at", "", "move the closing of a sale that has not closed (an instant with its zone), or \"now\" to close it now")
	code, rest := "", args
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		code, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	body := map[string]any{}
	switch {
	case *pause && *resume:
		return errors.New("--pause and --resume exclude each other")
	case *pause:
		body["paused"] = true
	case *resume:
		body["paused"] = false
	}
	if *maxActive != 0 {
		body["maxActive"] = *maxActive
	}
	if *opensAt != "" {
		body["opensAt"] = *opensAt
	}
	switch *closesAt {
	case "":
	case "now":
		body["closesAt"] = time.Now().UTC().Format(time.RFC3339Nano)
	default:
		body["closesAt"] = *closesAt
	}
	if code == "" || len(body) == 0 {
		return errors.New("usage: concert admin admission CONCERT_CODE [--pause | --resume] [--max-active N] [--opens-at T] [--closes-at T|now]")
	}
	var resp struct {
		ConcertCode string     `json:"concertCode"`
		Paused      bool       `json:"paused"`
		MaxActive   int        `json:"maxActive"`
		OpensAt     *time.Time `json:"opensAt"`
		ClosesAt    *time.Time `json:"closesAt"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/api/v1/admin/concerts/"+url.PathEscape(code)+"/admission", body, &resp); err != nil {
		return err
	}
	line := fmt.Sprintf("%s: paused=%t maxActive=%d", resp.ConcertCode, resp.Paused, resp.MaxActive)
	if resp.OpensAt != nil {
		line += " opensAt=" + resp.OpensAt.UTC().Format(time.RFC3339)
	}
	if resp.ClosesAt != nil {
		line += " closesAt=" + resp.ClosesAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintln(out, line)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// ReadsConfig sets up the read benchmark: how long each phase hammers its endpoint, with how many clients.
type ReadsConfig struct {
	Target      string
	AdminToken  string
	Duration    time.Duration
	Concurrency int
}

// ReadRate is what one phase of the read benchmark measured.
type ReadRate struct {
	Requests          int     `json:"requests"`
	Errors            int     `json:"errors"`
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	P99Ms             float64 `json:"p99Ms"`
}

// ReadsResult compares the seat map and date list with /healthz, measured one after another in the same
// run, with the same clients: the ratio says what reading a seat map costs beyond answering HTTP at all.
type ReadsResult struct {
	Healthz    ReadRate `json:"healthz"`
	Seats      ReadRate `json:"seats"`
	Dates      ReadRate `json:"dates"`
	SeatsRatio float64  `json:"seatsRatio"`
	DatesRatio float64  `json:"datesRatio"`
}

// RunReads creates a concert of 500 seats and an admitted user, then measures /healthz, the seat map and
// the date list, each for cfg.Duration.
func RunReads(ctx context.Context, cfg ReadsConfig) (ReadsResult, error) {
	if cfg.Duration <= 0 || cfg.Concurrency < 1 {
		return ReadsResult{}, fmt.Errorf("read benchmark: duration and concurrency must be positive")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency * 2}, Timeout: 30 * time.Second}
	call := func(method, path, token string, body any, out any) error {
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequestWithContext(ctx, method, cfg.Target+path, rd)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		if out != nil {
			return json.Unmarshal(raw, out)
		}
		return nil
	}
	code := fmt.Sprintf("READS-%d", time.Now().UnixNano()%1_000_000_000)
	const date = "2026-12-24T19:00:00"
	if err := call(http.MethodPost, "/api/v1/admin/concerts", cfg.AdminToken, map[string]any{
		"concertCode": code, "title": "read benchmark", "maxActive": 10,
		"dates": []any{map[string]any{"concertDate": date, "seats": 500, "price": 1000}},
	}, nil); err != nil {
		return ReadsResult{}, err
	}
	var user struct{ UUID string }
	if err := call(http.MethodPost, "/api/v1/users", "", map[string]any{}, &user); err != nil {
		return ReadsResult{}, err
	}
	var tok struct{ Token, Status string }
	if err := call(http.MethodPost, "/api/v1/concerts/"+code+"/token", "", map[string]any{"UUID": user.UUID}, &tok); err != nil {
		return ReadsResult{}, err
	}
	if tok.Status != statusActive {
		return ReadsResult{}, fmt.Errorf("read benchmark: the user is %s, not admitted", tok.Status)
	}
	phase := func(path, token string) ReadRate {
		var (
			mu      sync.Mutex
			lat     []time.Duration
			errs    int
			wg      sync.WaitGroup
			stopped = time.Now().Add(cfg.Duration)
		)
		start := time.Now()
		for range cfg.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				bad := 0
				for time.Now().Before(stopped) && ctx.Err() == nil {
					t := time.Now()
					if err := call(http.MethodGet, path, token, nil, nil); err != nil {
						bad++
						continue
					}
					mine = append(mine, time.Since(t))
				}
				mu.Lock()
				lat, errs = append(lat, mine...), errs+bad
				mu.Unlock()
			}()
		}
		wg.Wait()
		elapsed := time.Since(start).Seconds()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		r := ReadRate{Requests: len(lat), Errors: errs, RequestsPerSecond: float64(len(lat)) / elapsed}
		if len(lat) > 0 {
			r.P99Ms = float64(lat[(len(lat)*99)/100].Microseconds()) / 1000
		}
		return r
	}
	var res ReadsResult
	res.Healthz = phase("/healthz", "")
	res.Seats = phase("/api/v1/concerts/"+code+"/seats?concertDate="+date, tok.Token)
	res.Dates = phase("/api/v1/concerts/"+code, tok.Token)
	if res.Healthz.RequestsPerSecond > 0 {
		res.SeatsRatio = res.Seats.RequestsPerSecond / res.Healthz.RequestsPerSecond
		res.DatesRatio = res.Dates.RequestsPerSecond / res.Healthz.RequestsPerSecond
	}
	return res, nil
}

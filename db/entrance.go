package db

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// EntranceResult is what EntranceBaseline measured: plain inserts of a row shaped like a session.
type EntranceResult struct {
	Inserts          int     `json:"inserts"`
	Workers          int     `json:"workers"`
	Seconds          float64 `json:"seconds"`
	InsertsPerSecond float64 `json:"insertsPerSecond"`
}

// EntranceBaseline measures the physical limit of a waiting room's entrance on this database: n inserts,
// each its own transaction, of a row like a session (text ID, concert, user, a sequence number, a status,
// the same kinds of indexes) through workers connections at once, into a scratch table it creates and drops.
// A token costs at least this much; the load generator reports tokens/s against it.
func (s *Store) EntranceBaseline(ctx context.Context, n, workers int) (EntranceResult, error) {
	table := fmt.Sprintf("entrance_baseline_%d", time.Now().UnixNano())
	// Logged like the sessions table: the commit's WAL flush is part of the price of a place in line.
	ddl := `CREATE TABLE ` + table + ` (
    id TEXT PRIMARY KEY, concert_code TEXT NOT NULL, user_uuid UUID NOT NULL, seq BIGSERIAL UNIQUE,
    status TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())`
	index := `CREATE INDEX ON ` + table + ` (concert_code, seq) WHERE status = 'WAITING'`
	insert := `INSERT INTO ` + table + ` (id, concert_code, user_uuid, status) VALUES ($1, 'BASELINE', $2, 'WAITING')`
	if _, err := s.db.ExecContext(ctx, ddl); err != nil {
		return EntranceResult{}, fmt.Errorf("entrance baseline: %w", err)
	}
	defer func() { _, _ = s.db.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+table) }()
	if _, err := s.db.ExecContext(ctx, index); err != nil {
		return EntranceResult{}, fmt.Errorf("entrance baseline: %w", err)
	}
	stmt, err := s.db.PreparexContext(ctx, insert)
	if err != nil {
		return EntranceResult{}, fmt.Errorf("entrance baseline: %w", err)
	}
	defer func() { _ = stmt.Close() }()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				if _, err := stmt.ExecContext(ctx, uuid.NewString(), uuid.NewString()); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if firstErr != nil {
		return EntranceResult{}, fmt.Errorf("entrance baseline: %w", firstErr)
	}
	return EntranceResult{Inserts: n, Workers: workers, Seconds: took.Seconds(),
		InsertsPerSecond: float64(n) / took.Seconds()}, nil
}

package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// erasedTables hold a tenant's data beside the ledger: projections,
// identities, links, refusals. Anchors stay: they hold seqs and hashes
// only, and the chain's proof.
// (Table names, written as one string: some are also stream names.)
var erasedTables = strings.Fields(`usage usage_provisional provisional_versions usage_rollup usage_rollup_builds manifests costs identities links audit_logs refusals`)

// EraseTenant erases what the ledger and its projections hold of tenant:
// each event keeps its canonical bytes and hash, so the chain still
// verifies, but loses its data and salt; every projection row goes. It
// waits until ClickHouse has carried the mutations out, or ctx ends.
func (s *Store) EraseTenant(ctx context.Context, tenant string) error {
	stmts := []string{"ALTER TABLE events UPDATE data = '', salt = '' WHERE tenant = ?"}
	for _, t := range erasedTables {
		stmts = append(stmts, "ALTER TABLE "+t+" DELETE WHERE tenant = ?")
	}
	for _, q := range stmts {
		qctx, cancel := context.WithTimeout(ctx, s.timeout)
		err := s.conn.Exec(qctx, q, tenant)
		cancel()
		if err != nil {
			return fmt.Errorf("erase tenant %s: %w", tenant, err)
		}
	}
	// Mutations run in the background: wait for them.
	for {
		qctx, cancel := context.WithTimeout(ctx, s.timeout)
		var pending uint64
		err := s.conn.QueryRow(qctx, "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", s.db).Scan(&pending)
		cancel()
		if err != nil {
			return fmt.Errorf("erase tenant %s: mutations: %w", tenant, err)
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("erase tenant %s: %d mutations pending: %w", tenant, pending, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

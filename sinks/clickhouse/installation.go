package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// OtherInstallationError is a database whose ledger another installation
// wrote: its events and this installation's would disagree at every seq.
type OtherInstallationError struct {
	Database string
	// Holder is the installation that claimed the database; empty for one
	// older than installation ids, known only by its events.
	Holder string
}

func (e *OtherInstallationError) Error() string {
	holder := "an installation older than installation ids"
	if e.Holder != "" {
		holder = "installation " + e.Holder
	}
	return fmt.Sprintf("clickhouse database %s holds the ledger of %s", e.Database, holder)
}

// Claim records that installation id writes this database, or checks that
// it already does. An unclaimed database with events is another
// installation's unless adopt is set: id was just given to an installation
// older than ids, whose database this is. It returns an
// [*OtherInstallationError] for a database another installation holds.
func (s *Store) Claim(ctx context.Context, id string, adopt bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var holders []string
	if err := s.conn.QueryRow(ctx, "SELECT groupArray(id) FROM installation").Scan(&holders); err != nil {
		return fmt.Errorf("claim database: %w", err)
	}
	if slices.Contains(holders, id) {
		return nil
	}
	if len(holders) > 0 {
		return &OtherInstallationError{Database: s.db, Holder: holders[0]}
	}
	if !adopt {
		var n uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err != nil {
			return fmt.Errorf("claim database: %w", err)
		}
		if n > 0 {
			return &OtherInstallationError{Database: s.db}
		}
	}
	// Inserts go through batches: 18.16 never answers an INSERT … VALUES.
	err := s.batch(ctx, "INSERT INTO installation (id, claimed_at)", func(add func(...any) error) error {
		return add(id, time.Now().UTC())
	})
	if err != nil {
		return fmt.Errorf("claim database: %w", err)
	}
	return nil
}

// Refuse records that the sink refuses tenant's events, and why.
func (s *Store) Refuse(ctx context.Context, tenant, reason string) error {
	err := s.batch(ctx, "INSERT INTO refusals (tenant, reason, refused_at)", func(add func(...any) error) error {
		return add(tenant, reason, time.Now().UTC())
	})
	if err != nil {
		return fmt.Errorf("record refusal of %s: %w", tenant, err)
	}
	return nil
}

// Refusal returns why the sink refuses tenant's events, or "" when it
// does not.
func (s *Store) Refusal(ctx context.Context, tenant string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// Over no rows, argMax is "".
	var reason string
	if err := s.conn.QueryRow(ctx, "SELECT argMax(reason, refused_at) FROM refusals WHERE tenant = ?", tenant).Scan(&reason); err != nil {
		return "", fmt.Errorf("refusal of %s: %w", tenant, err)
	}
	return reason, nil
}

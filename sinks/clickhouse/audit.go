package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/normalize"
)

func (s *Sink) insertAudits(ctx context.Context, audits []*event.Record) error {
	if len(audits) == 0 {
		return nil
	}
	err := s.store.batch(ctx, `INSERT INTO audit_logs (tenant, vendor, id, type, effective_at, actor_type, actor_id, actor_email,
		project_id, project_name, resource_id, seq)`, func(add func(...any) error) error {
		for _, r := range audits {
			e := r.Event
			var k struct{ ID string }
			if err := json.Unmarshal(e.Key, &k); err != nil {
				return fmt.Errorf("audit key of %s seq %d: %w", e.Tenant, e.Seq, err)
			}
			a, err := normalize.AuditOf(e.Vendor, r.Data)
			if err != nil {
				return fmt.Errorf("audit data of %s seq %d: %w", e.Tenant, e.Seq, err)
			}
			if err := add(e.Tenant, e.Vendor, k.ID, a.Type, a.EffectiveAt, a.ActorType, a.ActorID, a.ActorEmail,
				a.ProjectID, a.ProjectName, a.ResourceID, e.Seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert audit_logs: %w", err)
	}
	return nil
}

// AuditQuery asks for audit events of one tenant, newest first.
type AuditQuery struct {
	Tenant string
	// Start is inclusive, End exclusive.
	Start, End time.Time
	// Type, Actor (an actor id or email) and Project narrow, when set.
	Type, Actor, Project string
	// Offset and Limit page the events.
	Offset, Limit int
}

// AuditEvent is one audit event as the projection holds it.
type AuditEvent struct {
	Vendor, ID string
	normalize.Audit
	Seq uint64
}

// AuditLogs returns the audit events q asks for, newest first.
func (s *Store) AuditLogs(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	where, args := "tenant = ? AND effective_at >= toDateTime(?) AND effective_at < toDateTime(?)",
		[]any{q.Tenant, q.Start.UTC().Format(time.DateTime), q.End.UTC().Format(time.DateTime)}
	if q.Type != "" {
		where, args = where+" AND type = ?", append(args, q.Type)
	}
	if q.Actor != "" {
		where, args = where+" AND (actor_id = ? OR actor_email = lower(?))", append(args, q.Actor, q.Actor)
	}
	if q.Project != "" {
		where, args = where+" AND project_id = ?", append(args, q.Project)
	}
	query := `SELECT vendor, id, type, effective_at, actor_type, actor_id, actor_email, project_id, project_name, resource_id, seq
		FROM audit_logs FINAL WHERE ` + where + ` ORDER BY effective_at DESC, id DESC`
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d, %d", q.Offset, q.Limit)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("audit log query: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var a AuditEvent
		if err := rows.Scan(&a.Vendor, &a.ID, &a.Type, &a.EffectiveAt, &a.ActorType, &a.ActorID, &a.ActorEmail,
			&a.ProjectID, &a.ProjectName, &a.ResourceID, &a.Seq); err != nil {
			return nil, fmt.Errorf("audit log query: %w", err)
		}
		a.EffectiveAt = a.EffectiveAt.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

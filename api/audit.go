package api

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// AuditReader answers audit log queries; *clickhouse.Store is one.
type AuditReader interface {
	AuditLogs(ctx context.Context, q clickhouse.AuditQuery) ([]clickhouse.AuditEvent, error)
}

// auditWindow is the default window of the audit log, before now.
const auditWindow = 30 * 24 * time.Hour

// ListAuditLogs lists audit events; see the proto.
func (s *Server) ListAuditLogs(ctx context.Context, req *ogmav1.ListAuditLogsRequest) (*ogmav1.AuditLogs, error) {
	q := clickhouse.AuditQuery{Tenant: tenantOf(ctx), Type: req.GetType(), Actor: req.GetActor(), Project: req.GetProject()}
	now := s.now().UTC()
	q.Start, q.End = now.Add(-auditWindow), now
	var err error
	if req.GetStart() != "" || req.GetEnd() != "" {
		if q.Start, err = instant("start", req.GetStart()); err != nil {
			return nil, err
		}
		if q.End, err = instant("end", req.GetEnd()); err != nil {
			return nil, err
		}
		if !q.End.After(q.Start) {
			return nil, badRequest("end %s must be after start %s (start is inclusive, end exclusive)", req.GetEnd(), req.GetStart())
		}
	}
	for name, v := range map[string]string{"type": q.Type, "actor": q.Actor, "project": q.Project} {
		if len(v) > maxFilterValue {
			return nil, badRequest("%s: at most %d characters", name, maxFilterValue)
		}
	}
	fp := fingerprint(q.Tenant, q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339), q.Type, q.Actor, q.Project)
	if q.Offset, q.Limit, err = parsePage(req.GetPageSize(), req.GetPageToken(), fp); err != nil {
		return nil, err
	}
	if s.audit == nil {
		return nil, status.Error(codes.Unavailable, "the audit log is not served by this process: no ClickHouse configured")
	}
	events, err := s.audit.AuditLogs(ctx, q)
	if err != nil {
		s.log.ErrorContext(ctx, "audit log query failed", "tenant", q.Tenant, "err", err)
		return nil, queryFailed("audit log")
	}
	out := &ogmav1.AuditLogs{}
	if len(events) == q.Limit {
		events = events[:q.Limit-1]
		out.NextPageToken = pageToken(fp, q.Offset+len(events), q.Limit)
	}
	out.Events = make([]*ogmav1.AuditEvent, 0, len(events))
	for _, e := range events {
		out.Events = append(out.Events, &ogmav1.AuditEvent{Vendor: e.Vendor, Id: e.ID, Type: e.Type,
			EffectiveAt: e.EffectiveAt.Format(time.RFC3339), ActorType: e.ActorType, ActorId: e.ActorID, ActorEmail: e.ActorEmail,
			ProjectId: e.ProjectID, ProjectName: e.ProjectName, ResourceId: e.ResourceID, Seq: e.Seq})
	}
	return out, nil
}

// instant reads an RFC 3339 date (midnight UTC) or instant.
func instant(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, badRequest("%s %q: want an RFC 3339 date (2026-11-01) or instant (2026-11-01T12:00:00Z)", name, v)
	}
	return t.UTC(), nil
}

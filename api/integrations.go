package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"

	"github.com/ogma-dev/ogma/connectors/openai"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
)

// Prober asks a vendor what a key can do; *openai.Client is one.
type Prober interface {
	Probe(ctx context.Context, key seal.Secret, now time.Time) (openai.Checklist, error)
}

// Integrations is what connecting keys needs: the vendor probe, the master
// keyring that seals keys, and a way to publish to ogma.control.
type Integrations struct {
	OpenAI  Prober
	Keyring *seal.Keyring
	Layout  topic.Layout
	// Publish writes ogma.control records and waits until they are stored.
	Publish func(ctx context.Context, recs ...*kgo.Record) error
	// Cursors is the connectors' progress, for backfill reports.
	Cursors *stream.CursorView
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (s *Server) now() time.Time {
	if s.integ != nil && s.integ.Now != nil {
		return s.integ.Now()
	}
	return time.Now()
}

// probeOpenAI checks the request and the tenant, then probes the key.
func (s *Server) probeOpenAI(ctx context.Context, req *ogmav1.ConnectRequest) (seal.Secret, openai.Checklist, error) {
	if s.integ == nil || s.integ.OpenAI == nil {
		return seal.Secret{}, openai.Checklist{}, codeError(codes.Unavailable, "unavailable", "Integrations are not served by this process.")
	}
	key := seal.NewSecret(strings.TrimSpace(req.GetAdminKey()))
	if key.IsZero() {
		return key, openai.Checklist{}, codeError(codes.InvalidArgument, "malformed_request", `The body must be {"admin_key": "sk-admin-…"}.`)
	}
	var residency control.Residency
	s.view.Read(func(st *control.State) { residency = st.Tenants[tenantOf(ctx)].Residency })
	if residency == control.ResidencyEU {
		return key, openai.Checklist{}, codeError(codes.FailedPrecondition, "region_unsupported",
			"OpenAI has no EU data residency: OpenAI organizations are always region US, so an EU tenant cannot connect one. "+
				"Claude (Anthropic) integrations, which an EU tenant can use, are not available in Ogma yet.")
	}
	cl, err := s.integ.OpenAI.Probe(ctx, key, s.now())
	var pe *openai.ProbeError
	switch {
	case errors.As(err, &pe):
		c := codes.FailedPrecondition
		if pe.Code == openai.CodeVendorUnreachable || pe.Code == openai.CodeVendorError {
			c = codes.Unavailable
		}
		return key, cl, codeError(c, pe.Code, pe.Message)
	case err != nil:
		return key, cl, codeError(codes.Unavailable, "vendor_error", "The probe of OpenAI failed; try again later.")
	}
	return key, cl, nil
}

func checklist(cl openai.Checklist) *ogmav1.Checklist {
	f := func(f openai.Flag) *ogmav1.CapabilityFlag {
		return &ogmav1.CapabilityFlag{Value: f.Value, Reason: f.Reason}
	}
	return &ogmav1.Checklist{Admin: f(cl.Admin), Costs: f(cl.Costs), AuditLogs: f(cl.AuditLogs),
		ProjectUsers: f(cl.ProjectUsers), PerUserBreakdown: f(cl.PerUserBreakdown)}
}

// ValidateOpenAI probes the key and saves nothing.
func (s *Server) ValidateOpenAI(ctx context.Context, req *ogmav1.ConnectRequest) (*ogmav1.Checklist, error) {
	_, cl, err := s.probeOpenAI(ctx, req)
	if err != nil {
		return nil, err
	}
	return checklist(cl), nil
}

// ConnectOpenAI probes the key and, when it works, seals it as the next
// generation, with the observed checklist.
func (s *Server) ConnectOpenAI(ctx context.Context, req *ogmav1.ConnectRequest) (*ogmav1.Checklist, error) {
	key, cl, err := s.probeOpenAI(ctx, req)
	if err != nil {
		return nil, err
	}
	tenant, now := tenantOf(ctx), s.now().UTC()
	var integ control.Integration
	s.view.Read(func(st *control.State) {
		integ = st.Integrations[control.VendorKey{Tenant: tenant, Vendor: control.OpenAI}]
	})
	integ = integ.Next(tenant, control.OpenAI, control.KeyHint(key.Reveal()), now)
	if integ.Sealed, err = s.integ.Keyring.Seal(key, tenant, control.OpenAI, integ.Generation); err != nil {
		s.log.ErrorContext(ctx, "seal failed", "tenant", tenant, "err", err)
		return nil, codeError(codes.Internal, "internal", "The key could not be sealed.")
	}
	obs := control.Observed{Tenant: tenant, Vendor: control.OpenAI, Generation: integ.Generation,
		Admin: cl.Admin.Value, Costs: cl.Costs.Value, ProjectUsers: cl.ProjectUsers.Value, PerUserBreakdown: cl.PerUserBreakdown.Value}
	// The observation goes first: a connector that sees the new generation
	// then builds on what the probe saw.
	if err := s.integ.Publish(ctx, control.ObservedRecord(s.integ.Layout, obs), control.IntegrationRecord(s.integ.Layout, integ)); err != nil {
		s.log.ErrorContext(ctx, "publish integration failed", "tenant", tenant, "err", err)
		return nil, codeError(codes.Unavailable, "unavailable", "The key could not be saved; try again.")
	}
	s.waitFor(ctx, func(st *control.State) bool {
		return st.Integrations[control.VendorKey{Tenant: tenant, Vendor: control.OpenAI}].Generation == integ.Generation
	})
	s.log.InfoContext(ctx, "integration connected", "tenant", tenant, "vendor", control.OpenAI, "generation", integ.Generation)
	return checklist(cl), nil
}

// DisconnectOpenAI deletes the sealed key; what was ingested stays.
func (s *Server) DisconnectOpenAI(ctx context.Context, _ *ogmav1.DisconnectRequest) (*ogmav1.DisconnectResponse, error) {
	if s.integ == nil {
		return nil, codeError(codes.Unavailable, "unavailable", "Integrations are not served by this process.")
	}
	tenant := tenantOf(ctx)
	k := control.VendorKey{Tenant: tenant, Vendor: control.OpenAI}
	var integ control.Integration
	var ok bool
	s.view.Read(func(st *control.State) { integ, ok = st.Integrations[k] })
	if !ok {
		return nil, codeError(codes.NotFound, "not_found", "No OpenAI integration is connected.")
	}
	l := s.integ.Layout
	err := s.integ.Publish(ctx, control.Tombstone(control.IntegrationRecord(l, integ)),
		control.Tombstone(control.ObservedRecord(l, control.Observed{Tenant: tenant, Vendor: control.OpenAI})))
	if err != nil {
		return nil, codeError(codes.Unavailable, "unavailable", "The integration could not be removed; try again.")
	}
	s.waitFor(ctx, func(st *control.State) bool { _, ok := st.Integrations[k]; return !ok })
	s.log.InfoContext(ctx, "integration disconnected", "tenant", tenant, "vendor", control.OpenAI)
	return &ogmav1.DisconnectResponse{Disconnected: true}, nil
}

// waitFor waits, briefly, until the control view shows what was just
// published, so that a read after a write sees it.
func (s *Server) waitFor(ctx context.Context, done func(*control.State) bool) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var ok bool
		s.view.Read(func(st *control.State) { ok = done(st) })
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond) // the view follows ogma.control; there is nothing to wait on
	}
}

// ListIntegrations reports the tenant's OpenAI integration: status, key
// hint, per-stream progress and backfill.
func (s *Server) ListIntegrations(ctx context.Context, _ *ogmav1.ListIntegrationsRequest) (*ogmav1.Integrations, error) {
	tenant := tenantOf(ctx)
	out := &ogmav1.Integrations{}
	k := control.VendorKey{Tenant: tenant, Vendor: control.OpenAI}
	var integ control.Integration
	var ok, keyInvalid bool
	streams := map[string]control.StreamStatus{}
	s.view.Read(func(st *control.State) {
		integ, ok = st.Integrations[k]
		keyInvalid = st.KeyInvalid(k)
		for key, ss := range st.Streams {
			if strings.HasPrefix(key, tenant+"/"+control.OpenAI+"/") {
				streams[ss.Stream] = ss
			}
		}
	})
	in := &ogmav1.Integration{Vendor: control.OpenAI, Connected: ok, Region: "us"}
	out.Integrations = append(out.Integrations, in)
	if !ok {
		in.Action = "Connect an OpenAI Admin key: PUT /v1/integrations/openai."
		return out, nil
	}
	in.Status, in.SealedAt, in.Generation, in.KeyHint = control.StatusOK, rfc3339(integ.SealedAt), int32(integ.Generation), integ.Hint
	now := s.now().UTC()
	var skipped []string
	for _, spec := range stream.Of(stream.OpenAI) {
		name := spec.Name
		st := &ogmav1.StreamState{Stream: name}
		if ss, ok := streams[name]; ok {
			st.LastPoll, st.Skipped, st.Error = rfc3339(ss.LastPoll), ss.Skipped, ss.Error
			if ss.Skipped != "" {
				skipped = append(skipped, name+" ("+ss.Skipped+")")
			}
		}
		c, ok := s.cursor(tenant, name)
		if ok {
			st.WindowStart, st.WindowEnd, st.Rows = rfc3339(c.WindowStart), rfc3339(c.WindowEnd), c.Rows
		}
		if spec.Kind == stream.UsageReport {
			in.Backfill = backfill(c, ok, integ.ConnectedAt, now)
			if in.Backfill.Done < in.Backfill.Total {
				in.Status = "backfilling"
			}
		}
		in.Streams = append(in.Streams, st)
	}
	switch {
	case keyInvalid:
		in.Status = control.StatusKeyInvalid
		in.Action = "OpenAI rejected the key (revoked, rotated or deleted). Paste a new Admin key: PUT /v1/integrations/openai; polling resumes where it stopped."
	case len(skipped) > 0:
		in.Action = "Skipped streams: " + strings.Join(skipped, "; ") + ". Connect a key with those scopes to backfill them."
	}
	return out, nil
}

func (s *Server) cursor(tenant, name string) (stream.Cursor, bool) {
	if s.integ == nil || s.integ.Cursors == nil {
		return stream.Cursor{}, false
	}
	return s.integ.Cursors.Get(tenant, control.OpenAI, name)
}

// backfill counts the daily buckets of the window read so far.
func backfill(c stream.Cursor, ok bool, connected, now time.Time) *ogmav1.Backfill {
	day := 24 * time.Hour
	origin := c.Origin
	if !ok {
		origin = connected.UTC().Truncate(day).AddDate(0, 0, -90)
	}
	total := int32(now.Truncate(day).Sub(origin)/day) + 1
	done := int32(0)
	if ok && !c.WindowStart.IsZero() {
		done = min(total, int32(c.WindowStart.Sub(origin)/day))
	}
	return &ogmav1.Backfill{Done: done, Total: total}
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

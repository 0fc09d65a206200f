package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"

	"github.com/ogma-dev/ogma/pipeline/capability"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
)

// Prober asks a vendor what a key can do; each vendor's client is one.
type Prober interface {
	Probe(ctx context.Context, key seal.Secret, now time.Time) (capability.Checklist, error)
}

// Integrations is what connecting keys needs: each vendor's probe, the
// master keyring that seals keys, and a way to publish to ogma.control.
type Integrations struct {
	// Probers maps a vendor (stream.OpenAI, stream.Anthropic) to its probe;
	// a vendor without one cannot be connected through this process.
	Probers map[string]Prober
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

// vendorOf returns the vendor a request names, or a not_found error.
func vendorOf(name string) (stream.Vendor, error) {
	v, ok := stream.VendorOf(name)
	if !ok {
		return v, codeError(codes.NotFound, "unknown_vendor", fmt.Sprintf("There is no vendor %q; Ogma connects %s.", name, strings.Join(stream.VendorNames(), " and ")))
	}
	return v, nil
}

// probe checks the request and the tenant, then probes the key.
func (s *Server) probe(ctx context.Context, req *ogmav1.ConnectRequest) (stream.Vendor, seal.Secret, capability.Checklist, error) {
	var cl capability.Checklist
	v, err := vendorOf(req.GetVendor())
	if err != nil {
		return v, seal.Secret{}, cl, err
	}
	var prober Prober
	if s.integ != nil {
		prober = s.integ.Probers[v.Name]
	}
	if prober == nil {
		return v, seal.Secret{}, cl, codeError(codes.Unavailable, "unavailable", "Integrations are not served by this process.")
	}
	key := seal.NewSecret(strings.TrimSpace(req.GetAdminKey()))
	if key.IsZero() {
		return v, key, cl, codeError(codes.InvalidArgument, "malformed_request", `The body must be {"admin_key": "`+v.KeyExample+`"}.`)
	}
	var residency control.Residency
	s.view.Read(func(st *control.State) { residency = st.Tenants[tenantOf(ctx)].Residency })
	if !v.Serves(string(residency)) {
		return v, key, cl, codeError(codes.FailedPrecondition, "region_unsupported", v.ResidencyNote)
	}
	cl, err = prober.Probe(ctx, key, s.now())
	var pe *capability.ProbeError
	switch {
	case errors.As(err, &pe):
		c := codes.FailedPrecondition
		if pe.Unavailable() {
			c = codes.Unavailable
		}
		return v, key, cl, codeError(c, pe.Code, pe.Message)
	case err != nil:
		return v, key, cl, codeError(codes.Unavailable, capability.CodeVendorError, "The probe of "+v.Title+" failed; try again later.")
	}
	return v, key, cl, nil
}

func checklist(cl capability.Checklist) *ogmav1.Checklist {
	out := &ogmav1.Checklist{Flags: map[string]*ogmav1.CapabilityFlag{}}
	for _, name := range cl.Names() {
		f, _ := cl.Get(name)
		out.Flags[name] = &ogmav1.CapabilityFlag{Value: f.Value, Reason: f.Reason}
	}
	return out
}

// ValidateIntegration probes the key and saves nothing.
func (s *Server) ValidateIntegration(ctx context.Context, req *ogmav1.ConnectRequest) (*ogmav1.Checklist, error) {
	_, _, cl, err := s.probe(ctx, req)
	if err != nil {
		return nil, err
	}
	return checklist(cl), nil
}

// ConnectIntegration probes the key and, when it works, seals it as the
// next generation, with the observed checklist.
func (s *Server) ConnectIntegration(ctx context.Context, req *ogmav1.ConnectRequest) (*ogmav1.Checklist, error) {
	v, key, cl, err := s.probe(ctx, req)
	if err != nil {
		return nil, err
	}
	tenant, now := tenantOf(ctx), s.now().UTC()
	k := control.VendorKey{Tenant: tenant, Vendor: v.Name}
	var integ control.Integration
	s.view.Read(func(st *control.State) { integ, _ = st.Integration(k) })
	integ = integ.Next(tenant, v.Name, control.KeyHint(key.Reveal()), now)
	if integ.Sealed, err = s.integ.Keyring.Seal(key, tenant, v.Name, integ.Generation); err != nil {
		s.log.ErrorContext(ctx, "seal failed", "tenant", tenant, "vendor", v.Name, "err", err)
		return nil, codeError(codes.Internal, "internal", "The key could not be sealed.")
	}
	obs := control.Observed{Tenant: tenant, Vendor: v.Name, Generation: integ.Generation}
	obs.Saw(cl)
	obs.AuditLogs = false // true only once an audit event is ingested
	// The observation goes first: a connector that sees the new generation
	// then builds on what the probe saw.
	if err := s.integ.Publish(ctx, control.ObservedRecord(s.integ.Layout, obs), control.IntegrationRecord(s.integ.Layout, integ)); err != nil {
		s.log.ErrorContext(ctx, "publish integration failed", "tenant", tenant, "vendor", v.Name, "err", err)
		return nil, codeError(codes.Unavailable, "unavailable", "The key could not be saved; try again.")
	}
	s.waitFor(ctx, func(st *control.State) bool { return st.Integrations[k].Generation == integ.Generation })
	s.log.InfoContext(ctx, "integration connected", "tenant", tenant, "vendor", v.Name, "generation", integ.Generation)
	return checklist(cl), nil
}

// DisconnectIntegration deletes the sealed key; what was ingested stays.
func (s *Server) DisconnectIntegration(ctx context.Context, req *ogmav1.DisconnectRequest) (*ogmav1.DisconnectResponse, error) {
	v, err := vendorOf(req.GetVendor())
	if err != nil {
		return nil, err
	}
	if s.integ == nil {
		return nil, codeError(codes.Unavailable, "unavailable", "Integrations are not served by this process.")
	}
	tenant := tenantOf(ctx)
	k := control.VendorKey{Tenant: tenant, Vendor: v.Name}
	var integ control.Integration
	var ok bool
	s.view.Read(func(st *control.State) { integ, ok = st.Integrations[k] })
	if !ok {
		return nil, codeError(codes.NotFound, "not_found", "No "+v.Title+" integration is connected.")
	}
	err = s.integ.Publish(ctx, control.DisconnectRecords(s.integ.Layout, integ)...)
	if err != nil {
		return nil, codeError(codes.Unavailable, "unavailable", "The integration could not be removed; try again.")
	}
	s.waitFor(ctx, func(st *control.State) bool { _, ok := st.Integrations[k]; return !ok })
	s.log.InfoContext(ctx, "integration disconnected", "tenant", tenant, "vendor", v.Name)
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

// ListIntegrations reports every vendor integration of the tenant:
// status, key hint, per-stream progress and backfill.
func (s *Server) ListIntegrations(ctx context.Context, _ *ogmav1.ListIntegrationsRequest) (*ogmav1.Integrations, error) {
	out := &ogmav1.Integrations{}
	for _, v := range stream.Vendors() {
		out.Integrations = append(out.Integrations, s.integration(ctx, v))
	}
	return out, nil
}

// GetIntegration reports one vendor integration of the tenant.
func (s *Server) GetIntegration(ctx context.Context, req *ogmav1.GetIntegrationRequest) (*ogmav1.Integration, error) {
	v, err := vendorOf(req.GetVendor())
	if err != nil {
		return nil, err
	}
	return s.integration(ctx, v), nil
}

func (s *Server) integration(ctx context.Context, v stream.Vendor) *ogmav1.Integration {
	tenant := tenantOf(ctx)
	k := control.VendorKey{Tenant: tenant, Vendor: v.Name}
	var integ control.Integration
	var ok, keyInvalid bool
	var residency control.Residency
	streams := map[string]control.StreamStatus{}
	s.view.Read(func(st *control.State) {
		integ, ok = st.Integrations[k]
		keyInvalid = st.KeyInvalid(k)
		residency = st.Tenants[tenant].Residency
		for _, ss := range st.Streams {
			if ss.Tenant == tenant && ss.Vendor == v.Name {
				streams[ss.Stream] = ss
			}
		}
	})
	region := string(residency)
	if !v.Serves(region) || region == "" {
		region = v.Regions[0]
	}
	in := &ogmav1.Integration{Vendor: v.Name, Connected: ok, Region: region}
	if !ok {
		in.Action = "Connect " + v.KeyName + ": PUT /v1/integrations/" + v.Name + "."
		if !v.Serves(string(residency)) {
			in.Action = v.ResidencyNote
		}
		return in
	}
	in.Status, in.SealedAt, in.Generation, in.KeyHint = control.StatusOK, rfc3339(integ.SealedAt), int32(integ.Generation), integ.Hint
	now := s.now().UTC()
	var skipped []string
	for _, spec := range stream.Of(v.Name) {
		name := spec.Name
		st := &ogmav1.StreamState{Stream: name}
		if ss, ok := streams[name]; ok {
			st.LastPoll, st.Skipped, st.Error = rfc3339(ss.LastPoll), ss.Skipped, ss.Error
			if ss.Skipped != "" {
				skipped = append(skipped, name+" ("+ss.Skipped+")")
			}
		}
		c, ok := s.cursor(stream.ID{Tenant: tenant, Vendor: v.Name, Stream: name})
		if ok {
			st.WindowStart, st.WindowEnd, st.Rows = rfc3339(c.WindowStart), rfc3339(c.WindowEnd), c.Rows
		}
		if in.Backfill == nil && spec.Kind == stream.UsageReport { // the first report the connector polls
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
		in.Action = v.Title + " rejected the key (revoked, rotated or deleted). Paste a new one: PUT /v1/integrations/" + v.Name + "; polling resumes where it stopped."
	case len(skipped) > 0:
		in.Action = "Skipped streams: " + strings.Join(skipped, "; ") + ". Connect a key with those scopes to backfill them."
	}
	return in
}

func (s *Server) cursor(id stream.ID) (stream.Cursor, bool) {
	if s.integ == nil || s.integ.Cursors == nil {
		return stream.Cursor{}, false
	}
	return s.integ.Cursors.Get(id.Tenant, id.Vendor, id.Stream)
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

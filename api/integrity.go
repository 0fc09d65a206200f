package api

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/ogma-dev/ogma/internal/pbjson"
	"github.com/ogma-dev/ogma/pipeline/anchor"
	ogmav1 "github.com/ogma-dev/ogma/proto/ogma/v1"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/rekor"
)

// IntegrityLedger is the ledger side of the integrity calls;
// *clickhouse.Store is one.
type IntegrityLedger interface {
	Head(ctx context.Context, tenant string) (uint64, string, error)
	LastAnchor(ctx context.Context, tenant string) (clickhouse.AnchorRow, bool, error)
	Coverage(ctx context.Context, tenant string) ([]clickhouse.Coverage, error)
	WriteBundle(ctx context.Context, w io.Writer, h anchor.BundleHeader, receipts bool) error
	CheckProjections(ctx context.Context, tenant string) ([]string, error)
}

// Integrity is what the integrity calls need.
type Integrity struct {
	Ledger IntegrityLedger
	// LogURL is the log anchors go to; "" when the installation anchors
	// nowhere.
	LogURL string
	// LogKey returns the log's public key (PEM), which server-side
	// verification pins; called once, when first needed.
	LogKey func(ctx context.Context) ([]byte, error)
	// AnchorKey returns the installation anchor key, or an error wrapping
	// anchor.ErrNoKey before the rekor sink first started.
	AnchorKey func(ctx context.Context) (*anchor.Key, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	logKey []byte
}

// logKeyPEM returns the log's public key, fetched once.
func (in *Integrity) logKeyPEM(ctx context.Context) ([]byte, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.logKey == nil && in.LogKey != nil {
		k, err := in.LogKey(ctx)
		if err != nil {
			return nil, err
		}
		in.logKey = k
	}
	return in.logKey, nil
}

func (s *Server) integrity() (*Integrity, error) {
	if s.evidence == nil || s.evidence.Ledger == nil {
		return nil, status.Error(codes.Unavailable, "integrity is not served by this process: no ClickHouse configured")
	}
	return s.evidence, nil
}

// GetIntegrity says how far the tenant's chain is anchored; see the proto.
func (s *Server) GetIntegrity(ctx context.Context, _ *ogmav1.GetIntegrityRequest) (*ogmav1.Integrity, error) {
	in, err := s.integrity()
	if err != nil {
		return nil, err
	}
	tenant := tenantOf(ctx)
	seq, hash, err := in.Ledger.Head(ctx, tenant)
	if err != nil {
		s.log.ErrorContext(ctx, "integrity query failed", "tenant", tenant, "err", err)
		return nil, queryFailed("integrity")
	}
	out := &ogmav1.Integrity{LogUrl: in.LogURL, LogConfigured: in.LogURL != "", Head: &ogmav1.ChainHead{Seq: seq, Hash: hash},
		Unanchored: saturate(seq)}
	if in.LogURL != "" {
		out.Log = anchor.LogRekorV1
	}
	last, ok, err := in.Ledger.LastAnchor(ctx, tenant)
	if err != nil {
		s.log.ErrorContext(ctx, "integrity query failed", "tenant", tenant, "err", err)
		return nil, queryFailed("integrity")
	}
	if ok {
		out.LastAnchor = &ogmav1.LastAnchor{Index: last.Index, LogIndex: last.LogIndex,
			IntegratedTime: last.IntegratedTime.UTC().Format(time.RFC3339), Seq: last.Seq}
		out.Unanchored = saturate(seq - min(last.Seq, seq))
		now := time.Now
		if in.Now != nil {
			now = in.Now
		}
		out.LagSeconds = max(0, now().Sub(last.IntegratedTime).Seconds())
	}
	cov, err := in.Ledger.Coverage(ctx, tenant)
	if err != nil {
		s.log.ErrorContext(ctx, "integrity query failed", "tenant", tenant, "err", err)
		return nil, queryFailed("integrity")
	}
	out.Coverage = make([]*ogmav1.StreamCoverage, 0, len(cov))
	for _, c := range cov {
		out.Coverage = append(out.Coverage, &ogmav1.StreamCoverage{Vendor: c.Vendor, Stream: c.Stream,
			Buckets: saturate(c.Buckets), FirstBucket: c.First, LastBucket: c.Last})
	}
	return out, nil
}

// GetIntegrityKeys returns the keys a verifier pins; see the proto.
func (s *Server) GetIntegrityKeys(ctx context.Context, _ *ogmav1.GetIntegrityKeysRequest) (*ogmav1.IntegrityKeys, error) {
	in, err := s.integrity()
	if err != nil {
		return nil, err
	}
	out := &ogmav1.IntegrityKeys{LogUrl: in.LogURL}
	k, err := s.anchorKey(ctx, in)
	if err != nil {
		return nil, err
	}
	if k != nil {
		out.AnchorKey, out.AnchorKeyFingerprint = string(k.PublicPEM()), k.Fingerprint()
	}
	if in.LogURL != "" {
		pemBytes, err := s.logKey(ctx, in)
		if err != nil {
			return nil, err
		}
		out.LogKey = string(pemBytes)
	}
	return out, nil
}

// anchorKey returns the installation anchor key, nil before there is one.
func (s *Server) anchorKey(ctx context.Context, in *Integrity) (*anchor.Key, error) {
	if in.AnchorKey == nil {
		return nil, nil
	}
	k, err := in.AnchorKey(ctx)
	switch {
	case errors.Is(err, anchor.ErrNoKey):
		return nil, nil
	case err != nil:
		s.log.ErrorContext(ctx, "anchor key", "err", err)
		return nil, queryFailed("anchor key")
	}
	return k, nil
}

// logKey returns the configured log's public key (PEM).
func (s *Server) logKey(ctx context.Context, in *Integrity) ([]byte, error) {
	pemBytes, err := in.logKeyPEM(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "log key", "url", in.LogURL, "err", err)
		return nil, status.Error(codes.Unavailable, "the log's public key could not be fetched; try again")
	}
	return pemBytes, nil
}

// VerifyIntegrity runs ogma verify's checks over the tenant's ledger and
// receipts, pinning the installation's anchor key and the configured
// log's key, and recomputes the projections; see the proto.
func (s *Server) VerifyIntegrity(ctx context.Context, _ *ogmav1.VerifyIntegrityRequest) (*ogmav1.Verification, error) {
	in, err := s.integrity()
	if err != nil {
		return nil, err
	}
	tenant := tenantOf(ctx)
	var roots rekor.TrustRoots
	withAnchors := false
	if in.LogURL != "" {
		k, err := s.anchorKey(ctx, in)
		if err != nil {
			return nil, err
		}
		if k != nil {
			pemBytes, err := s.logKey(ctx, in)
			if err != nil {
				return nil, err
			}
			if roots.LogKey, err = rekor.ParseLogKey(pemBytes); err != nil {
				s.log.ErrorContext(ctx, "log key", "url", in.LogURL, "err", err)
				return nil, queryFailed("log key")
			}
			roots.AnchorKey, withAnchors = k.Fingerprint(), true
		}
	}
	pr, pw := io.Pipe()
	go func() {
		h := anchor.BundleHeader{Tenant: tenant, FromSeq: 1, Data: true, ExportedAt: time.Now().UTC().Format(time.RFC3339)}
		pw.CloseWithError(in.Ledger.WriteBundle(ctx, pw, h, withAnchors))
	}()
	rep, err := rekor.VerifyBundle(ctx, pr, roots)
	pr.Close() // the writer stops, if the verifier stopped first
	if err != nil {
		s.log.ErrorContext(ctx, "integrity verification could not read the ledger", "tenant", tenant, "err", err)
		return nil, queryFailed("verification")
	}
	mismatches, err := in.Ledger.CheckProjections(ctx, tenant)
	if err != nil {
		s.log.ErrorContext(ctx, "projection check failed", "tenant", tenant, "err", err)
		return nil, queryFailed("verification")
	}
	out := &ogmav1.Verification{Verified: rep.Failure == nil && len(mismatches) == 0, Events: saturate(uint64(rep.Events)),
		Anchors: saturate(uint64(rep.Anchors)), Unanchored: saturate(uint64(rep.Unanchored)), ProjectionMismatches: mismatches}
	if out.ProjectionMismatches == nil {
		out.ProjectionMismatches = []string{}
	}
	if f := rep.Failure; f != nil {
		out.FirstFailure = &ogmav1.VerificationFailure{Seq: f.Seq, Reason: f.Reason, Anchor: f.Anchor}
	}
	return out, nil
}

// saturate fits a count into the API's 32-bit counts.
func saturate(n uint64) uint32 { return uint32(min(n, math.MaxUint32)) }

// bundleChunk is how much of a bundle each streamed message carries.
const bundleChunk = 256 << 10

// GetEvidenceBundle streams the tenant's evidence bundle; see the proto.
func (s *Server) GetEvidenceBundle(req *ogmav1.GetEvidenceBundleRequest, stream ogmav1.OgmaService_GetEvidenceBundleServer) error {
	ctx := stream.Context()
	in, err := s.integrity()
	if err != nil {
		return err
	}
	tenant := tenantOf(ctx)
	from := max(req.GetFromSeq(), 1)
	h := anchor.BundleHeader{Tenant: tenant, FromSeq: from, Data: !req.GetWithoutData(), ExportedAt: time.Now().UTC().Format(time.RFC3339)}
	w := &bundleWriter{send: func(b []byte) error {
		return stream.Send(&httpbody.HttpBody{ContentType: "application/x-ndjson", Data: b})
	}}
	// The header first: the gateway answers with the first message's type.
	if err := in.Ledger.WriteBundle(ctx, w, h, in.LogURL != ""); err != nil {
		s.log.ErrorContext(ctx, "evidence bundle failed", "tenant", tenant, "err", err)
		if w.sent {
			return status.Error(codes.Aborted, "the bundle was cut short; ask again")
		}
		return queryFailed("evidence bundle")
	}
	return w.flush()
}

// bundleWriter gathers a bundle's bytes into messages of bundleChunk.
type bundleWriter struct {
	buf  []byte
	send func([]byte) error
	sent bool
}

func (w *bundleWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) >= bundleChunk {
		return len(p), w.flush()
	}
	return len(p), nil
}

func (w *bundleWriter) flush() error {
	if len(w.buf) == 0 && w.sent {
		return nil
	}
	err := w.send(w.buf)
	w.buf, w.sent = nil, true
	return err
}

// bodyMarshaler is the gateway's marshaler: JSON, and an HttpBody's raw
// bytes — whose streamed chunks (the evidence bundle) are written back to
// back, without the delimiter a stream of JSON messages takes.
type bodyMarshaler struct{ runtime.HTTPBodyMarshaler }

// Delimiter is nothing: the bundle's chunks split its lines anywhere.
func (bodyMarshaler) Delimiter() []byte { return nil }

// answerMarshaler is the gateway's JSON: answers written by pbjson, the
// same bytes as the JSONPb it wraps (UseProtoNames, EmitUnpopulated)
// writes, several times faster — a large usage page spent most of the
// API's own time in protojson. What pbjson declines goes to JSONPb.
type answerMarshaler struct{ *runtime.JSONPb }

// Marshal writes v, a message through pbjson when it can.
func (m answerMarshaler) Marshal(v any) ([]byte, error) {
	if msg, ok := v.(proto.Message); ok {
		if b, ok := pbjson.Append(nil, msg); ok {
			return b, nil
		}
	}
	return m.JSONPb.Marshal(v)
}

package rekor

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/sigstore/rekor/pkg/client"
	rclient "github.com/sigstore/rekor/pkg/generated/client"
	"github.com/sigstore/rekor/pkg/generated/client/entries"
	"github.com/sigstore/rekor/pkg/generated/client/pubkey"
	"github.com/sigstore/rekor/pkg/generated/models"

	"github.com/ogma-dev/ogma/internal/loopback"
	"github.com/ogma-dev/ogma/pipeline/anchor"
)

// Rekor is a Rekor v1 log reached over its REST API.
type Rekor struct {
	url string
	rc  *rclient.Rekor
}

// callTimeout bounds one call to the log: Rekor answers an upload in
// ~150-200 ms (it waits for Trillian to include the entry).
const callTimeout = 30 * time.Second

// NewRekor returns the log at rawURL: https, or http to loopback only.
func NewRekor(rawURL string) (*Rekor, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--rekor-url %q: not a URL", rawURL)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback.Host(u.Hostname())) {
		return nil, fmt.Errorf("--rekor-url %q: want https (plain http only to loopback)", rawURL)
	}
	// No retries inside the client: the sink retries with its own backoff,
	// byte for byte. No keep-alive either (the client's default): one
	// upload an interval gains nothing from an idle connection left open.
	rc, err := client.GetRekorClient(rawURL, client.WithRetryCount(0))
	if err != nil {
		return nil, fmt.Errorf("rekor client: %w", err)
	}
	return &Rekor{url: rawURL, rc: rc}, nil
}

// Add uploads a hashedrekord v0.0.1 entry of a statement: its SHA-256, the
// anchor key's signature over it, and the key. An equivalent entry already
// in the log (409: a retry of an upload that succeeded) is fetched and
// returned as if just added.
func (r *Rekor) Add(ctx context.Context, statement, sig, pubPEM []byte) (anchor.Logged, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	apiVersion, alg, digest := "0.0.1", models.HashedrekordV001SchemaDataHashAlgorithmSha256, anchor.Digest(statement)
	proposed := &models.Hashedrekord{APIVersion: &apiVersion, Spec: models.HashedrekordV001Schema{
		Data: &models.HashedrekordV001SchemaData{Hash: &models.HashedrekordV001SchemaDataHash{Algorithm: &alg, Value: &digest}},
		Signature: &models.HashedrekordV001SchemaSignature{Content: strfmt.Base64(sig),
			PublicKey: &models.HashedrekordV001SchemaSignaturePublicKey{Content: strfmt.Base64(pubPEM)}},
	}}
	created, err := r.rc.Entries.CreateLogEntryContext(ctx, entries.NewCreateLogEntryParams().WithProposedEntry(proposed))
	var conflict *entries.CreateLogEntryConflict
	switch {
	case errors.As(err, &conflict):
		uuid := path.Base(conflict.Location.String())
		got, err := r.rc.Entries.GetLogEntryByUUIDContext(ctx, entries.NewGetLogEntryByUUIDParams().WithEntryUUID(uuid))
		if err != nil {
			return anchor.Logged{}, fmt.Errorf("rekor: fetch the entry already there (%s): %w", uuid, err)
		}
		return r.logged(got.Payload)
	case err != nil:
		return anchor.Logged{}, fmt.Errorf("rekor: add an entry: %w", err)
	}
	return r.logged(created.Payload)
}

// logged reads the one entry of a log answer.
func (r *Rekor) logged(le models.LogEntry) (anchor.Logged, error) {
	if len(le) != 1 {
		return anchor.Logged{}, fmt.Errorf("rekor: %d entries in an answer, want 1", len(le))
	}
	for uuid, e := range le {
		if e.LogIndex == nil || e.IntegratedTime == nil || e.Verification == nil || e.Verification.InclusionProof == nil {
			return anchor.Logged{}, fmt.Errorf("rekor: entry %s without its index, time or inclusion proof", uuid)
		}
		raw, err := json.Marshal(e)
		if err != nil {
			return anchor.Logged{}, fmt.Errorf("rekor: entry %s: %w", uuid, err)
		}
		if _, err := hex.DecodeString(uuid); err != nil {
			return anchor.Logged{}, fmt.Errorf("rekor: entry uuid %q: %w", uuid, err)
		}
		return anchor.Logged{Log: anchor.LogRekorV1, URL: r.url, UUID: uuid, LogIndex: *e.LogIndex,
			IntegratedTime: *e.IntegratedTime, Entry: raw}, nil
	}
	panic("unreachable")
}

// PublicKey returns the log's public key (PEM), which verifiers pin.
func (r *Rekor) PublicKey(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	got, err := r.rc.Pubkey.GetPublicKeyContext(ctx, pubkey.NewGetPublicKeyParams())
	if err != nil {
		return nil, fmt.Errorf("rekor: public key: %w", err)
	}
	return []byte(got.Payload), nil
}

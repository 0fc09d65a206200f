package rekor

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/sigstore/rekor/pkg/generated/models"
	rverify "github.com/sigstore/rekor/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/ogma-dev/ogma/pipeline/anchor"
)

// TrustRoots are what a verifier pins from outside whatever it verifies:
// the log's public key and the fingerprint of the installation's anchor
// key, as the operator publishes it. Keys inside a receipt or bundle are
// only ever compared to these.
type TrustRoots struct {
	LogKey    crypto.PublicKey
	AnchorKey string // hex SHA-256 of the anchor public key's PKIX DER
}

// ParseLogKey reads a log's public key from PEM, as Rekor serves it at
// /api/v1/log/publicKey.
func ParseLogKey(pemBytes []byte) (crypto.PublicKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("log key: no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	return k, nil
}

// ReceiptError says which check of a receipt failed.
type ReceiptError struct {
	Index  uint64
	Reason string
}

func (e *ReceiptError) Error() string { return fmt.Sprintf("anchor %d: %s", e.Index, e.Reason) }

// VerifyReceipt checks a receipt offline against the pinned roots: the
// statement is canonical, made with the pinned anchor key and over the
// root of its leaves; the log's entry is a hashedrekord of exactly that
// statement, signed by that key; and the entry is in the log — its
// inclusion proof leads to a checkpoint the log's key signed, and its
// signed entry timestamp checks. It returns the statement.
func VerifyReceipt(ctx context.Context, rc anchor.Receipt, roots TrustRoots) (anchor.Statement, error) {
	a := rc.Anchor
	st, err := verifyLogged(ctx, a.Index, a.Statement, rc.Logged, roots)
	if err != nil {
		return st, err
	}
	root := anchor.Root(anchor.Hashes(a.Leaves))
	if hex.EncodeToString(root[:]) != st.Root || st.Size != len(a.Leaves) {
		return anchor.Statement{}, &ReceiptError{Index: a.Index, Reason: "its leaves do not make the statement's root"}
	}
	return st, nil
}

// verifyLogged checks statement index as made with the pinned anchor key
// and logged, by the pinned log, as l says. It returns the statement
// whenever it parses, even when a later check fails.
func verifyLogged(ctx context.Context, index uint64, statement string, l anchor.Logged, roots TrustRoots) (anchor.Statement, error) {
	var st anchor.Statement
	fail := func(format string, a ...any) (anchor.Statement, error) {
		return st, &ReceiptError{Index: index, Reason: fmt.Sprintf(format, a...)}
	}
	st, err := anchor.ParseStatement([]byte(statement))
	if err != nil {
		return fail("%v", err)
	}
	if st.Index != index {
		return fail("the statement says index %d", st.Index)
	}
	if st.AnchorKey != roots.AnchorKey {
		return fail("made with anchor key %s, not the pinned %s", st.AnchorKey, roots.AnchorKey)
	}
	if l.Log != anchor.LogRekorV1 {
		return fail("log kind %q: want %q", l.Log, anchor.LogRekorV1)
	}

	var e models.LogEntryAnon
	if err := json.Unmarshal(l.Entry, &e); err != nil {
		return fail("the log entry: %v", err)
	}
	if e.LogIndex == nil || e.IntegratedTime == nil || e.LogID == nil || e.Verification == nil ||
		e.Verification.InclusionProof == nil || e.Verification.InclusionProof.Checkpoint == nil ||
		e.Verification.InclusionProof.RootHash == nil || e.Verification.InclusionProof.LogIndex == nil ||
		e.Verification.InclusionProof.TreeSize == nil {
		return fail("the log entry lacks its index, time, log id or inclusion proof")
	}
	if *e.LogIndex != l.LogIndex || *e.IntegratedTime != l.IntegratedTime {
		return fail("the receipt's log index or time is not its entry's")
	}
	logDER, err := x509.MarshalPKIXPublicKey(roots.LogKey)
	if err != nil {
		return fail("the pinned log key: %v", err)
	}
	if id := sha256.Sum256(logDER); *e.LogID != hex.EncodeToString(id[:]) {
		return fail("logged by %s, not by the pinned log key", *e.LogID)
	}
	verifier, err := signature.LoadVerifier(roots.LogKey, crypto.SHA256)
	if err != nil {
		return fail("the pinned log key: %v", err)
	}
	if err := rverify.VerifyLogEntry(ctx, &e, verifier); err != nil {
		return fail("the log's proof: %v", err)
	}
	body, ok := e.Body.(string)
	if !ok {
		return fail("the log entry's body is not a string")
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return fail("the log entry's body: %v", err)
	}
	leaf := anchor.LeafHash(raw)
	if !strings.HasSuffix(l.UUID, hex.EncodeToString(leaf[:])) {
		return fail("uuid %s is not its entry's", l.UUID)
	}
	if err := checkBody(raw, []byte(statement), roots.AnchorKey); err != nil {
		return fail("%v", err)
	}
	return st, nil
}

// checkBody checks that a hashedrekord body records the statement's
// SHA-256, signed by the anchor key with the pinned fingerprint.
func checkBody(raw, statement []byte, anchorKey string) error {
	var body struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Spec       struct {
			Data struct {
				Hash struct {
					Algorithm string `json:"algorithm"`
					Value     string `json:"value"`
				} `json:"hash"`
			} `json:"data"`
			Signature struct {
				Content   []byte `json:"content"`
				PublicKey struct {
					Content []byte `json:"content"`
				} `json:"publicKey"`
			} `json:"signature"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return fmt.Errorf("the log entry's body: %v", err)
	}
	if body.Kind != "hashedrekord" || body.APIVersion != "0.0.1" {
		return fmt.Errorf("the log entry is a %s %s, not a hashedrekord 0.0.1", body.Kind, body.APIVersion)
	}
	if h := body.Spec.Data.Hash; h.Algorithm != "sha256" || h.Value != anchor.Digest(statement) {
		return errors.New("the log entry records another hash than the statement's")
	}
	b, _ := pem.Decode(body.Spec.Signature.PublicKey.Content)
	if b == nil {
		return errors.New("the log entry's public key is not PEM")
	}
	if anchor.Fingerprint(b.Bytes) != anchorKey {
		return errors.New("the log entry is signed with another key than the pinned anchor key")
	}
	if !anchor.VerifySignature(b.Bytes, statement, body.Spec.Signature.Content) {
		return errors.New("the anchor key's signature over the statement does not check")
	}
	return nil
}

// PublicSigstoreKey is the public key (PEM) of the public Sigstore log,
// https://rekor.sigstore.dev — the default target of `ogma sink rekor` —
// pinned in the repository (rekor.sigstore.dev.pub, as sigstore's TUF
// root ships it; log id c0d23d6a…801d).
//
//go:embed rekor.sigstore.dev.pub
var PublicSigstoreKey []byte

package anchor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Key is the installation anchor key: ECDSA P-256, generated once and kept
// in ogma.control sealed under the master key, like an admin key.
type Key struct {
	priv   *ecdsa.PrivateKey
	pubDER []byte
}

// keyRecord is the ogma.control value of the anchor key.
type keyRecord struct {
	// PublicKey is the PKIX DER of the public key, in clear.
	PublicKey []byte `json:"public_key"`
	// Sealed is the PKCS#8 DER of the private key (base64), sealed for
	// (installation, anchor-key, 1).
	Sealed seal.Envelope `json:"sealed"`
}

// The associated data the private key is sealed under.
const (
	sealTenant = "installation"
	sealVendor = "anchor-key"
	sealGen    = 1
)

// Fingerprint returns the hex SHA-256 of the public key's PKIX DER: the
// statement's anchor_key, and what an operator publishes for verifiers to
// pin.
func (k *Key) Fingerprint() string { return Fingerprint(k.pubDER) }

// Fingerprint returns the hex SHA-256 of a PKIX DER public key.
func Fingerprint(pubDER []byte) string {
	d := sha256.Sum256(pubDER)
	return hex.EncodeToString(d[:])
}

// PublicDER returns the public key's PKIX DER.
func (k *Key) PublicDER() []byte { return k.pubDER }

// PublicPEM returns the public key as a PEM "PUBLIC KEY" block.
func (k *Key) PublicPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.pubDER})
}

// Sign returns the ASN.1 ECDSA signature over SHA-256(msg).
func (k *Key) Sign(msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, k.priv, d[:])
}

// VerifySignature reports whether sig is an anchor key's signature over msg,
// for the PKIX DER public key pubDER.
func VerifySignature(pubDER, msg, sig []byte) bool {
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	ec, ok := pub.(*ecdsa.PublicKey)
	if err != nil || !ok || ec.Curve != elliptic.P256() {
		return false
	}
	d := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(ec, d[:], sig)
}

// ErrNoKey is returned by [LoadKey] for an installation without an anchor
// key yet.
var ErrNoKey = errors.New("the installation has no anchor key yet")

// LoadKey reads the installation anchor key from ogma.control and opens it
// under kr. The record must be signed under kr ([control.Authentic]).
func LoadKey(ctx context.Context, dial topic.Dial, kr *seal.Keyring) (*Key, error) {
	var last *kgo.Record
	err := topic.ReadToEnd(ctx, dial, topic.Control, []int32{0}, func(r *kgo.Record) error {
		if string(r.Key) == control.AnchorKeyKey && r.Value != nil && control.Authentic(kr, r) == nil {
			last = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the anchor key: %w", err)
	}
	if last == nil {
		return nil, ErrNoKey
	}
	var kv keyRecord
	if err := json.Unmarshal(last.Value, &kv); err != nil {
		return nil, fmt.Errorf("the anchor key record: %w", err)
	}
	secret, err := kr.Open(kv.Sealed, sealTenant, sealVendor, sealGen)
	if err != nil {
		return nil, fmt.Errorf("open the anchor key: %w", err)
	}
	der, err := base64.StdEncoding.DecodeString(secret.Reveal())
	if err != nil {
		return nil, fmt.Errorf("the anchor key: %w", err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	ec, ok := priv.(*ecdsa.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("the anchor key is not an ECDSA key (%v)", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil || string(pubDER) != string(kv.PublicKey) {
		return nil, errors.New("the anchor key record's public key is not its private key's")
	}
	return &Key{priv: ec, pubDER: pubDER}, nil
}

// EnsureKey returns the installation anchor key, generating and recording
// it on first use.
func EnsureKey(ctx context.Context, dial topic.Dial, kr *seal.Keyring) (*Key, error) {
	k, err := LoadKey(ctx, dial, kr)
	if !errors.Is(err, ErrNoKey) {
		return k, err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the anchor key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode the anchor key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encode the anchor key: %w", err)
	}
	sealed, err := kr.Seal(seal.NewSecret(base64.StdEncoding.EncodeToString(der)), sealTenant, sealVendor, sealGen)
	if err != nil {
		return nil, err
	}
	v, _ := json.Marshal(keyRecord{PublicKey: pubDER, Sealed: sealed})
	rec := &kgo.Record{Topic: topic.Control, Partition: 0, Key: []byte(control.AnchorKeyKey), Value: v}
	if err := control.Publish(ctx, dial, kr, rec); err != nil {
		return nil, err
	}
	// Read back: of two first starts at once, the later record is the key.
	return LoadKey(ctx, dial, kr)
}

// RewrapKey re-wraps the installation anchor key's data key under kr's
// current master key (after a rotation), and records it; it reports
// whether it did (false when there is no key, or it is already so).
func RewrapKey(ctx context.Context, dial topic.Dial, kr *seal.Keyring) (bool, error) {
	var last *kgo.Record
	err := topic.ReadToEnd(ctx, dial, topic.Control, []int32{0}, func(r *kgo.Record) error {
		if string(r.Key) == control.AnchorKeyKey && r.Value != nil && control.Authentic(kr, r) == nil {
			last = r
		}
		return nil
	})
	if err != nil || last == nil {
		return false, err
	}
	var kv keyRecord
	if err := json.Unmarshal(last.Value, &kv); err != nil {
		return false, fmt.Errorf("the anchor key record: %w", err)
	}
	sealed, rewrapped, err := kr.Rewrap(kv.Sealed, sealTenant, sealVendor, sealGen)
	if err != nil || !rewrapped {
		return false, err
	}
	kv.Sealed = sealed
	v, _ := json.Marshal(kv)
	rec := &kgo.Record{Topic: topic.Control, Partition: 0, Key: []byte(control.AnchorKeyKey), Value: v}
	return true, control.Publish(ctx, dial, kr, rec)
}

// Package seal keeps vendor admin keys secret: [Secret] is a string that
// redacts itself in every printed, logged or marshaled form, and [Keyring]
// seals a secret for storage with envelope encryption (Tink AEAD).
//
// A sealed secret is an [Envelope]: a fresh AES-256-GCM data key encrypts the
// secret and is itself wrapped by the installation master key. Both layers
// bind the associated data tenant|vendor|generation, so a blob copied to
// another tenant, vendor or generation does not open, and an old blob replayed
// does not decrypt as the current one.
package seal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Redacted is what a [Secret] shows of itself.
const Redacted = "REDACTED"

// Secret is a secret string, such as a vendor admin key. It prints, logs and
// marshals as [Redacted]; only [Secret.Reveal] returns the value. The zero
// value is the empty secret.
type Secret struct {
	// Behind a pointer: fmt cannot call methods on a struct's unexported
	// fields and prints them by reflection, and a pointer inside another
	// value prints as its address.
	v *string
}

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: &s} }

// Reveal returns the secret value. Call it only at the point of use (an
// outbound Authorization header, the sealing call).
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// Format writes [Redacted] whatever the verb: %d or %x of a struct would
// otherwise print its fields.
func (s Secret) Format(f fmt.State, _ rune) { io.WriteString(f, Redacted) }

// String returns [Redacted].
func (s Secret) String() string { return Redacted }

// GoString returns [Redacted], so %#v does not leak either.
func (s Secret) GoString() string { return Redacted }

// LogValue returns [Redacted] for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON returns the JSON string [Redacted].
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns [Redacted], for encoders that prefer text.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Envelope is a sealed secret as stored in ogma.control.
type Envelope struct {
	V           int    `json:"v"`
	MasterKeyID uint32 `json:"master_key_id"`
	WrappedDEK  []byte `json:"wrapped_dek"`
	Ciphertext  []byte `json:"ciphertext"`
}

// ErrOpen is returned when an envelope does not open: wrong tenant, vendor
// or generation, a master key that is not in the keyring, or tampering.
var ErrOpen = errors.New("seal: envelope does not open")

// Keyring holds the installation master key. It is safe for concurrent use.
type Keyring struct {
	master tink.AEAD
	id     uint32
	mac    map[uint32][]byte // by master key id; see [Keyring.MAC]
}

// LoadKeyring reads a master key file written by [CreateKeyFile]. Like ssh
// with a private key, it refuses a file that its group or others can read
// or write: whoever reads it opens every sealed admin key.
func LoadKeyring(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("master key %s is accessible to its group or others (mode %04o): "+
			"whoever reads it opens every sealed admin key; make it private (chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return nil, fmt.Errorf("parse master key %s: %w", path, err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	mac, err := macKeys(h)
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	return &Keyring{master: a, id: h.KeysetInfo().GetPrimaryKeyId(), mac: mac}, nil
}

// CreateKeyFile writes a new master key (a Tink AES-256-GCM keyset) to path
// with mode 0600, unless a file is already there. It reports whether it wrote
// one.
func CreateKeyFile(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return false, fmt.Errorf("generate master key: %w", err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return false, fmt.Errorf("encode master key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("create master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, fmt.Errorf("create master key: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return false, fmt.Errorf("write master key: %w", err)
	}
	return true, f.Close()
}

// MasterKeyID returns the id of the master key that seals new envelopes.
func (k *Keyring) MasterKeyID() uint32 { return k.id }

func associatedData(tenant, vendor string, generation int) []byte {
	return []byte(tenant + "|" + vendor + "|" + strconv.Itoa(generation))
}

// Seal encrypts s for (tenant, vendor, generation) under a fresh data key.
func (k *Keyring) Seal(s Secret, tenant, vendor string, generation int) (Envelope, error) {
	ad := associatedData(tenant, vendor, generation)
	dek, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return Envelope{}, fmt.Errorf("seal: generate data key: %w", err)
	}
	a, err := aead.New(dek)
	if err != nil {
		return Envelope{}, fmt.Errorf("seal: data key: %w", err)
	}
	ct, err := a.Encrypt([]byte(s.Reveal()), ad)
	if err != nil {
		return Envelope{}, fmt.Errorf("seal: encrypt: %w", err)
	}
	var wrapped bytes.Buffer
	if err := dek.WriteWithAssociatedData(keyset.NewBinaryWriter(&wrapped), k.master, ad); err != nil {
		return Envelope{}, fmt.Errorf("seal: wrap data key: %w", err)
	}
	return Envelope{V: 1, MasterKeyID: k.id, WrappedDEK: wrapped.Bytes(), Ciphertext: ct}, nil
}

// Open decrypts e as sealed for (tenant, vendor, generation). Any mismatch
// or tampering returns an error wrapping [ErrOpen].
func (k *Keyring) Open(e Envelope, tenant, vendor string, generation int) (Secret, error) {
	if e.V != 1 {
		return Secret{}, fmt.Errorf("%w: unknown envelope version %d", ErrOpen, e.V)
	}
	ad := associatedData(tenant, vendor, generation)
	dek, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(e.WrappedDEK)), k.master, ad)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: unwrap data key (master key %d)", ErrOpen, e.MasterKeyID)
	}
	a, err := aead.New(dek)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: data key", ErrOpen)
	}
	pt, err := a.Decrypt(e.Ciphertext, ad)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: decrypt", ErrOpen)
	}
	return NewSecret(string(pt)), nil
}

// compile-time checks that Secret redacts in every form.
var (
	_ fmt.Stringer   = Secret{}
	_ fmt.Formatter  = Secret{}
	_ fmt.GoStringer = Secret{}
	_ slog.LogValuer = Secret{}
	_ json.Marshaler = Secret{}
)

package seal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

// RotateKeyFile adds a new AES-256-GCM key to the master key file at path
// and makes it the primary: new envelopes are wrapped under it, and the
// old keys stay so that every envelope still opens until re-wrapped
// ([Keyring.Rewrap]). The file is replaced atomically, mode 0600. It
// returns the new key's id.
func RotateKeyFile(path string) (uint32, error) {
	if _, err := LoadKeyring(path); err != nil {
		return 0, err // also refuses a file others can read
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	if h, err = m.Handle(); err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".master-key-*")
	if err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	return id, nil
}

// Rewrap returns e with its data key wrapped under the current master key;
// the secret's ciphertext is left as it is. An envelope already under the
// current master key is returned unchanged, with rewrapped false, so that
// nothing is wrapped twice.
func (k *Keyring) Rewrap(e Envelope, tenant, vendor string, generation int) (_ Envelope, rewrapped bool, err error) {
	if e.MasterKeyID == k.id {
		return e, false, nil
	}
	ad := associatedData(tenant, vendor, generation)
	dek, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(e.WrappedDEK)), k.master, ad)
	if err != nil {
		return e, false, fmt.Errorf("%w: unwrap data key (master key %d)", ErrOpen, e.MasterKeyID)
	}
	var wrapped bytes.Buffer
	if err := dek.WriteWithAssociatedData(keyset.NewBinaryWriter(&wrapped), k.master, ad); err != nil {
		return e, false, fmt.Errorf("seal: wrap data key: %w", err)
	}
	e.MasterKeyID, e.WrappedDEK = k.id, wrapped.Bytes()
	return e, true, nil
}

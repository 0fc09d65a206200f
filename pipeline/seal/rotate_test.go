package seal_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/seal/sealtest"
)

// Issue 13: rotating the master key adds a primary; envelopes sealed
// before still open, and re-wrapping moves each data key under the new
// master key once — the ciphertext is never touched, and an envelope
// already re-wrapped is left alone.
func TestRotateRewrapsEachEnvelopeOnce(t *testing.T) {
	old, path := sealtest.Keyring(t)
	e, err := old.Seal(seal.NewSecret("sk-admin-abc"), "acme", "openai", 3)
	if err != nil {
		t.Fatal(err)
	}
	id, err := seal.RotateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("the rotated key file has mode %04o, want 0600", fi.Mode().Perm())
	}
	kr, err := seal.LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if kr.MasterKeyID() != id || id == old.MasterKeyID() {
		t.Fatalf("master key id %d after rotating to %d (was %d)", kr.MasterKeyID(), id, old.MasterKeyID())
	}
	if s, err := kr.Open(e, "acme", "openai", 3); err != nil || s.Reveal() != "sk-admin-abc" {
		t.Fatalf("an envelope sealed before the rotation does not open: %v", err)
	}
	re, rewrapped, err := kr.Rewrap(e, "acme", "openai", 3)
	if err != nil || !rewrapped || re.MasterKeyID != id || !bytes.Equal(re.Ciphertext, e.Ciphertext) || bytes.Equal(re.WrappedDEK, e.WrappedDEK) {
		t.Fatalf("Rewrap = master key %d, rewrapped %v, %v; want the data key under %d, the ciphertext as it was", re.MasterKeyID, rewrapped, err, id)
	}
	if s, err := kr.Open(re, "acme", "openai", 3); err != nil || s.Reveal() != "sk-admin-abc" {
		t.Fatalf("the re-wrapped envelope does not open: %v", err)
	}
	if again, rewrapped, err := kr.Rewrap(re, "acme", "openai", 3); err != nil || rewrapped || !bytes.Equal(again.WrappedDEK, re.WrappedDEK) {
		t.Errorf("a second Rewrap changed the envelope (rewrapped %v, %v)", rewrapped, err)
	}
	if _, _, err := kr.Rewrap(e, "acme", "openai", 4); err == nil {
		t.Error("Rewrap of another generation succeeded")
	}
}

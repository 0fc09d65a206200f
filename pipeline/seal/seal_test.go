package seal_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ogma-dev/ogma/pipeline/seal"
)

const sentinel = "sk-admin-SENTINEL-0123456789abcdefghij"

func keyring(t *testing.T) (*seal.Keyring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "master.key")
	created, err := seal.CreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("CreateKeyFile = %v, %v", created, err)
	}
	kr, err := seal.LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	return kr, path
}

func TestSealOpensOnlyForItsTenantVendorAndGeneration(t *testing.T) {
	kr, _ := keyring(t)
	env, err := kr.Seal(seal.NewSecret(sentinel), "acme", "openai", 2)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(env.Ciphertext, []byte(sentinel)) || bytes.Contains(env.WrappedDEK, []byte(sentinel)) {
		t.Fatal("the envelope holds the secret in clear")
	}
	got, err := kr.Open(env, "acme", "openai", 2)
	if err != nil || got.Reveal() != sentinel {
		t.Fatalf("Open = %q, %v; want the secret", got.Reveal(), err)
	}
	tampered := env
	tampered.Ciphertext = append([]byte(nil), env.Ciphertext...)
	tampered.Ciphertext[len(tampered.Ciphertext)-1] ^= 1
	other, _ := keyring(t)
	cases := []struct {
		name           string
		kr             *seal.Keyring
		env            seal.Envelope
		tenant, vendor string
		gen            int
	}{
		{"another tenant", kr, env, "globex", "openai", 2},
		{"another vendor", kr, env, "acme", "anthropic", 2},
		{"an older generation replayed as current", kr, env, "acme", "openai", 3},
		{"tampered ciphertext", kr, tampered, "acme", "openai", 2},
		{"another master key", other, env, "acme", "openai", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.kr.Open(tc.env, tc.tenant, tc.vendor, tc.gen); !errors.Is(err, seal.ErrOpen) {
				t.Errorf("Open = %v, want ErrOpen", err)
			}
		})
	}
}

// A secret redacts itself in every printed, logged or marshaled form.
func TestSecretRedacts(t *testing.T) {
	s := seal.NewSecret(sentinel)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "key", s)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "key", s)
	j, _ := json.Marshal(struct{ Key seal.Secret }{s})
	// Inside unexported fields fmt calls no method: it prints by reflection.
	type holder struct {
		key    seal.Secret
		nested struct{ key seal.Secret }
		ptr    *seal.Secret
		list   []seal.Secret
		byName map[string]seal.Secret
	}
	h := holder{key: s, ptr: &s, list: []seal.Secret{s}, byName: map[string]seal.Secret{"k": s}}
	h.nested.key = s
	forms := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X %d %T %p", s, s, s, s, s, s, s, s, s, &s),
		fmt.Sprintf("%v", struct{ K seal.Secret }{s}), string(j), logs.String(), fmt.Errorf("wrap %v", s).Error(),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		forms = append(forms, fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	for _, f := range forms {
		if strings.Contains(f, "SENTINEL") {
			t.Errorf("secret leaked: %s", f)
		}
	}
	if !strings.Contains(string(j), seal.Redacted) {
		t.Errorf("JSON = %s, want %s", j, seal.Redacted)
	}
}

func TestKeyFileIsPrivateAndNeverOverwritten(t *testing.T) {
	_, path := keyring(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	before, _ := os.ReadFile(path)
	created, err := seal.CreateKeyFile(path)
	after, _ := os.ReadFile(path)
	if created || err != nil || !bytes.Equal(before, after) {
		t.Errorf("CreateKeyFile over an existing key = %v, %v; it must leave it alone", created, err)
	}
}

// A master key others can read is refused, as ssh refuses such a private
// key, and the message says how to fix it.
func TestKeyringRefusesAKeyOthersCanRead(t *testing.T) {
	_, path := keyring(t)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := seal.LoadKeyring(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: LoadKeyring = %v, want a refusal saying chmod 600", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	if _, err := seal.LoadKeyring(path); err != nil {
		t.Errorf("mode 0600: %v", err)
	}
}

// A tag checks only for its own message under the master key it was made
// with: another installation's key, or one changed byte, fails.
func TestMACChecksOnlyItsMessageUnderItsMasterKey(t *testing.T) {
	kr, path := keyring(t)
	again, err := seal.LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := keyring(t)
	msg := []byte("token/abc\x00{\"tenant\":\"acme\"}")
	id, tag := kr.MAC(msg)
	if id != kr.MasterKeyID() || len(tag) != 32 {
		t.Fatalf("MAC = key %d, %d bytes; want key %d, 32 bytes", id, len(tag), kr.MasterKeyID())
	}
	if err := again.CheckMAC(id, msg, tag); err != nil {
		t.Errorf("the same master key loaded again: %v", err)
	}
	changed := bytes.Clone(msg)
	changed[len(changed)-3] ^= 1
	for name, err := range map[string]error{
		"a changed message":          kr.CheckMAC(id, changed, tag),
		"another installation's key": other.CheckMAC(other.MasterKeyID(), msg, tag),
		"a master key it never held": kr.CheckMAC(id+1, msg, tag),
		"a tag cut short":            kr.CheckMAC(id, msg, tag[:16]),
	} {
		if !errors.Is(err, seal.ErrMAC) {
			t.Errorf("%s: CheckMAC = %v, want ErrMAC", name, err)
		}
	}
}

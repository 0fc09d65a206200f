package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
)

// Issue 13: the life of tenants, tokens and the master key from the CLI —
// list, revoke a token, rotate the master key (every sealed key re-wrapped
// once, still opening), and offboard a tenant (its keys and tokens gone).
func TestTenantTokenAndKeyLifecycle(t *testing.T) {
	c, env, masterKey, keyFile := cliEnv(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := ogma(t, env, args...)
		if err != nil {
			t.Fatalf("ogma %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	run("tenant", "create", "--id", "acme", "--name", "Acme", "--openai-admin-key-file", keyFile)
	run("tenant", "create", "--id", "globex", "--name", "Globex", "--anthropic-admin-key-file", keyFile)
	run("token", "create", "--tenant", "acme", "--name", "ci")
	run("token", "create", "--tenant", "globex", "--name", "console")
	kr, _ := seal.LoadKeyring(masterKey)
	if _, err := anchor.EnsureKey(t.Context(), c.Dial, kr); err != nil {
		t.Fatal(err)
	}

	if out := run("tenant", "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "openai (generation 1, ok)") ||
		!strings.Contains(out, "globex") || strings.Contains(out, sentinelKey) {
		t.Errorf("tenant list:\n%s", out)
	}
	out := run("token", "list", "--tenant", "acme")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "acme") || !strings.Contains(lines[1], "ci") {
		t.Fatalf("token list --tenant acme:\n%s", out)
	}
	id := strings.Fields(lines[1])[0]
	if _, err := ogma(t, env, "token", "revoke", "--id", id[:4]); err == nil {
		t.Error("revoke with 4 characters of an id: accepted")
	}
	run("token", "revoke", "--id", id)
	state := func() *control.State {
		kr, err := seal.LoadKeyring(masterKey)
		if err != nil {
			t.Fatal(err)
		}
		st, err := control.Load(t.Context(), c.Dial, c.Layout, kr)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, tok := range state().Tokens {
		if tok.Tenant == "acme" {
			t.Errorf("acme's revoked token is still in force: %+v", tok)
		}
	}

	// Rotation: every envelope moves under the new primary, once.
	before := kr.MasterKeyID()
	out = run("keys", "rotate")
	if !strings.Contains(out, "2 vendor keys re-wrapped") || !strings.Contains(out, "anchor key re-wrapped: true") {
		t.Errorf("keys rotate:\n%s", out)
	}
	kr, _ = seal.LoadKeyring(masterKey)
	st := state()
	for k, integ := range st.Integrations {
		if integ.Sealed.MasterKeyID != kr.MasterKeyID() || integ.Sealed.MasterKeyID == before {
			t.Errorf("%v is sealed under master key %d, want %d", k, integ.Sealed.MasterKeyID, kr.MasterKeyID())
		}
		if s, err := kr.Open(integ.Sealed, k.Tenant, k.Vendor, integ.Generation); err != nil || s.Reveal() != sentinelKey {
			t.Errorf("%v does not open after the rotation: %v", k, err)
		}
	}
	if _, err := anchor.LoadKey(t.Context(), c.Dial, kr); err != nil {
		t.Errorf("the anchor key after the rotation: %v", err)
	}
	if out := run("keys", "rotate", "--resume"); !strings.Contains(out, "0 vendor keys re-wrapped") || !strings.Contains(out, "re-wrapped: false") {
		t.Errorf("keys rotate --resume after a whole rotation re-wrapped again:\n%s", out)
	}

	// Offboarding: the id twice, then the tenant's keys and tokens are gone.
	if _, err := ogma(t, env, "tenant", "delete", "--id", "globex"); err == nil {
		t.Error("tenant delete without --confirm: accepted")
	}
	run("tenant", "delete", "--id", "globex", "--confirm", "globex")
	st = state()
	if _, ok := st.Tenants["globex"]; ok {
		t.Error("globex survived its deletion")
	}
	for k := range st.Integrations {
		if k.Tenant == "globex" {
			t.Errorf("globex's %s key survived its deletion", k.Vendor)
		}
	}
	for _, tok := range st.Tokens {
		if tok.Tenant == "globex" {
			t.Errorf("globex's token %s survived its deletion", tok.Name)
		}
	}
	if _, ok := st.Tenants["acme"]; !ok || len(st.Integrations) != 1 {
		t.Errorf("acme after globex's deletion: tenant %v, integrations %v", ok, st.Integrations)
	}
}

// Issue 15: a production installation makes its master key once, before
// any role starts; `keys init` never replaces one (it would orphan every
// sealed key).
func TestKeysInitWritesAMasterKeyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "master.key")
	env := map[string]string{"OGMA_MASTER_KEY_FILE": path}
	if out, err := ogma(t, env, "keys", "init"); err != nil || !strings.Contains(out, "written") {
		t.Fatalf("keys init = %q, %v", out, err)
	}
	first, _ := os.ReadFile(path)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("master key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if _, err := seal.LoadKeyring(path); err != nil {
		t.Errorf("the new master key does not load: %v", err)
	}
	if out, err := ogma(t, env, "keys", "init"); err != nil || !strings.Contains(out, "kept") {
		t.Errorf("keys init again = %q, %v", out, err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Error("keys init replaced an existing master key")
	}
	if _, err := ogma(t, nil, "keys", "init"); err == nil {
		t.Error("keys init without a file: accepted")
	}
}

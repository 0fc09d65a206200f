package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/sinks/clickhouse/chtest"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

// ogma runs the CLI in-process and returns what it printed.
func ogma(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd(envOf(env), runners{})
	var out, errOut strings.Builder
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// cliEnv returns a broker, the environment of CLI runs against it with a
// new master key, that key's file, and a file holding sentinelKey.
func cliEnv(t *testing.T) (c *topictest.Cluster, env map[string]string, masterKey, keyFile string) {
	t.Helper()
	c = topictest.New(t)
	dir := t.TempDir()
	masterKey = filepath.Join(dir, "master.key")
	if _, err := seal.CreateKeyFile(masterKey); err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, "key.txt")
	os.WriteFile(keyFile, []byte(sentinelKey+"\n"), 0o600)
	return c, map[string]string{"OGMA_KAFKA_BROKERS": c.Broker.Addrs()[0], "OGMA_MASTER_KEY_FILE": masterKey}, masterKey, keyFile
}

// Issue 2: `ogma tenant create` records the tenant and seals its key;
// `ogma token create` prints a token whose hash alone is stored.
func TestTenantAndTokenCreate(t *testing.T) {
	c, env, masterKey, keyFile := cliEnv(t)

	if _, err := ogma(t, env, "tenant", "create", "--id", "eu-co", "--name", "EU", "--residency", "eu", "--openai-admin-key-file", keyFile); err == nil ||
		!strings.Contains(err.Error(), "no EU data residency") {
		t.Errorf("an EU tenant with an OpenAI key = %v, want refused: OpenAI has no EU residency", err)
	}
	out, err := ogma(t, env, "tenant", "create", "--id", "acme", "--name", "Acme", "--residency", "eu", "--anthropic-admin-key-file", keyFile)
	if err != nil || strings.TrimSpace(out) != "acme" {
		t.Fatalf("tenant create = %q, %v", out, err)
	}
	if _, err := ogma(t, env, "tenant", "create", "--id", "acme", "--name", "Again"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("creating acme twice = %v, want already exists", err)
	}
	if _, err := ogma(t, env, "tenant", "create", "--id", "x", "--name", "X", "--residency", "mars"); err == nil || !strings.Contains(err.Error(), "residency") {
		t.Errorf("residency mars = %v, want an error naming residency", err)
	}
	tok, err := ogma(t, env, "token", "create", "--tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)
	if _, err := ogma(t, env, "token", "create", "--tenant", "nobody"); err == nil {
		t.Error("a token for a missing tenant was created")
	}

	kr, err := seal.LoadKeyring(masterKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := control.Load(t.Context(), c.Dial, c.Layout, kr) // signed records only
	if err != nil {
		t.Fatal(err)
	}
	if ten := st.Tenants["acme"]; ten.Residency != control.ResidencyEU || ten.Name != "Acme" {
		t.Errorf("tenant = %+v", ten)
	}
	if st.Tokens[control.HashToken(tok)].Tenant != "acme" {
		t.Error("the printed token's hash is not recorded for acme")
	}
	for h := range st.Tokens {
		if strings.Contains(tok, h) || h == tok {
			t.Error("the token is stored in clear")
		}
	}
	integ := st.Integrations[control.VendorKey{Tenant: "acme", Vendor: stream.Anthropic}]
	key, err := kr.Open(integ.Sealed, "acme", stream.Anthropic, integ.Generation)
	if err != nil || key.Reveal() != sentinelKey || integ.Generation != 1 {
		t.Errorf("sealed key generation %d opens to a different key (%v)", integ.Generation, err)
	}
	for _, r := range c.Records(t, "ogma.control") {
		if strings.Contains(string(r.Value), "SENTINEL") {
			t.Errorf("ogma.control record %s holds the key in clear", r.Key)
		}
	}
}

const sentinelKey = "sk-admin-SENTINEL-abcdefghijklmnopqrstuvwxyz012345"

// Issue 2: --print-keys prints one key of each kind, deterministic for the
// seed `ogma dev` uses.
func TestSimPrintKeys(t *testing.T) {
	out, err := ogma(t, nil, "sim", "openai", "--print-keys")
	if err != nil {
		t.Fatal(err)
	}
	sim := openaisim.New(openaisim.Config{Seed: devSeed})
	var want strings.Builder
	for _, k := range openaisim.KeyKinds {
		want.WriteString(k + "\t" + sim.Key(k) + "\n")
	}
	if out != want.String() {
		t.Errorf("--print-keys printed\n%s\nwant\n%s", out, want.String())
	}
	if !strings.HasPrefix(sim.Key(openaisim.KeyFull), "sk-admin-") || !strings.HasPrefix(sim.Key(openaisim.KeyProject), "sk-proj-") {
		t.Error("key kinds do not carry the vendor's prefixes")
	}
}

// Every role can authenticate to Kafka (SCRAM here, PLAIN over TLS only),
// the password from the environment or a file, never a flag's value.
func TestKafkaSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "ogma", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	masterKey := filepath.Join(dir, "master.key")
	if _, err := seal.CreateKeyFile(masterKey); err != nil {
		t.Fatal(err)
	}
	args := []string{"tenant", "create", "--id", "acme", "--name", "Acme", "--kafka-brokers", c.ListenAddrs()[0],
		"--kafka-sasl", "scram-sha-256", "--kafka-sasl-user", "ogma"}
	env := func(pass string) map[string]string {
		return map[string]string{"OGMA_MASTER_KEY_FILE": masterKey, "OGMA_KAFKA_SASL_PASSWORD": pass}
	}
	if _, err := ogma(t, env("wrong"), args...); err == nil {
		t.Error("a wrong SASL password was accepted")
	}
	if out, err := ogma(t, env("s3cret"), args...); err != nil || strings.TrimSpace(out) != "acme" {
		t.Errorf("tenant create over SCRAM = %q, %v", out, err)
	}
	passFile := filepath.Join(dir, "kafka-pass")
	os.WriteFile(passFile, []byte("s3cret\n"), 0o600)
	if _, err := ogma(t, map[string]string{"OGMA_MASTER_KEY_FILE": masterKey}, "token", "create", "--tenant", "acme",
		"--kafka-brokers", c.ListenAddrs()[0], "--kafka-sasl", "scram-sha-256", "--kafka-sasl-user", "ogma",
		"--kafka-sasl-password-file", passFile); err != nil {
		t.Errorf("token create with the password from a file: %v", err)
	}
	plainArgs := append(slices.Clone(args[:len(args)-4]), "--kafka-sasl", "plain", "--kafka-sasl-user", "ogma")
	if _, err := ogma(t, env("s3cret"), plainArgs...); err == nil || !strings.Contains(err.Error(), "needs --kafka-tls") {
		t.Errorf("PLAIN without TLS = %v, want a refusal", err)
	}
}

// The roles that use ClickHouse pass it a user, a password (from the
// environment or a file) and TLS: the server sees each.
func TestClickHouseCredentialsReachTheServer(t *testing.T) {
	c := topictest.New(t)
	db := chtest.NewDB(t).Database
	args := []string{"sink", "clickhouse", "--kafka-brokers", c.Broker.Addrs()[0], "--clickhouse", chtest.Addr(), "--clickhouse-db", db}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"a wrong password", map[string]string{"OGMA_CLICKHOUSE_PASSWORD": "wrong"}, nil, "password"},
		{"an unknown user", nil, []string{"--clickhouse-user", "nobody"}, "nobody"},
		{"TLS to a plaintext port", nil, []string{"--clickhouse-tls"}, "tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			root := newRootCmd(envOf(tc.env), runners{})
			root.SetArgs(append(slices.Clone(args), tc.args...))
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			err := root.ExecuteContext(ctx)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Errorf("ogma sink clickhouse with %s = %v, want an error naming %q", tc.name, err, tc.want)
			}
		})
	}
}

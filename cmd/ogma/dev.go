package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/connectors/anthropic/anthropicsim"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/pipeline/broker"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// demoTenant is the tenant `ogma dev` creates.
const demoTenant = "demo"

type devConfig struct {
	*common
	connect          connectConfig
	process          processConfig
	sink             sinkConfig
	anchor           anchorConfig
	api              apiConfig
	kafkaListen      string
	clickhouse       clickhouse.Config
	simAddr          string
	anthropicSimAddr string
	simSeed          int64
	simUsers         int
	openaiKeyFile    string
	anthropicKeyFile string

	// now, if set, is the clock of the simulators, the connector and the API; for
	// tests, so that none depends on today's date.
	now func() time.Time
	// openaiSim, if set, is told the OpenAI simulator before it serves;
	// for tests that make the organization do something particular.
	openaiSim func(*openaisim.Server)
}

func newDevCmd(c *common, run func(context.Context, *devConfig) error) *cobra.Command {
	cfg := &devConfig{common: c, connect: connectConfig{common: c}, process: processConfig{common: c},
		sink: sinkConfig{common: c}, anchor: anchorConfig{common: c}, api: apiConfig{common: c}}
	if run == nil {
		run = runDev
	}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run every role in one process on embedded defaults, with simulated OpenAI and Anthropic orgs when no key is given",
		Long: `Run every role in one process: an embedded Kafka broker persisted under <data-dir>/kafka,
ClickHouse at --clickhouse, the connector, the processor, the ClickHouse sink, the API, and a demo tenant connected to
the vendors. With no real key given, an OpenAI and an Anthropic simulator share some of their people (the same
emails, some in other letter case); with a real OpenAI Admin key (OGMA_OPENAI_ADMIN_KEY or --openai-admin-key-file)
or Anthropic Admin key (OGMA_ANTHROPIC_ADMIN_KEY or --anthropic-admin-key-file), the demo tenant reads only the real
organizations. The demo tenant's API token is written to <data-dir>/token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("log-format") {
				c.logFormat = "text"
			}
			return run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	addConnectFlags(cmd, &cfg.connect)
	addProcessFlags(cmd, &cfg.process)
	addAPIFlags(cmd, &cfg.api)
	f.StringVar(&cfg.anchor.rekorURL, "rekor-url", "", "Rekor v1 log to anchor the chains in, such as the local stack of make rekor-local (http://127.0.0.1:3000); empty: no anchoring")
	f.DurationVar(&cfg.anchor.interval, "anchor-interval", 5*time.Second, "time between anchor statements, with --rekor-url")
	f.StringVar(&cfg.kafkaListen, "kafka-listen", "127.0.0.1:9092", "address of the embedded Kafka broker, when --kafka-brokers is not set")
	addClickHouseFlags(cmd, &cfg.clickhouse, &c.chSec)
	addDashboardsFlag(cmd, &cfg.sink, time.Minute)
	f.StringVar(&cfg.simAddr, "sim-addr", "127.0.0.1:8787", "address of the OpenAI simulator, when no real key is given")
	f.StringVar(&cfg.anthropicSimAddr, "anthropic-sim-addr", "127.0.0.1:8788", "address of the Anthropic simulator, when no real key is given")
	f.Int64Var(&cfg.simSeed, "sim-seed", devSeed, "seed of the simulated organizations")
	f.IntVar(&cfg.simUsers, "sim-users", 160, "members of the simulated OpenAI organization (the Anthropic one has its last quarter and half as many more)")
	f.StringVar(&cfg.openaiKeyFile, "openai-admin-key-file", "", "file holding a real OpenAI Admin key for the demo tenant (or set OGMA_OPENAI_ADMIN_KEY)")
	f.StringVar(&cfg.anthropicKeyFile, "anthropic-admin-key-file", "", "file holding a real Anthropic Admin key for the demo tenant (or set OGMA_ANTHROPIC_ADMIN_KEY)")
	return cmd
}

// runDev runs every role in this process until ctx ends.
func runDev(ctx context.Context, cfg *devConfig) error {
	started := time.Now()
	log, err := cfg.logger()
	if err != nil {
		return err
	}
	if err := privateDir(cfg.dataDir); err != nil {
		return err
	}
	created := false
	if cfg.masterKeyFile == "" {
		cfg.masterKeyFile = filepath.Join(cfg.dataDir, "master.key")
		if created, err = seal.CreateKeyFile(cfg.masterKeyFile); err != nil {
			return err
		}
		if created {
			log.InfoContext(ctx, "master key created", "path", cfg.masterKeyFile)
		}
	}
	kr, err := cfg.keyring()
	if err != nil {
		return err
	}

	var embedded *broker.Broker
	if len(cfg.kafkaBrokers) == 0 {
		embedded, err = broker.Start(ctx, broker.Config{Listen: cfg.kafkaListen, DataDir: filepath.Join(cfg.dataDir, "kafka"), Logger: log})
		if err != nil {
			return err
		}
		defer embedded.Close()
		cfg.kafkaBrokers = embedded.Addrs()
	}
	_, dial, layout, err := cfg.kafka(ctx, nil)
	if err != nil {
		return err
	}
	if created {
		if err := checkNewMasterKey(ctx, dial, layout, kr, cfg.masterKeyFile); err != nil {
			return err
		}
	}
	if err := control.Protect(ctx, dial, layout, kr); err != nil {
		if created {
			os.Remove(cfg.masterKeyFile) // it signed nothing
		}
		return err
	}

	// Before anything is written: a database another installation writes
	// stops ogma dev here, with the ways out.
	if cfg.clickhouse, err = cfg.clickhouseConfig(cfg.clickhouse); err != nil {
		return err
	}
	store, err := openLedger(ctx, cfg.clickhouse, dial, layout)
	if err != nil {
		return err
	}
	defer store.Close()

	g, gctx := errgroup.WithContext(ctx)
	keys, sims, err := cfg.vendorKeys(gctx, g)
	if err != nil {
		return err
	}
	token, err := cfg.bootstrap(ctx, dial, layout, kr, keys)
	if err != nil {
		return err
	}

	reg := newRegistry()
	health := &api.Health{}
	cfg.connect.health, cfg.connect.registry, cfg.connect.now = health, reg, cfg.now
	cfg.process.health, cfg.process.registry = health, reg
	cfg.sink.health, cfg.sink.registry, cfg.sink.clickhouse, cfg.sink.now = health, reg, cfg.clickhouse, cfg.now
	cfg.api.health, cfg.api.registry, cfg.api.clickhouse, cfg.api.now = health, reg, cfg.clickhouse, cfg.now
	cfg.api.openaiBaseURL, cfg.api.anthropicBaseURL = cfg.connect.openaiBaseURL, cfg.connect.anthropicBaseURL
	cfg.api.onListening = func(httpAddr, grpcAddr string) {
		cfg.banner(httpAddr, grpcAddr, sims, token)
	}
	roles := []string{"connector", "processor", "sink_clickhouse", "control", "cursors", "api"}
	if cfg.anchor.rekorURL != "" {
		cfg.anchor.health, cfg.anchor.registry = health, reg
		cfg.api.rekorURL = cfg.anchor.rekorURL
		roles = append(roles, "sink_rekor")
		g.Go(func() error { return runSinkRekor(gctx, &cfg.anchor) })
	}
	health.Expect(roles...)
	g.Go(func() error {
		select {
		case <-health.Ready():
			cfg.healthy(started)
		case <-gctx.Done():
		}
		return nil
	})
	g.Go(func() error { return runConnect(gctx, &cfg.connect) })
	g.Go(func() error { return runProcess(gctx, &cfg.process) })
	g.Go(func() error { return runSinkClickHouse(gctx, &cfg.sink) })
	g.Go(func() error { return runAPI(gctx, &cfg.api) })
	return g.Wait()
}

// vendorKeys returns the demo tenant's keys by vendor: the real ones given,
// or else the admin keys of an OpenAI and an Anthropic simulator it starts
// in g, whose addresses it returns by vendor.
func (cfg *devConfig) vendorKeys(ctx context.Context, g *errgroup.Group) (keys map[string]seal.Secret, sims map[string]string, err error) {
	keys, sims = map[string]seal.Secret{}, map[string]string{}
	for _, real := range []struct{ vendor, env, file string }{
		{stream.OpenAI, "OGMA_OPENAI_ADMIN_KEY", cfg.openaiKeyFile},
		{stream.Anthropic, "OGMA_ANTHROPIC_ADMIN_KEY", cfg.anthropicKeyFile},
	} {
		if v, ok := cfg.env(real.env); ok && strings.TrimSpace(v) != "" {
			keys[real.vendor] = seal.NewSecret(strings.TrimSpace(v))
		} else if real.file != "" {
			if keys[real.vendor], err = readSecretFile(real.file); err != nil {
				return nil, nil, err
			}
		}
	}
	if len(keys) > 0 {
		return keys, sims, nil // real organizations only: simulated data would mix in
	}
	serve := func(vendor, addr string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("%s simulator: %w", vendor, err)
		}
		url := "http://" + ln.Addr().String()
		sims[vendor] = url
		g.Go(func() error { return serveHTTP(ctx, ln, h) })
		return url, nil
	}
	oa := openaisim.New(openaisim.Config{Seed: cfg.simSeed, Users: cfg.simUsers, Now: cfg.now})
	if cfg.openaiSim != nil {
		cfg.openaiSim(oa)
	}
	if cfg.connect.openaiBaseURL, err = serve(stream.OpenAI, cfg.simAddr, oa); err != nil {
		return nil, nil, err
	}
	an := anthropicsim.New(devAnthropicSim(cfg.simSeed, cfg.simUsers, cfg.now))
	if cfg.connect.anthropicBaseURL, err = serve(stream.Anthropic, cfg.anthropicSimAddr, an); err != nil {
		return nil, nil, err
	}
	keys[stream.OpenAI], keys[stream.Anthropic] = seal.NewSecret(oa.Key(openaisim.KeyFull)), seal.NewSecret(an.Key(anthropicsim.KeyAdmin))
	return keys, sims, nil
}

// devAnthropicSim returns the Anthropic organization of `ogma dev`: the
// OpenAI one's last quarter of people (simUsers of them), and half as many
// again of its own.
func devAnthropicSim(seed int64, simUsers int, now func() time.Time) anthropicsim.Config {
	both := max(simUsers/4, 1)
	return anthropicsim.Config{Seed: seed, FirstUser: max(simUsers-both, 0), Users: both + max(both/2, 1), Now: now}
}

// bootstrap makes sure the demo tenant exists with key connected, and that
// <data-dir>/token holds a live token of it; it returns the token.
func (cfg *devConfig) bootstrap(ctx context.Context, dial topic.Dial, l topic.Layout, kr *seal.Keyring, keys map[string]seal.Secret) (string, error) {
	now := time.Now().UTC()
	if cfg.now != nil {
		now = cfg.now().UTC() // the connector's clock: its backfill window starts from here
	}
	st, err := control.Load(ctx, dial, l, kr)
	if err != nil {
		return "", err
	}
	if _, ok := st.Tenants[demoTenant]; !ok {
		if err := createTenant(ctx, dial, l, kr, control.Tenant{ID: demoTenant, Name: "Demo", Residency: control.ResidencyUS, CreatedAt: now}); err != nil {
			return "", err
		}
	}
	for _, vendor := range slices.Sorted(maps.Keys(keys)) {
		key := keys[vendor]
		integ, ok := st.Integrations[control.VendorKey{Tenant: demoTenant, Vendor: vendor}]
		current := false
		if ok {
			old, err := kr.Open(integ.Sealed, demoTenant, vendor, integ.Generation)
			current = err == nil && old.Reveal() == key.Reveal()
		}
		if !current {
			if err := connectKey(ctx, dial, l, kr, demoTenant, vendor, key, now); err != nil {
				return "", err
			}
		}
	}

	path := filepath.Join(cfg.dataDir, "token")
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if t, ok := st.Tokens[control.HashToken(tok)]; ok && t.Tenant == demoTenant {
			return tok, nil
		}
	}
	tok, err := createToken(ctx, dial, l, kr, demoTenant, "ogma dev", now)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write token: %w", err)
	}
	return tok, nil
}

func (cfg *devConfig) banner(httpAddr, grpcAddr string, sims map[string]string, token string) {
	tokenPath := filepath.Join(cfg.dataDir, "token")
	w := cfg.stdout
	fmt.Fprintf(w, "\nOgma dev is up. Tenant %q; its API token is in %s.\n\n", demoTenant, tokenPath)
	fmt.Fprintf(w, "  Console      http://%s/#token=%s\n", httpAddr, url.QueryEscape(token))
	fmt.Fprintf(w, "  REST         http://%s   (/healthz, /metrics, /me/capabilities, /openapi.json)\n", httpAddr)
	fmt.Fprintf(w, "  gRPC         %s   (grpcurl -plaintext %s list)\n", grpcAddr, grpcAddr)
	fmt.Fprintf(w, "  Kafka        %s\n", strings.Join(cfg.kafkaBrokers, ","))
	fmt.Fprintf(w, "  ClickHouse   %s/%s\n", cfg.clickhouse.Addr, cfg.clickhouse.Database)
	if u, ok := sims[stream.OpenAI]; ok {
		fmt.Fprintf(w, "  OpenAI sim   %s/v1/organization/…   (keys: ogma sim openai --print-keys)\n", u)
	}
	if u, ok := sims[stream.Anthropic]; ok {
		fmt.Fprintf(w, "  Claude sim   %s/v1/organizations/…   (keys: ogma sim anthropic --print-keys)\n", u)
	}
	if cfg.anchor.rekorURL != "" {
		fmt.Fprintf(w, "  Rekor        %s   (anchors every %s; GET /v1/integrity)\n", cfg.anchor.rekorURL, cfg.anchor.interval)
	}
	fmt.Fprintf(w, "\nTry:\n  curl -s -H \"Authorization: Bearer $(cat %s)\" http://%s/me/capabilities\n", tokenPath, httpAddr)
	fmt.Fprintf(w, "  curl -s -H \"Authorization: Bearer $(cat %s)\" 'http://%s/v1/usage?start=%s&end=%s&group_by=model'\n\n",
		tokenPath, httpAddr, time.Now().UTC().AddDate(0, 0, -30).Format(time.DateOnly), time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly))
}

// healthy says that every role is ready, and how long it took: since this
// process started, and since `make run` began (OGMA_RUN_STARTED, Unix
// seconds), which counts installing and building too.
func (cfg *devConfig) healthy(started time.Time) {
	took := time.Since(started).Round(100 * time.Millisecond)
	line := fmt.Sprintf("Healthy: every role is ready, %s after start", took)
	if v, ok := cfg.env("OGMA_RUN_STARTED"); ok {
		if sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			line += fmt.Sprintf(" (%s after `make run` began)", time.Since(time.Unix(sec, 0)).Round(time.Second))
		}
	}
	fmt.Fprintln(cfg.stdout, line+".")
}

// checkNewMasterKey refuses a master key created in place of a missing one
// while ogma.control holds admin keys sealed under another: they would
// never open again, and a new key hides that.
func checkNewMasterKey(ctx context.Context, dial topic.Dial, l topic.Layout, kr *seal.Keyring, path string) error {
	st, err := control.Load(ctx, dial, l, nil) // all there is: under a new key, no tag checks
	if err != nil {
		return err
	}
	for k, integ := range st.Integrations {
		if id := integ.Sealed.MasterKeyID; id != kr.MasterKeyID() {
			os.Remove(path) // the new key seals nothing yet
			return fmt.Errorf("the master key file %s was missing, but ogma.control holds admin keys sealed under master key %d "+
				"(tenant %s, %s), which a new key cannot open: restore that file; or, to give those keys up, "+
				"create a new key file yourself, pass it with --master-key-file, and connect each integration again", path, id, k.Tenant, k.Vendor)
		}
	}
	return nil
}

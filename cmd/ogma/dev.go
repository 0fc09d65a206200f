package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/pipeline/broker"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// demoTenant is the tenant `ogma dev` creates.
const demoTenant = "demo"

type devConfig struct {
	*common
	connect       connectConfig
	process       processConfig
	sink          sinkConfig
	anchor        anchorConfig
	api           apiConfig
	kafkaListen   string
	clickhouse    clickhouse.Config
	simAddr       string
	simSeed       int64
	simUsers      int
	openaiKeyFile string

	// now, if set, is the clock of the simulator and the connector; for
	// tests, so that none depends on today's date.
	now func() time.Time
}

func newDevCmd(c *common, run func(context.Context, *devConfig) error) *cobra.Command {
	cfg := &devConfig{common: c, connect: connectConfig{common: c}, process: processConfig{common: c},
		sink: sinkConfig{common: c}, anchor: anchorConfig{common: c}, api: apiConfig{common: c}}
	if run == nil {
		run = runDev
	}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run every role in one process on embedded defaults, with a simulated OpenAI org when no key is given",
		Long: `Run every role in one process: an embedded Kafka broker persisted under <data-dir>/kafka,
ClickHouse at --clickhouse, the connector, the processor, the ClickHouse sink, the API, and — unless an OpenAI Admin key is given in
OGMA_OPENAI_ADMIN_KEY or --openai-admin-key-file — an OpenAI simulator that a demo tenant is
connected to. The demo tenant's API token is written to <data-dir>/token.`,
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
	f.StringVar(&cfg.simAddr, "sim-addr", "127.0.0.1:8787", "address of the OpenAI simulator, when no real key is given")
	f.Int64Var(&cfg.simSeed, "sim-seed", devSeed, "seed of the simulated OpenAI organization")
	f.IntVar(&cfg.simUsers, "sim-users", 160, "members of the simulated OpenAI organization")
	f.StringVar(&cfg.openaiKeyFile, "openai-admin-key-file", "", "file holding a real OpenAI Admin key for the demo tenant (or set OGMA_OPENAI_ADMIN_KEY)")
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
	_, dial, layout, err := cfg.kafka(ctx)
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
	key, simURL, err := cfg.vendorKey(gctx, g)
	if err != nil {
		return err
	}
	token, err := cfg.bootstrap(ctx, dial, layout, kr, key)
	if err != nil {
		return err
	}

	reg := newRegistry()
	health := &api.Health{}
	cfg.connect.health, cfg.connect.registry, cfg.connect.now = health, reg, cfg.now
	cfg.process.health, cfg.process.registry = health, reg
	cfg.sink.health, cfg.sink.registry, cfg.sink.clickhouse = health, reg, cfg.clickhouse
	cfg.api.health, cfg.api.gatherer, cfg.api.clickhouse = health, reg, cfg.clickhouse
	cfg.api.openaiBaseURL = cfg.connect.openaiBaseURL
	cfg.api.onListening = func(httpAddr, grpcAddr string) {
		cfg.banner(httpAddr, grpcAddr, simURL, token)
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

// vendorKey returns the demo tenant's OpenAI key: a real one when given,
// else the full admin key of a simulator it starts in g.
func (cfg *devConfig) vendorKey(ctx context.Context, g *errgroup.Group) (seal.Secret, string, error) {
	if v, ok := cfg.env("OGMA_OPENAI_ADMIN_KEY"); ok && strings.TrimSpace(v) != "" {
		return seal.NewSecret(strings.TrimSpace(v)), "", nil
	}
	if cfg.openaiKeyFile != "" {
		key, err := readSecretFile(cfg.openaiKeyFile)
		return key, "", err
	}
	sim := openaisim.New(openaisim.Config{Seed: cfg.simSeed, Users: cfg.simUsers, Now: cfg.now})
	ln, err := net.Listen("tcp", cfg.simAddr)
	if err != nil {
		return seal.Secret{}, "", fmt.Errorf("openai simulator: %w", err)
	}
	url := "http://" + ln.Addr().String()
	cfg.connect.openaiBaseURL = url
	g.Go(func() error { return serveHTTP(ctx, ln, sim) })
	return seal.NewSecret(sim.Key(openaisim.KeyFull)), url, nil
}

// bootstrap makes sure the demo tenant exists with key connected, and that
// <data-dir>/token holds a live token of it; it returns the token.
func (cfg *devConfig) bootstrap(ctx context.Context, dial topic.Dial, l topic.Layout, kr *seal.Keyring, key seal.Secret) (string, error) {
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
	integ, ok := st.Integrations[control.VendorKey{Tenant: demoTenant, Vendor: control.OpenAI}]
	current := false
	if ok {
		old, err := kr.Open(integ.Sealed, demoTenant, control.OpenAI, integ.Generation)
		current = err == nil && old.Reveal() == key.Reveal()
	}
	if !current {
		if err := connectKey(ctx, dial, l, kr, demoTenant, control.OpenAI, key, now); err != nil {
			return "", err
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

func (cfg *devConfig) banner(httpAddr, grpcAddr, simURL, token string) {
	tokenPath := filepath.Join(cfg.dataDir, "token")
	w := cfg.stdout
	fmt.Fprintf(w, "\nOgma dev is up. Tenant %q; its API token is in %s.\n\n", demoTenant, tokenPath)
	fmt.Fprintf(w, "  REST + web   http://%s   (/healthz, /metrics, /me/capabilities)\n", httpAddr)
	fmt.Fprintf(w, "  gRPC         %s   (grpcurl -plaintext %s list)\n", grpcAddr, grpcAddr)
	fmt.Fprintf(w, "  Kafka        %s\n", strings.Join(cfg.kafkaBrokers, ","))
	fmt.Fprintf(w, "  ClickHouse   %s/%s\n", cfg.clickhouse.Addr, cfg.clickhouse.Database)
	if simURL != "" {
		fmt.Fprintf(w, "  OpenAI sim   %s/v1/organization/…   (keys: ogma sim openai --print-keys)\n", simURL)
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

package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

type sinkConfig struct {
	*common
	clickhouse clickhouse.Config
	// dashboardsEvery is the time between two refreshes of the tenants'
	// dashboard databases; 0 makes none.
	dashboardsEvery time.Duration
	observed

	// Set by `ogma dev`: the clock.
	now func() time.Time
}

func newSinkCmd(c *common, run func(context.Context, *sinkConfig) error, sinkRekor func(context.Context, *anchorConfig) error) *cobra.Command {
	cmd := &cobra.Command{Use: "sink", Short: "Write Kafka's ledger to a store"}
	cfg := &sinkConfig{common: c}
	if run == nil {
		run = runSinkClickHouse
	}
	chCmd := &cobra.Command{
		Use:   "clickhouse",
		Short: "Write the ledger and its projections to ClickHouse, migrating its schema first",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cfg) },
	}
	addClickHouseFlags(chCmd, &cfg.clickhouse, &c.chSec)
	addDashboardsFlag(chCmd, cfg, 5*time.Minute)
	addMetricsFlag(chCmd, &cfg.observed)
	cmd.AddCommand(chCmd, newSinkRekorCmd(c, sinkRekor))
	return cmd
}

func addDashboardsFlag(cmd *cobra.Command, cfg *sinkConfig, every time.Duration) {
	cmd.Flags().DurationVar(&cfg.dashboardsEvery, "dashboards-interval", every,
		"time between two refreshes of each tenant's dashboard database (what dashboard logins read); 0: none")
}

func addClickHouseFlags(cmd *cobra.Command, cfg *clickhouse.Config, sec *clickhouseSecurity) {
	cmd.Flags().StringVar(&cfg.Addr, "clickhouse", "127.0.0.1:9000", "ClickHouse native-protocol address")
	cmd.Flags().StringVar(&cfg.Database, "clickhouse-db", "ogma", "ClickHouse database, created when missing")
	cmd.Flags().StringVar(&cfg.Username, "clickhouse-user", "default", "ClickHouse user; its password comes from OGMA_CLICKHOUSE_PASSWORD or --clickhouse-password-file")
	cmd.Flags().StringVar(&sec.passwordFile, "clickhouse-password-file", "", "file holding the ClickHouse password (or set OGMA_CLICKHOUSE_PASSWORD)")
	cmd.Flags().BoolVar(&sec.tls, "clickhouse-tls", false, "connect to ClickHouse over TLS (the system's roots, or --clickhouse-tls-ca)")
	cmd.Flags().StringVar(&sec.tlsCA, "clickhouse-tls-ca", "", "PEM file of the CAs that sign ClickHouse's certificate (implies --clickhouse-tls)")
}

// clickhouseSecurity is how a role authenticates to ClickHouse, beyond its
// user.
type clickhouseSecurity struct {
	passwordFile string
	tls          bool
	tlsCA        string
}

// clickhouseConfig completes cfg with the password (from the environment
// or a file, never a flag's value) and TLS.
func (c *common) clickhouseConfig(cfg clickhouse.Config) (clickhouse.Config, error) {
	sec := c.chSec
	if _, ok := c.env("OGMA_CLICKHOUSE_PASSWORD"); ok || sec.passwordFile != "" {
		pass, err := c.secret("OGMA_CLICKHOUSE_PASSWORD", sec.passwordFile, "--clickhouse-password-file")
		if err != nil {
			return cfg, err
		}
		cfg.Password = pass.Reveal()
	}
	if sec.tls || sec.tlsCA != "" {
		t, err := tlsConfig(sec.tlsCA, "--clickhouse-tls-ca")
		if err != nil {
			return cfg, err
		}
		cfg.TLS = t
	}
	return cfg, nil
}

// openStore opens the ClickHouse store of cfg, for a role that reads it.
func (c *common) openStore(ctx context.Context, cfg clickhouse.Config) (*clickhouse.Store, error) {
	chcfg, err := c.clickhouseConfig(cfg)
	if err != nil {
		return nil, err
	}
	return clickhouse.Open(ctx, chcfg)
}

func runSinkClickHouse(ctx context.Context, cfg *sinkConfig) error {
	reg, health, serveMetrics := cfg.observe()
	log, dial, layout, err := cfg.kafka(ctx, &kafkaMetrics{reg: reg, role: "sink_clickhouse"})
	if err != nil {
		return err
	}
	chcfg, err := cfg.clickhouseConfig(cfg.clickhouse)
	if err != nil {
		return err
	}
	store, err := openLedger(ctx, chcfg, dial, layout)
	if err != nil {
		return err
	}
	defer store.Close()
	deps := clickhouse.SinkDeps{Dial: dial, Logger: log, Registerer: reg, OnRefuse: reportRefusals(health)}
	sink, err := clickhouse.NewSink(clickhouse.SinkConfig{}, store, deps)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	ready := health.Add("sink_clickhouse")
	g.Go(func() error { return serveMetrics(gctx, log) })
	g.Go(func() error { return sink.Run(gctx) })
	g.Go(func() error { markReady(gctx, sink.Ready(), ready); return nil })
	g.Go(func() error { return clickhouse.NewRollups(clickhouse.RollupsConfig{}, store, log).Run(gctx) })
	if cfg.dashboardsEvery > 0 {
		d := clickhouse.NewDashboards(clickhouse.DashboardsConfig{Interval: cfg.dashboardsEvery, Now: cfg.now}, store, log)
		g.Go(func() error { return d.Run(gctx) })
	}
	return g.Wait()
}

// reportRefusals makes the sink's refused tenants the process's health
// problems.
func reportRefusals(h *api.Health) func(refused map[string]string) {
	return func(refused map[string]string) {
		var problems []string
		for _, tenant := range slices.Sorted(maps.Keys(refused)) {
			problems = append(problems, fmt.Sprintf("tenant %s refused: %s", tenant, refused[tenant]))
		}
		h.Report("sink_clickhouse", problems...)
	}
}

// openLedger opens the ClickHouse store, migrates it, and claims it for
// this installation: a database another installation writes is refused
// with the ways out.
func openLedger(ctx context.Context, cfg clickhouse.Config, dial topic.Dial, layout topic.Layout) (*clickhouse.Store, error) {
	store, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w (is ClickHouse running? `make run` starts it)", err)
	}
	if _, err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, err
	}
	inst, err := topic.EnsureInstallation(ctx, dial, layout)
	if err == nil {
		err = store.Claim(ctx, inst.ID, inst.Adopted)
	}
	var other *clickhouse.OtherInstallationError
	if errors.As(err, &other) {
		err = fmt.Errorf("%w, not this one's (%s): their events would disagree at every seq, so every tenant would be refused.\n"+
			"Either keep that data and give this installation its own database:\n"+
			"    --clickhouse-db %s_2    (with make: make run OGMA_ARGS='--clickhouse-db %s_2')\n"+
			"or, if that data is not needed, drop it and start again:\n"+
			"    clickhouse-client --host %s --query 'DROP DATABASE %s'",
			other, inst.ID, cfg.Database, cfg.Database, hostOf(cfg.Addr), cfg.Database)
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// hostOf returns the host of a host:port address.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

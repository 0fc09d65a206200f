package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/connectors/anthropic"
	"github.com/ogma-dev/ogma/connectors/openai"
	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

type connectConfig struct {
	*common
	poll              poll.Config
	openaiBaseURL     string
	anthropicBaseURL  string
	usageEvery        time.Duration
	directoryEvery    time.Duration
	vendorCallTimeout time.Duration
	observed

	// Set by `ogma dev`: the clock.
	now func() time.Time
}

func newConnectCmd(c *common, run func(context.Context, *connectConfig) error) *cobra.Command {
	cfg := &connectConfig{common: c}
	if run == nil {
		run = runConnect
	}
	cmd := &cobra.Command{
		Use:   "connect",
		Short: "Poll the vendor Admin APIs of the tenants this instance owns into ogma.raw",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cfg) },
	}
	addConnectFlags(cmd, cfg)
	addMetricsFlag(cmd, &cfg.observed)
	return cmd
}

func addConnectFlags(cmd *cobra.Command, cfg *connectConfig) {
	f := cmd.Flags()
	f.StringVar(&cfg.openaiBaseURL, "openai-base-url", openai.DefaultBaseURL, "OpenAI API origin (a simulator's address in tests)")
	f.StringVar(&cfg.anthropicBaseURL, "anthropic-base-url", anthropic.DefaultBaseURL, "Anthropic API origin (a simulator's address in tests)")
	f.DurationVar(&cfg.usageEvery, "usage-interval", 15*time.Minute, "time between two usage polls of a tenant")
	f.DurationVar(&cfg.directoryEvery, "directory-interval", time.Hour, "time between two directory walks (users, projects, keys) of a tenant")
	f.DurationVar(&cfg.vendorCallTimeout, "vendor-timeout", time.Minute, "deadline of one vendor request")
	f.IntVar(&cfg.poll.BackfillDays, "backfill-days", 90, "days of history read on a tenant's first connect")
	f.StringVar(&cfg.poll.Group, "connect-group", "ogma-connect", "consumer group that spreads tenants over connector instances")
}

// runConnect runs the connector role until ctx ends.
func runConnect(ctx context.Context, cfg *connectConfig) error {
	reg, health, serveMetrics := cfg.observe()
	log, dial, layout, err := cfg.kafka(ctx, &kafkaMetrics{reg: reg, role: "connect"})
	if err != nil {
		return err
	}
	kr, err := cfg.keyring()
	if err != nil {
		return err
	}
	oa, err := openai.NewClient(openai.ClientConfig{BaseURL: cfg.openaiBaseURL, Timeout: cfg.vendorCallTimeout})
	if err != nil {
		return err
	}
	an, err := anthropic.NewClient(anthropic.ClientConfig{BaseURL: cfg.anthropicBaseURL, Timeout: cfg.vendorCallTimeout})
	if err != nil {
		return err
	}
	conn, err := poll.New(cfg.poll, poll.Deps{
		Dial: dial, Layout: layout, Keyring: kr,
		Vendors: map[string][]poll.Scheduled{
			stream.OpenAI:    openai.Streams(oa, cfg.usageEvery, cfg.directoryEvery),
			stream.Anthropic: anthropic.Streams(an, cfg.usageEvery, cfg.directoryEvery),
		},
		Logger:     log,
		Registerer: reg,
		Now:        cfg.now,
	})
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "connector starting", "partitions", layout.Partitions)
	g, gctx := errgroup.WithContext(ctx)
	ready := health.Add("connector")
	g.Go(func() error { return serveMetrics(gctx, log) })
	g.Go(func() error { return conn.Run(gctx) })
	g.Go(func() error { markReady(gctx, conn.Ready(), ready); return nil })
	return g.Wait()
}

// markReady calls ready once ch closes, unless ctx ends first.
func markReady(ctx context.Context, ch <-chan struct{}, ready func()) {
	select {
	case <-ch:
		ready()
	case <-ctx.Done():
	}
}

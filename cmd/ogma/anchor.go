package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/sinks/rekor"
)

// publicRekor is the public Sigstore log, the default target of
// `ogma sink rekor`.
const publicRekor = "https://rekor.sigstore.dev"

type anchorConfig struct {
	*common
	rekorURL string
	interval time.Duration
	observed
	// persisted, if set, is told each statement persisted (crash tests).
	persisted func(index uint64)
}

func newSinkRekorCmd(c *common, run func(context.Context, *anchorConfig) error) *cobra.Command {
	cfg := &anchorConfig{common: c}
	if run == nil {
		run = runSinkRekor
	}
	cmd := &cobra.Command{
		Use:   "rekor",
		Short: "Anchor every tenant's chain head in a Rekor transparency log, one signed statement per interval",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cfg) },
	}
	cmd.Flags().StringVar(&cfg.rekorURL, "rekor-url", publicRekor, "Rekor v1 log to anchor in: the public Sigstore log, a private one, or the local stack (make rekor-local: http://127.0.0.1:3000)")
	cmd.Flags().DurationVar(&cfg.interval, "anchor-interval", 10*time.Minute, "time between statements, kept at a fixed cadence even when nothing moved")
	addMetricsFlag(cmd, &cfg.observed)
	return cmd
}

func runSinkRekor(ctx context.Context, cfg *anchorConfig) error {
	reg, health, serveMetrics := cfg.observe()
	log, dial, layout, err := cfg.kafka(ctx, &kafkaMetrics{reg: reg, role: "sink_rekor"})
	if err != nil {
		return err
	}
	kr, err := cfg.keyring()
	if err != nil {
		return err
	}
	logClient, err := rekor.NewRekor(cfg.rekorURL)
	if err != nil {
		return err
	}
	key, err := anchor.EnsureKey(ctx, dial, kr)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "anchoring", "log", cfg.rekorURL, "interval", cfg.interval, "anchor_key", key.Fingerprint())
	deps := rekor.Deps{Dial: dial, Layout: layout, Log: logClient, Key: key, Logger: log, Registerer: reg, Persisted: cfg.persisted,
		Ready: health.Add("sink_rekor")}
	sink, err := rekor.New(rekor.Config{Interval: cfg.interval}, deps)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveMetrics(gctx, log) })
	g.Go(func() error { return sink.Run(gctx) })
	return g.Wait()
}

package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

type sinkConfig struct {
	*common
	clickhouse  clickhouse.Config
	metricsAddr string

	// Set by `ogma dev`.
	health   *api.Health
	registry prometheus.Registerer
}

func newSinkCmd(c *common, run func(context.Context, *sinkConfig) error) *cobra.Command {
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
	addClickHouseFlags(chCmd, &cfg.clickhouse)
	addMetricsFlag(chCmd, &cfg.metricsAddr)
	cmd.AddCommand(chCmd)
	return cmd
}

func addClickHouseFlags(cmd *cobra.Command, cfg *clickhouse.Config) {
	cmd.Flags().StringVar(&cfg.Addr, "clickhouse", "127.0.0.1:9000", "ClickHouse native-protocol address")
	cmd.Flags().StringVar(&cfg.Database, "clickhouse-db", "ogma", "ClickHouse database, created when missing")
}

func runSinkClickHouse(ctx context.Context, cfg *sinkConfig) error {
	log, dial, _, err := cfg.kafka(ctx)
	if err != nil {
		return err
	}
	store, err := clickhouse.Open(ctx, cfg.clickhouse)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}
	reg, serveMetrics := standaloneRegistry(cfg.registry, cfg.metricsAddr, log)
	sink, err := clickhouse.NewSink(clickhouse.SinkConfig{}, store, clickhouse.SinkDeps{Dial: dial, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveMetrics(gctx) })
	g.Go(func() error { return sink.Run(gctx) })
	if cfg.health != nil {
		ready := cfg.health.Add("sink_clickhouse")
		g.Go(func() error { markReady(gctx, sink.Ready(), ready); return nil })
	}
	return g.Wait()
}

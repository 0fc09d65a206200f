package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/pipeline/process"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

type processConfig struct {
	*common
	process process.Config

	observed
	// Set by tests.
	beforeCommit func()
}

func newProcessCmd(c *common, run func(context.Context, *processConfig) error) *cobra.Command {
	cfg := &processConfig{common: c}
	if run == nil {
		run = runProcess
	}
	cmd := &cobra.Command{
		Use:   "process",
		Short: "Turn ogma.raw into the chained events, exactly once",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cfg) },
	}
	addProcessFlags(cmd, cfg)
	addMetricsFlag(cmd, &cfg.observed)
	return cmd
}

func addProcessFlags(cmd *cobra.Command, cfg *processConfig) {
	f := cmd.Flags()
	f.StringVar(&cfg.process.TransactionalID, "process-id", "ogma-process-0",
		"transactional id of this processor instance: unique and stable per instance")
	f.StringVar(&cfg.process.InstanceID, "process-instance-id", "",
		"static group membership: a restart with this id takes its partitions back without a rebalance (default: dynamic member)")
	f.DurationVar(&cfg.process.SessionTimeout, "process-session-timeout", 45*time.Second,
		"how long a dead processor instance keeps its partitions before they move")
	f.DurationVar(&cfg.process.TransactionTimeout, "process-transaction-timeout", time.Minute,
		"how long the broker keeps a dead processor's open transaction before aborting it")
	f.StringVar(&cfg.process.StateDir, "process-state-dir", "", "the processor's local state store (default <data-dir>/process/<process-id>)")
}

func runProcess(ctx context.Context, cfg *processConfig) error {
	reg, health, serveMetrics := cfg.observe()
	km := &kafkaMetrics{reg: reg, role: "process"}
	log, dial, layout, err := cfg.kafka(ctx, km)
	if err != nil {
		return err
	}
	pc := cfg.process
	if pc.StateDir == "" {
		pc.StateDir = filepath.Join(cfg.dataDir, "process", pc.TransactionalID)
	}
	if err := privateDir(pc.StateDir); err != nil {
		return err
	}
	base, err := cfg.kafkaOpts(log)
	if err != nil {
		return err
	}
	hooks := km.pinned() // the session's clients, one after another
	proc, err := process.New(pc, process.Deps{Dial: dial, Session: topic.Opts(cfg.kafkaBrokers, append(base, hooks)...),
		Layout: layout, Logger: log, Registerer: reg, BeforeCommit: cfg.beforeCommit})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	ready := health.Add("processor")
	g.Go(func() error { return serveMetrics(gctx, log) })
	g.Go(func() error { return proc.Run(gctx) })
	g.Go(func() error { markReady(gctx, proc.Ready(), ready); return nil })
	return g.Wait()
}

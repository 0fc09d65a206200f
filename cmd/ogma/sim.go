package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/ogma-dev/ogma/connectors/anthropic/anthropicsim"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

type simConfig struct {
	*common
	addr      string
	sim       openaisim.Config
	anthropic anthropicsim.Config
	printKeys bool
}

// devSeed is the simulator seed of `ogma dev`, and the default of `ogma sim`.
const devSeed = 1

func newSimCmd(c *common, run func(context.Context, *simConfig) error) *cobra.Command {
	cmd := &cobra.Command{Use: "sim", Short: "Run a simulated vendor Admin API"}
	cfg := &simConfig{common: c}
	if run == nil {
		run = runSimOpenAI
	}
	oa := &cobra.Command{
		Use:   "openai",
		Short: "Simulate an OpenAI organization's Admin API (GET only) under /v1/organization/…",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cfg) },
	}
	f := oa.Flags()
	f.StringVar(&cfg.addr, "addr", "127.0.0.1:8787", "listen address")
	f.Int64Var(&cfg.sim.Seed, "seed", devSeed, "seed of the simulated organization")
	f.IntVar(&cfg.sim.Users, "users", 160, "members of the organization")
	f.IntVar(&cfg.sim.Projects, "projects", 8, "projects of the organization")
	f.IntVar(&cfg.sim.Days, "days", 120, "days of usage history up to today")
	f.StringVar(&cfg.sim.Tier, "tier", openaisim.TierPayg, "the organization's plan: payg or enterprise (audit events only on enterprise)")
	f.BoolVar(&cfg.sim.AuditDisabled, "audit-disabled", false, "audit logging not enabled by an Owner: the audit-log endpoint answers empty")
	f.BoolVar(&cfg.sim.NoUserData, "no-user-data", false, "usage comes back with null user ids, as for an org exposing no user-level data")
	f.BoolVar(&cfg.printKeys, "print-keys", false, "print one key of each kind (full, usage_only, no_usage, project, revoked, unknown) as kind, a tab, the key; then exit")
	an := &cobra.Command{
		Use:   "anthropic",
		Short: "Simulate an Anthropic organization's Admin API (GET only) under /v1/organizations/…",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runSimAnthropic(cmd.Context(), cfg) },
	}
	f = an.Flags()
	f.StringVar(&cfg.addr, "addr", "127.0.0.1:8788", "listen address")
	f.Int64Var(&cfg.anthropic.Seed, "seed", devSeed, "seed of the simulated organization")
	f.IntVar(&cfg.anthropic.Users, "users", 60, "members of the organization")
	f.IntVar(&cfg.anthropic.FirstUser, "first-user", 120, "index of its first member among the simulated people (the OpenAI simulator's members are 0 to --users−1)")
	f.IntVar(&cfg.anthropic.Workspaces, "workspaces", 4, "workspaces of the organization")
	f.IntVar(&cfg.anthropic.Days, "days", 120, "days of usage history up to today")
	f.BoolVar(&cfg.printKeys, "print-keys", false, "print one key of each kind (admin, no_costs, inference, revoked, unknown, no_usage) as kind, a tab, the key; then exit")
	cmd.AddCommand(oa, an)
	return cmd
}

func runSimAnthropic(ctx context.Context, cfg *simConfig) error {
	sim := anthropicsim.New(cfg.anthropic)
	return serveSim(ctx, cfg, stream.Anthropic, sim, anthropicsim.KeyKinds, sim.Key)
}

func runSimOpenAI(ctx context.Context, cfg *simConfig) error {
	sim := openaisim.New(cfg.sim)
	return serveSim(ctx, cfg, stream.OpenAI, sim, openaisim.KeyKinds, sim.Key)
}

// serveSim prints the simulator's keys of kinds with --print-keys, else
// serves it on --addr until ctx ends.
func serveSim(ctx context.Context, cfg *simConfig, vendor string, sim http.Handler, kinds []string, key func(kind string) string) error {
	if cfg.printKeys {
		for _, k := range kinds {
			fmt.Fprintf(cfg.stdout, "%s\t%s\n", k, key(k))
		}
		return nil
	}
	log, err := cfg.logger()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	log.InfoContext(ctx, "simulator serving", "vendor", vendor, "addr", ln.Addr().String())
	return serveHTTP(ctx, ln, sim)
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return ctx.Err()
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

type dashboardsConfig struct {
	*common
	clickhouse   clickhouse.Config
	tenant       string
	passwordFile string
	usersDir     string
}

// newDashboardsCmd is `ogma dashboards`: the per-tenant databases and
// logins the shipped dashboards (deploy/dashboards) read through.
func newDashboardsCmd(c *common) *cobra.Command {
	cfg := &dashboardsConfig{common: c}
	cmd := &cobra.Command{Use: "dashboards", Short: "Per-tenant dashboard databases and their read-only logins"}
	login := &cobra.Command{
		Use: "login",
		Short: "Give a tenant's dashboard login (ogma_dashboard_<tenant>) read access to its dashboard database alone; " +
			"on ClickHouse before 20.5, write the login's users.d file instead",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDashboardsLogin(cmd.Context(), cfg) },
	}
	login.Flags().StringVar(&cfg.tenant, "tenant", "", "tenant id")
	login.Flags().StringVar(&cfg.passwordFile, "password-file", "", "file holding the login's password (or set OGMA_DASHBOARD_PASSWORD)")
	login.Flags().StringVar(&cfg.usersDir, "users-dir", "", "the ClickHouse server's users.d directory, for servers that take users from files (default: print the file)")
	refresh := &cobra.Command{
		Use:   "refresh",
		Short: "Rebuild a tenant's dashboard database now (ogma sink clickhouse does it every --dashboards-interval)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runDashboardsRefresh(cmd.Context(), cfg) },
	}
	refresh.Flags().StringVar(&cfg.tenant, "tenant", "", "tenant id")
	for _, sub := range []*cobra.Command{login, refresh} {
		addClickHouseFlags(sub, &cfg.clickhouse, &c.chSec)
		cmd.AddCommand(sub)
	}
	return cmd
}

func runDashboardsLogin(ctx context.Context, cfg *dashboardsConfig) error {
	if cfg.tenant == "" {
		return errors.New("--tenant is required")
	}
	pass, err := cfg.secret("OGMA_DASHBOARD_PASSWORD", cfg.passwordFile, "--password-file")
	if err != nil {
		return err
	}
	store, err := cfg.openStore(ctx, cfg.clickhouse)
	if err != nil {
		return err
	}
	defer store.Close()
	xml, err := store.GrantDashboardLogin(ctx, cfg.tenant, pass.Reveal())
	if err != nil {
		return err
	}
	login := clickhouse.DashboardLogin(cfg.tenant)
	switch {
	case xml == "":
		fmt.Fprintf(cfg.stdout, "%s reads %s\n", login, store.TenantDatabase(cfg.tenant))
	case cfg.usersDir == "":
		fmt.Fprint(cfg.stdout, xml)
	default:
		path := filepath.Join(cfg.usersDir, login+".xml")
		if err := os.WriteFile(path, []byte(xml), 0o640); err != nil {
			return fmt.Errorf("dashboard login: %w", err)
		}
		fmt.Fprintf(cfg.stdout, "%s reads %s (ClickHouse loads %s within seconds)\n", login, store.TenantDatabase(cfg.tenant), path)
	}
	return nil
}

func runDashboardsRefresh(ctx context.Context, cfg *dashboardsConfig) error {
	if cfg.tenant == "" {
		return errors.New("--tenant is required")
	}
	store, err := cfg.openStore(ctx, cfg.clickhouse)
	if err != nil {
		return err
	}
	defer store.Close()
	return store.RefreshDashboards(ctx, cfg.tenant, time.Now())
}

package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// tenantAdmin holds the flags of tenant list and delete.
type tenantAdmin struct {
	*common
	id, confirm string
	erase       bool
	clickhouse  clickhouse.Config
}

func newTenantListCmd(c *common) *cobra.Command {
	cfg := &tenantAdmin{common: c}
	return &cobra.Command{
		Use:   "list",
		Short: "List the tenants: id, name, residency, connected vendors, tokens",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runTenantList(cmd.Context(), cfg) },
	}
}

func runTenantList(ctx context.Context, cfg *tenantAdmin) error {
	_, _, _, st, err := cfg.controlState(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(cfg.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tRESIDENCY\tCREATED\tVENDORS\tTOKENS")
	for _, id := range slices.Sorted(maps.Keys(st.Tenants)) {
		t := st.Tenants[id]
		var vendors []string
		for k, i := range st.Integrations {
			if k.Tenant == id {
				vendors = append(vendors, fmt.Sprintf("%s (generation %d, %s)", k.Vendor, i.Generation, i.Status))
			}
		}
		slices.Sort(vendors)
		tokens := 0
		for _, tok := range st.Tokens {
			if tok.Tenant == id {
				tokens++
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", t.ID, t.Name, t.Residency, t.CreatedAt.Format(time.DateOnly),
			cmp.Or(strings.Join(vendors, ", "), "-"), tokens)
	}
	return w.Flush()
}

func newTenantDeleteCmd(c *common) *cobra.Command {
	cfg := &tenantAdmin{common: c}
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Offboard a tenant: destroy its keys and tokens, and with --erase its data in Kafka and ClickHouse (the chain still verifies)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runTenantDelete(cmd.Context(), cfg) },
	}
	cmd.Flags().StringVar(&cfg.id, "id", "", "the tenant to delete")
	cmd.Flags().StringVar(&cfg.confirm, "confirm", "", "the tenant id again: deleting cannot be undone")
	cmd.Flags().BoolVar(&cfg.erase, "erase", false, "also erase the tenant's data: its data key in Kafka, its data and salt in ClickHouse; events keep their hashes")
	addClickHouseFlags(cmd, &cfg.clickhouse, &c.chSec)
	return cmd
}

func runTenantDelete(ctx context.Context, cfg *tenantAdmin) error {
	if cfg.id == "" || cfg.confirm != cfg.id {
		return fmt.Errorf("give the tenant as --id and again as --confirm: deleting destroys its keys and cannot be undone")
	}
	dial, layout, kr, st, err := cfg.controlState(ctx)
	if err != nil {
		return err
	}
	if _, ok := st.Tenants[cfg.id]; !ok {
		return fmt.Errorf("no tenant %s", cfg.id)
	}
	if err := control.Publish(ctx, dial, kr, control.OffboardRecords(layout, st, cfg.id)...); err != nil {
		return err
	}
	fmt.Fprintf(cfg.stdout, "tenant %s deleted: its keys, tokens and integrations are gone from ogma.control (compaction removes them from the topic)\n", cfg.id)
	if !cfg.erase {
		return nil
	}
	if err := datakey.Erase(ctx, dial, layout, cfg.id, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(cfg.stdout, "tenant %s erased in Kafka: its data key is destroyed (ogma.events keeps its chain, sealed data that no longer opens) and its open buckets are tombstoned\n", cfg.id)
	store, err := cfg.openStore(ctx, cfg.clickhouse)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.EraseTenant(ctx, cfg.id); err != nil {
		return err
	}
	fmt.Fprintf(cfg.stdout, "tenant %s erased in ClickHouse: events keep their hashes (the chain still verifies), not their data and salt; projections are gone\n", cfg.id)
	return nil
}

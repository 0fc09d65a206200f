package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

type tenantConfig struct {
	*common
	tenant        control.Tenant
	residency     string
	openaiKeyFile string
	anthropicFile string
}

func newTenantCmd(c *common, run func(context.Context, *tenantConfig) error) *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Manage tenants"}
	cfg := &tenantConfig{common: c}
	if run == nil {
		run = runTenantCreate
	}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a tenant, optionally connecting its vendor Admin keys, and print its id",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cfg) },
	}
	f := create.Flags()
	f.StringVar(&cfg.tenant.ID, "id", "", "tenant id: lowercase letters, digits and '-'")
	f.StringVar(&cfg.tenant.Name, "name", "", "display name")
	f.StringVar(&cfg.residency, "residency", "us", "where the tenant's data must stay: us or eu")
	f.StringVar(&cfg.openaiKeyFile, "openai-admin-key-file", "", "file holding the tenant's OpenAI Admin key (sk-admin-…), sealed on the spot")
	f.StringVar(&cfg.anthropicFile, "anthropic-admin-key-file", "", "file holding the tenant's Anthropic Admin key (sk-ant-admin01-…), sealed on the spot")
	cmd.AddCommand(create, newTenantListCmd(c), newTenantDeleteCmd(c))
	return cmd
}

func runTenantCreate(ctx context.Context, cfg *tenantConfig) error {
	t := cfg.tenant
	t.Residency, t.CreatedAt = control.Residency(cfg.residency), time.Now().UTC()
	keys := map[string]seal.Secret{}
	for vendor, file := range map[string]string{stream.OpenAI: cfg.openaiKeyFile, stream.Anthropic: cfg.anthropicFile} {
		if file == "" {
			continue
		}
		if v, _ := stream.VendorOf(vendor); !v.Serves(cfg.residency) {
			return errors.New(v.ResidencyNote)
		}
		key, err := readSecretFile(file)
		if err != nil {
			return err
		}
		keys[vendor] = key
	}
	dial, layout, kr, err := cfg.controlWriter(ctx)
	if err != nil {
		return err
	}
	if err := createTenant(ctx, dial, layout, kr, t); err != nil {
		return err
	}
	for _, vendor := range slices.Sorted(maps.Keys(keys)) {
		if err := connectKey(ctx, dial, layout, kr, t.ID, vendor, keys[vendor], t.CreatedAt); err != nil {
			return err
		}
	}
	fmt.Fprintln(cfg.stdout, t.ID)
	return nil
}

// createTenant records a new tenant; an existing id is an error.
func createTenant(ctx context.Context, dial topic.Dial, l topic.Layout, kr *seal.Keyring, t control.Tenant) error {
	if err := t.Validate(); err != nil {
		return err
	}
	st, err := control.Load(ctx, dial, l, kr)
	if err != nil {
		return err
	}
	if _, ok := st.Tenants[t.ID]; ok {
		return fmt.Errorf("tenant %s already exists", t.ID)
	}
	keys := datakey.New(dial, l)
	if err := keys.Reload(ctx); err != nil {
		return err
	}
	if _, err := keys.Get(t.ID); errors.Is(err, datakey.ErrErased) {
		return fmt.Errorf("tenant %s was erased: its id is not given out again", t.ID)
	}
	return control.Publish(ctx, dial, kr, control.TenantRecord(l, t))
}

// connectKey seals key as the next generation of the tenant's integration
// with vendor and records it; the first connect time is kept across keys.
func connectKey(ctx context.Context, dial topic.Dial, l topic.Layout, kr *seal.Keyring, tenant, vendor string, key seal.Secret, now time.Time) error {
	st, err := control.Load(ctx, dial, l, kr)
	if err != nil {
		return err
	}
	if _, ok := st.Tenants[tenant]; !ok {
		return fmt.Errorf("no tenant %s", tenant)
	}
	integ, _ := st.Integration(control.VendorKey{Tenant: tenant, Vendor: vendor})
	integ = integ.Next(tenant, vendor, control.KeyHint(key.Reveal()), now)
	if integ.Sealed, err = kr.Seal(key, tenant, vendor, integ.Generation); err != nil {
		return err
	}
	return control.Publish(ctx, dial, kr, control.IntegrationRecord(l, integ))
}

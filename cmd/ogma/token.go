package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

type tokenConfig struct {
	*common
	tenant string
	name   string
}

func newTokenCmd(c *common, run func(context.Context, *tokenConfig) error) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API bearer tokens"}
	cfg := &tokenConfig{common: c}
	if run == nil {
		run = runTokenCreate
	}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a bearer token for a tenant and print it (only its hash is stored)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cfg) },
	}
	create.Flags().StringVar(&cfg.tenant, "tenant", "", "tenant id")
	create.Flags().StringVar(&cfg.name, "name", "cli", "what the token is for")
	cmd.AddCommand(create)
	return cmd
}

func runTokenCreate(ctx context.Context, cfg *tokenConfig) error {
	dial, layout, kr, err := cfg.controlWriter(ctx)
	if err != nil {
		return err
	}
	tok, err := createToken(ctx, dial, layout, kr, cfg.tenant, cfg.name, time.Now().UTC())
	if err != nil {
		return err
	}
	fmt.Fprintln(cfg.stdout, tok)
	return nil
}

// createToken records the hash of a new token for tenant and returns the
// token, which exists nowhere else.
func createToken(ctx context.Context, dial topic.Dial, l topic.Layout, kr *seal.Keyring, tenant, name string, now time.Time) (string, error) {
	st, err := control.Load(ctx, dial, l, kr)
	if err != nil {
		return "", err
	}
	if _, ok := st.Tenants[tenant]; !ok {
		return "", fmt.Errorf("no tenant %q", tenant)
	}
	tok, hash := control.NewToken()
	if err := control.Publish(ctx, dial, kr, control.TokenRecord(l, control.Token{Hash: hash, Tenant: tenant, Name: name, CreatedAt: now})); err != nil {
		return "", err
	}
	return tok, nil
}

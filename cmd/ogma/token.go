package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
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
	cmd.AddCommand(create, newTokenListCmd(c), newTokenRevokeCmd(c))
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

// tokenIDLen is how much of a token's hash names it in list and revoke:
// enough to tell tokens apart, nothing that opens anything.
const tokenIDLen = 12

func newTokenListCmd(c *common) *cobra.Command {
	cfg := &tokenConfig{common: c}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the bearer tokens: id (the start of the token's hash), tenant, name, created",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, _, _, st, err := cfg.controlState(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cfg.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tTENANT\tNAME\tCREATED")
			for _, t := range tokensOf(st, cfg.tenant) {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Hash[:tokenIDLen], t.Tenant, t.Name, t.CreatedAt.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&cfg.tenant, "tenant", "", "only this tenant's tokens")
	return cmd
}

// tokensOf returns the tokens of tenant ("" for all), by tenant and name.
func tokensOf(st *control.State, tenant string) []control.Token {
	var out []control.Token
	for _, t := range st.Tokens {
		if tenant == "" || t.Tenant == tenant {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b control.Token) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Name, b.Name), strings.Compare(a.Hash, b.Hash))
	})
	return out
}

func newTokenRevokeCmd(c *common) *cobra.Command {
	cfg := &tokenConfig{common: c}
	var id string
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke a bearer token by its id (from token list): every API process refuses it once it reads ogma.control",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dial, layout, kr, st, err := cfg.controlState(cmd.Context())
			if err != nil {
				return err
			}
			tok, err := tokenByID(st, id)
			if err != nil {
				return err
			}
			if err := control.Publish(cmd.Context(), dial, kr, control.Tombstone(control.TokenRecord(layout, tok))); err != nil {
				return err
			}
			fmt.Fprintf(cfg.stdout, "token %s (%s, %s) revoked\n", tok.Hash[:tokenIDLen], tok.Tenant, tok.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the token's id, as token list shows it")
	return cmd
}

// tokenByID finds the one token whose hash starts with id.
func tokenByID(st *control.State, id string) (control.Token, error) {
	if len(id) < 8 {
		return control.Token{}, fmt.Errorf("--id %q: give at least 8 characters of the id token list shows", id)
	}
	var found []control.Token
	for _, t := range st.Tokens {
		if strings.HasPrefix(t.Hash, id) {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return control.Token{}, fmt.Errorf("no token has id %s", id)
	case 1:
		return found[0], nil
	}
	return control.Token{}, fmt.Errorf("%d tokens have ids starting %s: give more of it", len(found), id)
}

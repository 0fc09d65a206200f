package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
)

func newKeysCmd(c *common) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Make the master key; show the installation's keys; rotate the master key"}
	cmd.AddCommand(&cobra.Command{
		Use: "init",
		Short: "Write a new master key to --master-key-file (mode 0600) for an installation's first start; " +
			"an existing file is kept as it is",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c.masterKeyFile == "" {
				return errors.New("no master key file: set OGMA_MASTER_KEY_FILE (or --master-key-file)")
			}
			created, err := seal.CreateKeyFile(c.masterKeyFile)
			if err != nil {
				return err
			}
			if !created {
				fmt.Fprintf(c.stdout, "master key %s already exists: kept\n", c.masterKeyFile)
				return nil
			}
			fmt.Fprintf(c.stdout, "master key written to %s: back it up; without it no sealed key opens\n", c.masterKeyFile)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "anchor",
		Short: "Print the anchor public key (PEM) and its SHA-256 fingerprint, which verifiers pin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, dial, _, err := c.kafka(cmd.Context(), nil)
			if err != nil {
				return err
			}
			kr, err := c.keyring()
			if err != nil {
				return err
			}
			key, err := anchor.LoadKey(cmd.Context(), dial, kr)
			if errors.Is(err, anchor.ErrNoKey) {
				return fmt.Errorf("%w: `ogma sink rekor` (or `ogma dev --rekor-url`) makes it when it first starts", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%sSHA-256 fingerprint: %s\n", key.PublicPEM(), key.Fingerprint())
			return nil
		},
	})
	cmd.AddCommand(newKeysRotateCmd(c))
	return cmd
}

type keysConfig struct {
	*common
	resume bool
}

func newKeysRotateCmd(c *common) *cobra.Command {
	cfg := &keysConfig{common: c}
	rotate := &cobra.Command{
		Use: "rotate",
		Short: "Add a new master key as primary and re-wrap every sealed key's data key under it " +
			"(restart the roles after: each loads the key file when it starts)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKeysRotate(cmd.Context(), cfg) },
	}
	rotate.Flags().BoolVar(&cfg.resume, "resume", false, "add no new key: finish re-wrapping what a rotation cut short left under an older one")
	return rotate
}

func runKeysRotate(ctx context.Context, cfg *keysConfig) error {
	if cfg.masterKeyFile == "" {
		return fmt.Errorf("no master key: set OGMA_MASTER_KEY_FILE (or --master-key-file)")
	}
	if !cfg.resume {
		id, err := seal.RotateKeyFile(cfg.masterKeyFile)
		if err != nil {
			return err
		}
		fmt.Fprintf(cfg.stdout, "master key %d added as primary in %s\n", id, cfg.masterKeyFile)
	}
	dial, layout, kr, st, err := cfg.controlState(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, integ := range st.Integrations {
		sealed, rewrapped, err := kr.Rewrap(integ.Sealed, integ.Tenant, integ.Vendor, integ.Generation)
		if err != nil {
			return fmt.Errorf("re-wrap the %s key of %s: %w", integ.Vendor, integ.Tenant, err)
		}
		if !rewrapped {
			continue
		}
		integ.Sealed = sealed
		if err := control.Publish(ctx, dial, kr, control.IntegrationRecord(layout, integ)); err != nil {
			return err
		}
		n++
	}
	anchorKey, err := anchor.RewrapKey(ctx, dial, kr)
	if err != nil {
		return err
	}
	fmt.Fprintf(cfg.stdout, "%d vendor keys re-wrapped under master key %d (the others were already); anchor key re-wrapped: %v\n",
		n, kr.MasterKeyID(), anchorKey)
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/rekor"
)

// exitError ends the process with its code: `ogma verify` tells a failure
// found (1) from input it cannot use (2).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

type exportConfig struct {
	*common
	clickhouse  clickhouse.Config
	tenant      string
	fromSeq     uint64
	withoutData bool
	out         string
}

func newExportCmd(c *common) *cobra.Command {
	cfg := &exportConfig{common: c}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a tenant's evidence bundle: its events, its receipts and the anchor chain, for `ogma verify`",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runExport(cmd.Context(), cfg) },
	}
	f := cmd.Flags()
	f.StringVar(&cfg.tenant, "tenant", "", "tenant id")
	f.Uint64Var(&cfg.fromSeq, "from-seq", 1, "first event to include")
	f.BoolVar(&cfg.withoutData, "without-data", false, "leave the events' data and salts out: integrity without content")
	f.StringVar(&cfg.out, "out", "-", "file to write (mode 0600), or - for stdout")
	addClickHouseFlags(cmd, &cfg.clickhouse, &c.chSec)
	return cmd
}

func runExport(ctx context.Context, cfg *exportConfig) error {
	if cfg.tenant == "" {
		return errors.New("--tenant is required")
	}
	if cfg.fromSeq == 0 {
		return errors.New("--from-seq counts from 1")
	}
	store, err := cfg.openStore(ctx, cfg.clickhouse)
	if err != nil {
		return err
	}
	defer store.Close()
	out := io.Writer(cfg.stdout)
	if cfg.out != "-" {
		f, err := os.OpenFile(cfg.out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer f.Close()
		out = f
	}
	return store.WriteBundle(ctx, out, anchor.BundleHeader{Tenant: cfg.tenant, FromSeq: cfg.fromSeq, Data: !cfg.withoutData,
		ExportedAt: time.Now().UTC().Format(time.RFC3339)}, true)
}

type verifyConfig struct {
	*common
	logKey      string
	fingerprint string
	anchors     bool
}

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func newVerifyCmd(c *common) *cobra.Command {
	cfg := &verifyConfig{common: c}
	cmd := &cobra.Command{
		Use:   "verify BUNDLE",
		Short: "Verify an evidence bundle offline against pinned trust roots; exit 0 proven, 1 a failure found, 2 unusable input",
		Long: `Verify an evidence bundle (from ogma export; - reads stdin) offline, trusting only the log's public
key (--log-key, PEM; by default the public Sigstore log's, which ships pinned) and the anchor key
fingerprint the operator publishes (--anchor-key-fingerprint, from ogma keys anchor). Keys inside the bundle are only compared to these. It prints the first seq
where anything fails and why, or what was proven; events after the last anchor are reported as
unanchored, not as proven. Exit codes: 0 proven, 1 a failure found, 2 unusable input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runVerify(cmd.Context(), cfg, args[0]) },
	}
	cmd.Flags().StringVar(&cfg.logKey, "log-key", "", "PEM file of the log's public key (Rekor: /api/v1/log/publicKey); default: the public Sigstore log's, pinned in Ogma")
	cmd.Flags().StringVar(&cfg.fingerprint, "anchor-key-fingerprint", "", "hex SHA-256 of the installation's anchor public key (ogma keys anchor)")
	cmd.Flags().BoolVar(&cfg.anchors, "anchors", false, "also list what each anchor covers: its seq, when it was stated and logged")
	return cmd
}

func runVerify(ctx context.Context, cfg *verifyConfig, path string) error {
	unusable := func(format string, a ...any) error { return &exitError{2, fmt.Errorf(format, a...)} }
	if !fingerprintRE.MatchString(cfg.fingerprint) {
		return unusable("--anchor-key-fingerprint %q: want 64 lowercase hex digits (ogma keys anchor prints it)", cfg.fingerprint)
	}
	pemBytes := rekor.PublicSigstoreKey
	if cfg.logKey != "" {
		var err error
		if pemBytes, err = os.ReadFile(cfg.logKey); err != nil {
			return unusable("--log-key: %v", err)
		}
	}
	logKey, err := rekor.ParseLogKey(pemBytes)
	if err != nil {
		return unusable("--log-key %s: %v", cfg.logKey, err)
	}
	in := io.Reader(os.Stdin)
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return unusable("%v", err)
		}
		defer f.Close()
		in = f
	}
	rep, err := rekor.VerifyBundle(ctx, in, rekor.TrustRoots{LogKey: logKey, AnchorKey: cfg.fingerprint})
	if err != nil {
		return unusable("%s: %v", path, err)
	}
	w := cfg.stdout
	if f := rep.Failure; f != nil {
		fmt.Fprintf(w, "FAILED: tenant %s, %s\n", rep.Tenant, f)
		return &exitError{1, fmt.Errorf("verification failed at seq %d", f.Seq)}
	}
	fmt.Fprintf(w, "proven: tenant %s, %d events (seq %d to %d), %d anchors", rep.Tenant, rep.Events, rep.FirstSeq, rep.LastSeq, rep.Anchors)
	if rep.Anchors > 0 {
		fmt.Fprintf(w, "; anchored through seq %d, stated %s, logged %s", rep.AnchoredSeq, rep.AnchoredAt, rep.LoggedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "\n%d unanchored", rep.Unanchored)
	if rep.Unanchored > 0 {
		fmt.Fprint(w, " (whole and linked, but no log vouches for them yet)")
	}
	if rep.Erased > 0 {
		fmt.Fprintf(w, "; %d erased", rep.Erased)
	}
	fmt.Fprintln(w)
	if cfg.anchors {
		for _, c := range rep.Covered {
			fmt.Fprintf(w, "anchor %d: through seq %d, stated %s, logged %s\n", c.Index, c.Seq, c.Stated, c.Logged.Format(time.RFC3339))
		}
	}
	return nil
}

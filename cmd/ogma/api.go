package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/api"
	"github.com/ogma-dev/ogma/connectors/anthropic"
	"github.com/ogma-dev/ogma/connectors/openai"
	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/sinks/clickhouse"
	"github.com/ogma-dev/ogma/sinks/rekor"
)

type apiConfig struct {
	*common
	server           api.Config
	clickhouse       clickhouse.Config
	openaiBaseURL    string
	anthropicBaseURL string
	rekorURL         string

	// Its metrics and health are served on --http.
	observed

	// Set by `ogma dev`: a callback told the bound addresses, and the
	// clock (nil: time.Now).
	onListening func(httpAddr, grpcAddr string)
	now         func() time.Time
}

func newAPICmd(c *common, run func(context.Context, *apiConfig) error) *cobra.Command {
	cfg := &apiConfig{common: c}
	if run == nil {
		run = runAPI
	}
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve the gRPC API and its REST face",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cfg) },
	}
	addAPIFlags(cmd, cfg)
	addAPIVendorFlags(cmd, cfg)
	addClickHouseFlags(cmd, &cfg.clickhouse, &c.chSec)
	cmd.Flags().StringVar(&cfg.rekorURL, "rekor-url", "", "the log `ogma sink rekor` anchors in, whose key /v1/integrity:verify pins; empty: none")
	return cmd
}

func addAPIFlags(cmd *cobra.Command, cfg *apiConfig) {
	cmd.Flags().StringVar(&cfg.server.HTTP, "http", "127.0.0.1:8080", "REST, /healthz and /metrics listen address")
	cmd.Flags().StringVar(&cfg.server.GRPC, "grpc", "127.0.0.1:9090", "gRPC listen address")
	cmd.Flags().StringVar(&cfg.server.TLSCert, "tls-cert", "", "PEM certificate (chain) file: REST and gRPC speak TLS only")
	cmd.Flags().StringVar(&cfg.server.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
	cmd.Flags().BoolVar(&cfg.server.Insecure, "insecure", false, "allow listening beyond loopback without TLS, behind a proxy that terminates it")
}

func addAPIVendorFlags(cmd *cobra.Command, cfg *apiConfig) {
	cmd.Flags().StringVar(&cfg.openaiBaseURL, "openai-base-url", openai.DefaultBaseURL, "OpenAI API origin (a simulator's address in tests)")
	cmd.Flags().StringVar(&cfg.anthropicBaseURL, "anthropic-base-url", anthropic.DefaultBaseURL, "Anthropic API origin (a simulator's address in tests)")
}

// runAPI runs the API role until ctx ends: it follows ogma.control for
// tokens and tenants, and serves.
func runAPI(ctx context.Context, cfg *apiConfig) error {
	reg, health, _ := cfg.observe()
	log, dial, layout, err := cfg.kafka(ctx, &kafkaMetrics{reg: reg, role: "api"})
	if err != nil {
		return err
	}
	store, err := cfg.openStore(ctx, cfg.clickhouse)
	if err != nil {
		return err
	}
	defer store.Close()
	kr, err := cfg.keyring()
	if err != nil {
		return err
	}
	oa, err := openai.NewClient(openai.ClientConfig{BaseURL: cfg.openaiBaseURL})
	if err != nil {
		return err
	}
	an, err := anthropic.NewClient(anthropic.ClientConfig{BaseURL: cfg.anthropicBaseURL})
	if err != nil {
		return err
	}
	if err := control.Protect(ctx, dial, layout, kr); err != nil {
		return err
	}
	view, cursors := &control.View{Log: log, Keys: kr}, &stream.CursorView{}
	integ := &api.Integrations{Probers: map[string]api.Prober{stream.OpenAI: oa, stream.Anthropic: an}, Keyring: kr, Layout: layout, Cursors: cursors,
		Publish: func(ctx context.Context, recs ...*kgo.Record) error { return control.Publish(ctx, dial, kr, recs...) }, Now: cfg.now}
	links := &api.Links{Layout: layout, Publish: integ.Publish, Ledger: store, Now: cfg.now}
	evidence := &api.Integrity{Ledger: store, LogURL: cfg.rekorURL, Now: cfg.now,
		AnchorKey: func(ctx context.Context) (*anchor.Key, error) { return anchor.LoadKey(ctx, dial, kr) }}
	if cfg.rekorURL != "" {
		rl, err := rekor.NewRekor(cfg.rekorURL)
		if err != nil {
			return err
		}
		evidence.LogKey = rl.PublicKey
	}
	srv, err := api.New(cfg.server, api.Deps{View: view, Health: health, Logger: log, Usage: store, Integrations: integ,
		Identity: store, Audit: store, Links: links, Integrity: evidence,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})})
	if err != nil {
		return err
	}
	controlReady, cursorsReady, apiReady := health.Add("control"), health.Add("cursors"), health.Add("api")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return view.Run(gctx, dial, layout, controlReady) })
	g.Go(func() error { return cursors.Run(gctx, dial, layout, cursorsReady) })
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		select {
		case <-srv.Listening():
			apiReady()
			if cfg.onListening != nil {
				cfg.onListening(srv.HTTPAddr(), srv.GRPCAddr())
			}
		case <-gctx.Done():
		}
		return nil
	})
	return g.Wait()
}

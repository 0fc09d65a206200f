package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

// addMetricsFlag adds --metrics-addr to a role that runs on its own; in
// `ogma dev` every role's metrics are served together on --http.
func addMetricsFlag(cmd *cobra.Command, addr *string) {
	cmd.Flags().StringVar(addr, "metrics-addr", "", "address to serve Prometheus /metrics on, such as 127.0.0.1:9464 (empty: none)")
}

// standaloneRegistry returns reg when `ogma dev` set it. Otherwise it makes
// one with the Go and process collectors, and serve serves it on
// addr/metrics until ctx ends (doing nothing when addr is empty).
func standaloneRegistry(reg prometheus.Registerer, addr string, log *slog.Logger) (_ prometheus.Registerer, serve func(context.Context) error) {
	none := func(context.Context) error { return nil }
	if reg != nil {
		return reg, none
	}
	r := newRegistry()
	if addr == "" {
		return r, none
	}
	return r, func(ctx context.Context) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		log.InfoContext(ctx, "serving metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
		return serveHTTP(ctx, ln, promhttp.HandlerFor(r, promhttp.HandlerOpts{}))
	}
}

// newRegistry returns a registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

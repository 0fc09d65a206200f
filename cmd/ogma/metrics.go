package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/ogma-dev/ogma/api"
)

// observed is what a role shows operators: its metrics and its health.
// `ogma dev` sets registry and health, shared by every role it runs and
// served on its --http; a role run on its own makes both and serves them
// on --metrics-addr (/metrics and /healthz).
type observed struct {
	metricsAddr string
	health      *api.Health
	registry    *prometheus.Registry
}

// addMetricsFlag adds --metrics-addr to a role that runs on its own.
func addMetricsFlag(cmd *cobra.Command, o *observed) {
	cmd.Flags().StringVar(&o.metricsAddr, "metrics-addr", "",
		"address to serve Prometheus /metrics and /healthz on, such as 127.0.0.1:9464 (empty: none)")
}

// observe returns the role's registry and health, making them when `ogma
// dev` did not, and serve, which serves them on --metrics-addr until ctx
// ends (nothing to do in `ogma dev` or without the flag).
func (o *observed) observe() (reg *prometheus.Registry, health *api.Health, serve func(context.Context, *slog.Logger) error) {
	serve = func(context.Context, *slog.Logger) error { return nil }
	if o.registry != nil {
		return o.registry, o.health, serve
	}
	o.registry, o.health = newRegistry(), &api.Health{}
	if o.metricsAddr == "" {
		return o.registry, o.health, serve
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", o.health)
	return o.registry, o.health, func(ctx context.Context, log *slog.Logger) error {
		ln, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		log.InfoContext(ctx, "serving metrics and health", "addr", "http://"+ln.Addr().String()+"/metrics")
		return serveHTTP(ctx, ln, mux)
	}
}

// newRegistry returns a registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// kafkaMetrics gives each Kafka client of a role kprom's metrics
// (ogma_kafka_*), labelled with the role and a client slot: the lowest
// one no live client holds, so that the short-lived clients of a role (a
// topic read to its end) reuse labels instead of adding series. kprom
// registers a client's collectors when it starts and removes them when it
// closes. Safe for concurrent use.
type kafkaMetrics struct {
	reg  prometheus.Registerer
	role string

	mu   sync.Mutex
	used []bool
}

// opt returns the hooks of one new client, and release, which frees its
// slot when the client could not be made (once made, closing it does).
func (k *kafkaMetrics) opt() (_ kgo.Opt, release func()) {
	slot, free := k.slot()
	return kgo.WithHooks(k.metrics(slot), clientClosed(free)), free
}

// pinned returns the hooks of a client that the role closes and makes
// again (the processor's session, after the broker aborted a transaction
// of it): its slot is never freed, so no other client takes its labels
// and each new client registers the series its last one removed.
func (k *kafkaMetrics) pinned() kgo.Opt {
	slot, _ := k.slot()
	return kgo.WithHooks(k.metrics(slot))
}

// slot takes the lowest free slot; free gives it back.
func (k *kafkaMetrics) slot() (slot int, free func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	slot = slices.Index(k.used, false)
	if slot < 0 {
		slot, k.used = len(k.used), append(k.used, false)
	}
	k.used[slot] = true
	return slot, func() {
		k.mu.Lock()
		k.used[slot] = false
		k.mu.Unlock()
	}
}

func (k *kafkaMetrics) metrics(slot int) *kprom.Metrics {
	labels := prometheus.Labels{"role": k.role, "client": strconv.Itoa(slot)}
	return kprom.NewMetrics("ogma", kprom.Subsystem("kafka"), kprom.Registerer(prometheus.WrapRegistererWith(labels, k.reg)))
}

// clientClosed is a hook called once its client is closed.
type clientClosed func()

func (f clientClosed) OnClientClosed(*kgo.Client) { f() }

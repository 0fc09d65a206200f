// Package broker runs the embedded Kafka broker of `ogma dev` and of tests: a
// franz-go kfake cluster of one broker, speaking the Kafka wire protocol on
// real TCP, optionally persisted to a data directory so that its topics,
// records, transactions and group offsets survive a restart.
package broker

import (
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures the embedded broker.
type Config struct {
	// Listen is the TCP address to listen on. Default "127.0.0.1:0", a free
	// port on loopback.
	Listen string
	// DataDir is where the broker persists its state. Empty keeps everything
	// in memory, gone at Close.
	DataDir string
	// Opts are extra kfake options, for tests that inject faults or tune
	// group timers.
	Opts []kfake.Opt
}

// Broker is a running embedded broker.
type Broker struct {
	c *kfake.Cluster
}

// Start starts a broker listening on cfg.Listen. The broker serves from its
// own goroutines until Close.
func Start(cfg Config) (*Broker, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// kfake binds 127.0.0.1:<port>; this honors the host of cfg.Listen too.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, cfg.Listen)
		}),
		// Ogma creates its topics itself, with their policies.
		kfake.DefaultNumPartitions(1),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(append(opts, cfg.Opts...)...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka on %s: %w", cfg.Listen, err)
	}
	return &Broker{c: c}, nil
}

// Addrs returns the broker's listen addresses, for kgo.SeedBrokers.
func (b *Broker) Addrs() []string { return b.c.ListenAddrs() }

// Cluster returns the underlying kfake cluster, for fault injection in tests
// ([kfake.Cluster.ControlKey]).
func (b *Broker) Cluster() *kfake.Cluster { return b.c }

// Close stops the broker, persisting its state when it has a data dir.
// It is idempotent.
func (b *Broker) Close() { b.c.Close() }

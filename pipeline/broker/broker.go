// Package broker runs the embedded Kafka broker of `ogma dev` and of tests: a
// franz-go kfake cluster of one broker, speaking the Kafka wire protocol on
// real TCP, optionally persisted to a data directory so that its topics,
// records, transactions and group offsets survive a restart.
//
// kfake alone does not keep Kafka's transactional promises across a kill -9
// (shared/notes/kfake-crash-durability.md): it aborts a transaction left
// open by the crash in memory only, without an ABORT marker, so a later
// commit of the same producer can make it committed at the next restart, and
// until then read-committed readers skip that producer's committed records.
// So a broker with a data dir holds a lock file while it runs; when Start
// finds one left behind, it repairs the data dir before any client can
// connect (see [Repair]).
package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

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
	// RepairTimeout bounds the repair after an unclean shutdown. Default
	// 5 min: it reads the whole log, about 1.2 s per million records.
	RepairTimeout time.Duration
	// Opts are extra kfake options, for tests that inject faults or tune
	// group timers.
	Opts []kfake.Opt
	// Logger; nil discards.
	Logger *slog.Logger
}

// lockName is the file a running broker holds in its data dir; Close
// removes it, so finding it at start means the last run did not close.
const lockName = "ogma-broker.lock"

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	lock *os.File
	// Repaired is what the start repaired; zero after a clean shutdown.
	Repaired RepairReport
}

// Start starts a broker listening on cfg.Listen, first repairing its data
// dir if the last run ended without Close. The broker serves from its own
// goroutines until Close.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.RepairTimeout == 0 {
		cfg.RepairTimeout = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With("component", "broker")
	b := &Broker{}
	if cfg.DataDir != "" {
		lock, unclean, err := acquire(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		b.lock = lock
		if unclean {
			rctx, cancel := context.WithTimeout(ctx, cfg.RepairTimeout)
			b.Repaired, err = Repair(rctx, cfg.DataDir, cfg.Opts...)
			cancel()
			if err != nil {
				b.unlock(false)
				return nil, fmt.Errorf("repair embedded kafka in %s after an unclean shutdown: %w", cfg.DataDir, err)
			}
			log.InfoContext(ctx, "repaired after an unclean shutdown", "aborted", b.Repaired.Aborted,
				"rolled_forward", b.Repaired.RolledForward, "fenced", b.Repaired.Fenced,
				"indexes_rebuilt", b.Repaired.IndexesRebuilt, "orphans", b.Repaired.Orphans,
				"records_scanned", b.Repaired.Scanned, "duration", b.Repaired.Duration)
			if b.Repaired.Orphans > 0 {
				log.WarnContext(ctx, "transactions left open by an earlier crash that was never repaired; their records may have been shown or hidden wrongly before", "orphans", b.Repaired.Orphans)
			}
		}
	}
	c, err := kfake.NewCluster(clusterOpts(cfg.DataDir, func(network, _ string) (net.Listener, error) {
		return net.Listen(network, cfg.Listen)
	}, cfg.Opts)...)
	if err != nil {
		b.unlock(false)
		return nil, fmt.Errorf("start embedded kafka on %s: %w", cfg.Listen, err)
	}
	b.c = c
	if b.lock != nil {
		// Other commands on the same data dir find the broker from here.
		b.lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"+strings.Join(c.ListenAddrs(), ",")+"\n"), 0)
	}
	return b, nil
}

// Running returns the listen addresses of the broker running on dataDir,
// if one is: what `ogma tenant create` and the other commands use when no
// Kafka is given.
func Running(dataDir string) ([]string, bool) {
	f, err := os.Open(filepath.Join(dataDir, lockName))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return nil, false // no broker holds it: a crashed run's file
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 || lines[1] == "" {
		return nil, false // still starting
	}
	return strings.Split(lines[1], ","), true
}

// clusterOpts are the kfake options of a broker on dataDir.
func clusterOpts(dataDir string, listen func(network, address string) (net.Listener, error), extra []kfake.Opt) []kfake.Opt {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// kfake binds 127.0.0.1:<port>; this honors the host of cfg.Listen too.
		kfake.ListenFn(listen),
		// Ogma creates its topics itself, with their policies.
		kfake.DefaultNumPartitions(1),
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	return append(opts, extra...)
}

// acquire takes the data dir's lock: an exclusive flock, so two brokers
// never share a dir, on a file whose presence tells the next start that
// this run did not close.
func acquire(dir string) (f *os.File, unclean bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("embedded kafka data dir: %w", err)
	}
	path := filepath.Join(dir, lockName)
	_, statErr := os.Stat(path)
	unclean = statErr == nil
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("embedded kafka lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("embedded kafka data dir %s is in use by another process: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, unclean, nil
}

// unlock releases the lock; clean removes the file too, marking the data
// dir as closed cleanly.
func (b *Broker) unlock(clean bool) {
	if b.lock == nil {
		return
	}
	if clean {
		os.Remove(b.lock.Name())
	}
	b.lock.Close()
	b.lock = nil
}

// Addrs returns the broker's listen addresses, for kgo.SeedBrokers.
func (b *Broker) Addrs() []string { return b.c.ListenAddrs() }

// Cluster returns the underlying kfake cluster, for fault injection in tests
// ([kfake.Cluster.ControlKey]).
func (b *Broker) Cluster() *kfake.Cluster { return b.c }

// Close stops the broker, persisting its state when it has a data dir, and
// marks the data dir as closed cleanly. It is idempotent.
func (b *Broker) Close() {
	b.c.Close()
	b.unlock(true)
}

// Package rekor anchors the chains in a transparency log: every interval,
// at a fixed cadence and even when nothing moved, it folds the head of
// every tenant's chain into one RFC 6962 tree, signs a statement over its
// root with the installation anchor key, persists the statement in
// ogma.anchors, and only then uploads a hashedrekord entry of it to Rekor,
// keeping the log's whole answer as the receipt. One entry per interval
// per installation, whatever the number of tenants or events.
//
// The log being down delays receipts, never statements or ingestion:
// statements are made on time and uploaded in order, each retried byte for
// byte until the log has it. The sink follows ogma.events on its own and
// checks each tenant's chain (seq, prev) as it goes.
package rekor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Log is a transparency log that records anchor statements.
type Log interface {
	// Add records statement (by its SHA-256), the anchor key's signature
	// over it and the key, and says where; an equivalent entry already
	// there is returned as if just added.
	Add(ctx context.Context, statement, sig, pubPEM []byte) (anchor.Logged, error)
}

// Config tunes the sink.
type Config struct {
	// Interval between statements (default 10 min).
	Interval time.Duration
	// MaxBackoff caps the wait between uploads that fail (default 1 min).
	MaxBackoff time.Duration
	// TransactionalID fences another instance: one sink anchors an
	// installation (default "ogma-sink-rekor").
	TransactionalID string
}

// Deps are the sink's collaborators.
type Deps struct {
	Dial   topic.Dial
	Layout topic.Layout
	Log    Log
	Key    *anchor.Key
	// Ticks, if set, replaces the interval's clock: each value received
	// makes a statement of that time (tests).
	Ticks <-chan time.Time
	// Now is the clock of metrics (default time.Now).
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Ready, if set, is called once the sink has read ogma.events up to
	// where it stood at start.
	Ready func()
	// Persisted, if set, is called after each statement is persisted and
	// before it is uploaded (crash tests kill the process there).
	Persisted func(index uint64)
}

// Sink is the rekor sink. Make one with [New].
type Sink struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics

	prod   *kgo.Client
	prodMu sync.Mutex // one transaction at a time

	mu       sync.Mutex
	heads    map[string]anchor.Leaf // by tenant
	offsets  map[int32]int64        // ogma.events: next offset per partition
	caughtUp bool
	anchored map[string]uint64 // seq covered by the last receipt, by tenant
	last     *anchor.Anchor    // the last statement made
	pending  []anchor.Anchor   // made, not yet in the log, in order
	wake     chan struct{}     // a statement joined pending
}

// New returns a sink; Run starts it.
func New(cfg Config, deps Deps) (*Sink, error) {
	switch {
	case deps.Dial == nil:
		return nil, errors.New("rekor sink: Deps.Dial is required")
	case deps.Log == nil:
		return nil, errors.New("rekor sink: Deps.Log is required")
	case deps.Key == nil:
		return nil, errors.New("rekor sink: Deps.Key is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = "ogma-sink-rekor"
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Ready != nil {
		deps.Ready = sync.OnceFunc(deps.Ready) // ready once, not at each start over
	}
	s := &Sink{cfg: cfg, deps: deps, log: deps.Logger.With("component", "sink_rekor"), wake: make(chan struct{}, 1)}
	s.metrics = newMetrics(deps.Registerer, s)
	return s, nil
}

// Run anchors until ctx ends, and returns ctx.Err(). What stops it
// otherwise — a tenant's chain that breaks, Kafka out of reach — is logged
// and it starts over from ogma.anchors, reading ogma.events again, after a
// backoff: a record a read missed is read again, and a chain that stays
// broken stays loud.
func (s *Sink) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		err := s.run(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.metrics.restarts.Inc()
		s.log.ErrorContext(ctx, "anchoring stopped; starting over from ogma.anchors", "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

func (s *Sink) run(ctx context.Context) error {
	s.mu.Lock()
	s.heads, s.offsets, s.anchored = map[string]anchor.Leaf{}, map[int32]int64{}, map[string]uint64{}
	s.caughtUp, s.last, s.pending = false, nil, nil
	s.mu.Unlock()
	prod, err := s.deps.Dial(topic.ProducerOpt(), kgo.TransactionalID(s.cfg.TransactionalID),
		kgo.TransactionTimeout(time.Minute))
	if err != nil {
		return err
	}
	defer prod.Close()
	s.prod = prod
	if err := s.restore(ctx); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.follow(ctx) })
	g.Go(func() error { return s.tick(ctx) })
	g.Go(func() error { return s.upload(ctx) })
	return g.Wait()
}

// restore reads ogma.anchors: the last statement gives the heads and the
// ogma.events offsets it covers, and statements without a receipt are
// uploaded first.
func (s *Sink) restore(ctx context.Context) error {
	anchors := map[uint64]anchor.Anchor{}
	var receipts []anchor.Receipt
	var maxIndex uint64
	err := topic.ReadToEnd(ctx, s.deps.Dial, topic.Anchors, []int32{0}, func(r *kgo.Record) error {
		d, err := anchor.Decode(r)
		switch {
		case err != nil:
			return err // our own topic: loud
		case d.Anchor != nil:
			anchors[d.Anchor.Index] = *d.Anchor
			maxIndex = max(maxIndex, d.Anchor.Index)
		case d.Receipt != nil:
			receipts = append(receipts, *d.Receipt)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rekor sink: restore from ogma.anchors: %w", err)
	}
	var received uint64
	for _, rc := range receipts {
		if rc.Anchor.Index > received {
			received = rc.Anchor.Index
			clear(s.anchored)
			for _, l := range rc.Anchor.Leaves {
				s.anchored[l.Tenant] = l.Seq
			}
		}
	}
	for i := uint64(1); i <= maxIndex; i++ {
		a, ok := anchors[i]
		if !ok {
			return fmt.Errorf("rekor sink: ogma.anchors has statement %d but not %d", maxIndex, i)
		}
		if i > received {
			s.pending = append(s.pending, a)
		}
	}
	if maxIndex > 0 {
		last := anchors[maxIndex]
		s.last = &last
		for _, l := range last.Leaves {
			s.heads[l.Tenant] = l
		}
		maps.Copy(s.offsets, last.Offsets)
		s.metrics.index.Set(float64(maxIndex))
	}
	s.metrics.pending.Set(float64(len(s.pending)))
	s.log.InfoContext(ctx, "restored", "statements", maxIndex, "receipts", received, "pending", len(s.pending), "tenants", len(s.heads))
	return nil
}

// ChainError is a tenant's chain in ogma.events that does not continue
// from the head the sink holds: a gap, a fork or a record out of order.
type ChainError struct {
	Tenant          string
	Partition       int32
	Offset          int64
	HeadSeq, GotSeq uint64
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("tenant %s: ogma.events %d/%d holds seq %d after head %d (or does not link to it)",
		e.Tenant, e.Partition, e.Offset, e.GotSeq, e.HeadSeq)
}

// follow folds ogma.events into the heads, from the offsets the last
// statement covers.
func (s *Sink) follow(ctx context.Context) error {
	from := make(map[int32]int64, s.deps.Layout.Partitions)
	for p := range s.deps.Layout.Partitions {
		from[p] = s.offsets[p]
	}
	return topic.FollowFrom(ctx, s.deps.Dial, topic.Events, from, func(r *kgo.Record) error {
		e, err := event.DecodeRecord(r.Value)
		if err != nil {
			return fmt.Errorf("rekor sink: ogma.events %d/%d: %w", r.Partition, r.Offset, err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		h, ok := s.heads[e.Event.Tenant]
		prev := anchor.Genesis
		if ok {
			prev = h.Hash
		}
		if e.Event.Seq != h.Seq+1 || e.Event.Prev != prev {
			s.metrics.breaks.Inc()
			return &ChainError{Tenant: e.Event.Tenant, Partition: r.Partition, Offset: r.Offset, HeadSeq: h.Seq, GotSeq: e.Event.Seq}
		}
		s.heads[e.Event.Tenant] = anchor.Leaf{Tenant: e.Event.Tenant, Seq: e.Event.Seq, Hash: e.Hash}
		s.offsets[r.Partition] = r.Offset + 1
		return nil
	}, func() {
		s.mu.Lock()
		s.caughtUp = true
		s.mu.Unlock()
		if s.deps.Ready != nil {
			s.deps.Ready()
		}
	})
}

// tick makes a statement at each interval boundary, once the heads have
// caught up with ogma.events.
func (s *Sink) tick(ctx context.Context) error {
	ticks := s.deps.Ticks
	if ticks == nil {
		ticks = cadence(ctx, s.cfg.Interval)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case t := <-ticks:
			if err := s.state(ctx, t); err != nil {
				return err
			}
		}
	}
}

// cadence sends the time at each multiple of d (UTC), so statements keep
// a fixed cadence across restarts.
func cadence(ctx context.Context, d time.Duration) <-chan time.Time {
	c := make(chan time.Time)
	go func() {
		for {
			now := time.Now()
			next := now.Truncate(d).Add(d)
			t := time.NewTimer(next.Sub(now))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			select {
			case c <- next:
			case <-ctx.Done():
				return
			}
		}
	}()
	return c
}

// state makes, signs and persists the statement of time t.
func (s *Sink) state(ctx context.Context, t time.Time) error {
	s.mu.Lock()
	if !s.caughtUp {
		s.mu.Unlock()
		return nil // a statement behind what ogma.events holds would say less than it could
	}
	leaves := make([]anchor.Leaf, 0, len(s.heads))
	for _, l := range s.heads {
		leaves = append(leaves, l)
	}
	offsets := maps.Clone(s.offsets)
	index, prev := uint64(1), anchor.Genesis
	if s.last != nil {
		index, prev = s.last.Index+1, anchor.Digest([]byte(s.last.Statement))
	}
	s.mu.Unlock()

	anchor.SortLeaves(leaves)
	st := anchor.NewStatement(s.deps.Key.Fingerprint(), index, leaves, prev, t).Canonical()
	sig, err := s.deps.Key.Sign(st)
	if err != nil {
		return fmt.Errorf("rekor sink: sign statement %d: %w", index, err)
	}
	a := anchor.Anchor{Index: index, Statement: string(st), Signature: sig, Leaves: leaves, Offsets: offsets}
	// Persisted before the upload: what the log gets is only ever a
	// statement that ogma.anchors already holds.
	if err := s.write(ctx, a.Record()); err != nil {
		return fmt.Errorf("rekor sink: persist statement %d: %w", index, err)
	}
	if s.deps.Persisted != nil {
		s.deps.Persisted(index)
	}
	s.mu.Lock()
	s.last = &a
	s.pending = append(s.pending, a)
	s.metrics.pending.Set(float64(len(s.pending)))
	s.mu.Unlock()
	s.metrics.index.Set(float64(index))
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// write produces r in a transaction of its own: a second instance that
// took over the transactional id fences this one.
func (s *Sink) write(ctx context.Context, r *kgo.Record) error {
	s.prodMu.Lock()
	defer s.prodMu.Unlock()
	if err := s.prod.BeginTransaction(); err != nil {
		return err
	}
	if err := s.prod.ProduceSync(ctx, r).FirstErr(); err != nil {
		s.prod.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
		return err
	}
	return s.prod.EndTransaction(ctx, kgo.TryCommit)
}

// upload sends the pending statements to the log in order, each retried
// with backoff until the log has it, then persists its receipt.
func (s *Sink) upload(ctx context.Context) error {
	for {
		s.mu.Lock()
		var a *anchor.Anchor
		if len(s.pending) > 0 {
			a = &s.pending[0]
		}
		s.mu.Unlock()
		if a == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.wake:
				continue
			}
		}
		logged, err := s.add(ctx, a)
		if err != nil {
			return err // ctx ended
		}
		rc := anchor.Receipt{Anchor: *a, Logged: logged}
		if err := s.write(ctx, rc.Record()); err != nil {
			return fmt.Errorf("rekor sink: persist receipt %d: %w", a.Index, err)
		}
		s.mu.Lock()
		s.pending = s.pending[1:]
		clear(s.anchored)
		for _, l := range a.Leaves {
			s.anchored[l.Tenant] = l.Seq
		}
		s.metrics.pending.Set(float64(len(s.pending)))
		s.mu.Unlock()
		s.metrics.success.Set(float64(s.deps.Now().Unix()))
		s.log.InfoContext(ctx, "anchored", "index", a.Index, "log_index", logged.LogIndex, "tenants", len(a.Leaves))
	}
}

// add uploads a until the log has it, backing off from a second up to
// MaxBackoff; it fails only when ctx ends.
func (s *Sink) add(ctx context.Context, a *anchor.Anchor) (anchor.Logged, error) {
	backoff := time.Second
	for {
		logged, err := s.deps.Log.Add(ctx, []byte(a.Statement), a.Signature, s.deps.Key.PublicPEM())
		if err == nil {
			return logged, nil
		}
		if ctx.Err() != nil {
			return anchor.Logged{}, ctx.Err()
		}
		s.metrics.failures.Inc()
		s.log.WarnContext(ctx, "the log did not take the statement; retrying", "index", a.Index, "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return anchor.Logged{}, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// unanchored counts the events no receipt covers yet.
func (s *Sink) unanchored() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for t, h := range s.heads {
		n += h.Seq - min(s.anchored[t], h.Seq)
	}
	return float64(n)
}

type metrics struct {
	success, pending, index    prometheus.Gauge
	failures, breaks, restarts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Sink) *metrics {
	m := &metrics{
		success: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ogma_anchor_last_success_timestamp_seconds",
			Help: "When the log last took a statement (Unix seconds; 0 before the first)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ogma_anchor_pending_statements",
			Help: "Statements made and persisted that the log does not have yet."}),
		index: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ogma_anchor_index",
			Help: "Index of the last statement made."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "ogma_anchor_upload_failures_total",
			Help: "Uploads of a statement the log did not take (each retried)."}),
		breaks: prometheus.NewCounter(prometheus.CounterOpts{Name: "ogma_anchor_chain_breaks_total",
			Help: "Events in ogma.events that did not continue their tenant's chain (the sink starts over and reads again)."}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "ogma_anchor_restarts_total",
			Help: "Times the rekor sink started over from ogma.anchors after an error."}),
	}
	if reg != nil {
		reg.MustRegister(m.success, m.pending, m.index, m.failures, m.breaks, m.restarts,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ogma_anchor_unanchored_events",
				Help: "Events of every tenant that no receipt covers yet."}, s.unanchored))
	}
	return m
}

package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Config configures a [Connector]. Zero fields take the documented defaults.
type Config struct {
	// Group is the consumer group on ogma.control that spreads tenants over
	// connector instances. Default "ogma-connect".
	Group string
	// TransactionalIDPrefix names the transactional producer of each owned
	// partition: "<prefix>-p<partition>". Default "ogma-connect".
	TransactionalIDPrefix string
	// BackfillDays is how far before a tenant's first connect a stream's
	// history begins. Default 90.
	BackfillDays int
	// Tick is how often each partition looks for due streams. Default 1 s.
	Tick time.Duration
	// RetryAfter is how long a stream waits after a failed poll. Default 1 min.
	RetryAfter time.Duration
	// Jitter spreads polls: each tenant's stream waits Every plus up to
	// this fraction of it, fixed per tenant and stream, so tenants do not
	// all call at once. Default 0.1; negative means none.
	Jitter float64
	// SessionTimeout is the group session timeout: how long a dead
	// instance keeps its partitions. Default 45 s (kgo's).
	SessionTimeout time.Duration
	// TransactionTimeout is how long the broker keeps a transaction of a
	// dead instance open before aborting it. Default 1 min.
	TransactionTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Group == "" {
		c.Group = "ogma-connect"
	}
	if c.TransactionalIDPrefix == "" {
		c.TransactionalIDPrefix = "ogma-connect"
	}
	if c.BackfillDays == 0 {
		c.BackfillDays = 90
	}
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = time.Minute
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = time.Minute
	}
}

// Deps are a Connector's collaborators.
type Deps struct {
	Dial    topic.Dial
	Layout  topic.Layout
	Keyring *seal.Keyring
	// Vendors maps a vendor name to the streams polled for every tenant
	// with a key of that vendor.
	Vendors map[string][]Scheduled
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for the connector's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Connector polls the vendor streams of the tenants on the ogma.control
// partitions the consumer group assigns to this instance.
type Connector struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics

	ready     chan struct{}
	readyOnce sync.Once

	mu      sync.Mutex
	workers map[int32]*worker
	wg      sync.WaitGroup
	failed  chan error
}

type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a connector; it does nothing until Run.
func New(cfg Config, deps Deps) (*Connector, error) {
	cfg.defaults()
	switch {
	case deps.Dial == nil:
		return nil, errors.New("poll: Deps.Dial is required")
	case deps.Layout.Partitions <= 0:
		return nil, errors.New("poll: Deps.Layout has no partitions")
	case deps.Keyring == nil:
		return nil, errors.New("poll: Deps.Keyring is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Connector{
		cfg: cfg, deps: deps, log: deps.Logger.With("component", "connector"),
		metrics: newMetrics(deps.Registerer),
		ready:   make(chan struct{}), workers: map[int32]*worker{}, failed: make(chan error, 1),
	}, nil
}

// Ready is closed once the instance has joined the group and been assigned
// its partitions.
func (c *Connector) Ready() <-chan struct{} { return c.ready }

// Run joins the group and polls the streams of the assigned partitions until
// ctx ends (returning ctx.Err()) or a partition fails for good.
func (c *Connector) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cl, err := c.deps.Dial(
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.ConsumeTopics(topic.Control),
		// Assignment is all this group is for: workers read their partition
		// of ogma.control from the start themselves, so nothing is committed.
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(c.cfg.SessionTimeout),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			for _, p := range m[topic.Control] {
				c.start(ctx, p)
			}
			c.readyOnce.Do(func() { close(c.ready) })
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { c.stop(m[topic.Control]) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { c.stop(m[topic.Control]) }),
	)
	if err != nil {
		return err
	}
	defer func() {
		c.stopAll()
		cl.Close()
	}()

	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil || fetches.IsClientClosed() {
				return
			}
			for _, fe := range fetches.Errors() {
				c.log.WarnContext(ctx, "control fetch error", "partition", fe.Partition, "err", fe.Err)
			}
		}
	}()
	select {
	case <-ctx.Done():
		cancel()
		<-polled
		return ctx.Err()
	case err := <-c.failed:
		cancel()
		<-polled
		return err
	}
}

func (c *Connector) start(ctx context.Context, p int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.workers[p]; ok {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{cancel: cancel, done: make(chan struct{})}
	c.workers[p] = w
	c.metrics.partitions.Inc()
	c.log.InfoContext(ctx, "partition assigned", "partition", p)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(w.done)
		err := newPartition(c, p).run(wctx)
		if err != nil && wctx.Err() == nil {
			select {
			case c.failed <- fmt.Errorf("partition %d: %w", p, err):
			default:
			}
		}
	}()
}

// stop stops the workers of ps and waits for them, so that a revoked
// partition is no longer polled here before another instance takes it.
func (c *Connector) stop(ps []int32) {
	var stopping []*worker
	c.mu.Lock()
	for _, p := range ps {
		if w, ok := c.workers[p]; ok {
			delete(c.workers, p)
			c.metrics.partitions.Dec()
			w.cancel()
			stopping = append(stopping, w)
			c.log.Info("partition revoked", "partition", p)
		}
	}
	c.mu.Unlock()
	for _, w := range stopping {
		<-w.done
	}
}

func (c *Connector) stopAll() {
	c.mu.Lock()
	var ps []int32
	for p := range c.workers {
		ps = append(ps, p)
	}
	c.mu.Unlock()
	c.stop(ps)
	c.wg.Wait()
}

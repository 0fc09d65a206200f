// Package process is the exactly-once processor: it consumes ogma.raw
// read-committed in a GroupTransactSession and, per batch, produces the
// chained events (ogma.events), open buckets (ogma.provisional) and records
// it cannot use (ogma.deadletter), and commits its offsets, in one
// transaction.
//
// Its transform is pure (see transform): the same state and input give
// byte-identical output, so a batch aborted and read again produces the
// same records. Its state — each tenant's head, the dedupe map, directory
// walks in progress, the last raw offset — lives in a local Pebble store
// that is only a checkpoint: on assignment it is brought up to date from
// ogma.events, the source of truth, and raw records already turned into
// events are skipped. State changes reach the store only after the
// transaction reports committed.
package process

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Config configures a [Processor].
type Config struct {
	// Group is the consumer group on ogma.raw. Default "ogma-process".
	Group string
	// TransactionalID must be unique and stable per instance; two live
	// instances with one id fence each other. Default "ogma-process-0".
	TransactionalID string
	// StateDir is the Pebble store's directory. Required.
	StateDir string
	// BucketWait is how long a batch that ends inside a bucket waits for
	// more records before it gives up on the bucket. Default 5 s.
	BucketWait time.Duration
	// SessionTimeout is the group session timeout: how long a dead
	// instance keeps its partitions. Default 45 s.
	SessionTimeout time.Duration
	// TransactionTimeout is how long the broker keeps a dead instance's
	// transaction open before aborting it; until then the partitions it
	// wrote cannot be read past it. Default 1 min.
	TransactionTimeout time.Duration
	// LagInterval is how often the lag gauges are refreshed. Default 10 s.
	LagInterval time.Duration
	// InstanceID, if set, makes the instance a static group member
	// (KIP-345): a restart with the same id takes its partitions back
	// without a rebalance, and a dead instance's partitions move after
	// SessionTimeout.
	InstanceID string
}

// Deps are a Processor's collaborators.
type Deps struct {
	// Dial opens side clients: restoring state from ogma.events,
	// following the data keys in ogma.keys.
	Dial topic.Dial
	// Session are the client options (seeds, logger) of the transactional
	// session, which kgo builds itself.
	Session []kgo.Opt
	Layout  topic.Layout
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// OnCommit, if set, is called after each committed batch; for tests.
	OnCommit func()
	// BeforeCommit, if set, is called after a batch's records are produced
	// and before its transaction ends; for crash tests.
	BeforeCommit func()
	// OnBucketWait, if set, is called before each poll for the rest of a
	// bucket that a batch ends inside; for tests.
	OnBucketWait func()
	// Now is the processor's clock, of the lag figures and of how long a
	// batch's transaction has been open; nil means time.Now.
	Now func() time.Time
}

// Processor is the exactly-once processor of one instance.
type Processor struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics

	ready     chan struct{}
	readyOnce sync.Once

	mu       sync.Mutex
	revoked  map[int32]bool // partitions to forget before the next batch
	assigned map[int32]bool // partitions to restore before the next batch
	joined   bool           // a first assignment came
	wake     func()         // ends the poll in progress, to restore

	// refused holds, per partition, raw records whose output Kafka refused
	// in an aborted batch, with why; aborts counts aborted batches in a row.
	refused map[int32]map[int64]refusal
	aborts  int
	// keys are the tenants' data keys, followed in ogma.keys; the
	// transform seals every event's data and salt under its tenant's.
	keys *datakey.Keys
}

// New returns a processor; it does nothing until Run.
func New(cfg Config, deps Deps) (*Processor, error) {
	if cfg.Group == "" {
		cfg.Group = "ogma-process"
	}
	if cfg.TransactionalID == "" {
		cfg.TransactionalID = "ogma-process-0"
	}
	if cfg.BucketWait == 0 {
		cfg.BucketWait = 5 * time.Second
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 45 * time.Second
	}
	if cfg.TransactionTimeout == 0 {
		cfg.TransactionTimeout = time.Minute
	}
	if cfg.LagInterval == 0 {
		cfg.LagInterval = 10 * time.Second
	}
	switch {
	case cfg.StateDir == "":
		return nil, errors.New("process: Config.StateDir is required")
	case deps.Dial == nil:
		return nil, errors.New("process: Deps.Dial is required")
	case deps.Layout.Partitions <= 0:
		return nil, errors.New("process: Deps.Layout has no partitions")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Processor{cfg: cfg, deps: deps, log: deps.Logger.With("component", "processor"),
		metrics: newMetrics(deps.Registerer), ready: make(chan struct{}), revoked: map[int32]bool{}, assigned: map[int32]bool{},
		refused: map[int32]map[int64]refusal{}, keys: datakey.New(deps.Dial, deps.Layout)}, nil
}

func (p *Processor) now() time.Time {
	if p.deps.Now != nil {
		return p.deps.Now()
	}
	return time.Now()
}

// Ready is closed once the processor has joined its group and restored
// every partition assigned to it: from then on it can process.
func (p *Processor) Ready() <-chan struct{} { return p.ready }

// partState is what the loop keeps of an assigned partition.
type partState struct {
	skipThrough int64 // raw records up to here are already events
}

// Run consumes until ctx ends (returning ctx.Err()) or a Kafka error that
// no retry can fix. A transaction that outlived TransactionTimeout, which
// the broker aborted, is not such an error: the session it fenced is
// replaced and the batch is read again (state changes wait for a commit).
func (p *Processor) Run(ctx context.Context) error {
	store, err := OpenStore(p.cfg.StateDir, p.log)
	if err != nil {
		return err
	}
	defer store.Close()
	p.keys.OnMake = store.keepPendingKey

	var lagWatch sync.WaitGroup
	lctx, stopLag := context.WithCancel(ctx)
	lagWatch.Go(func() { p.watchLag(lctx, p.cfg.LagInterval) })
	// Erasures take effect as they come; restoring reads the keys whole.
	lagWatch.Go(func() { p.keys.Follow(lctx, nil) })
	defer lagWatch.Wait()
	defer stopLag()

	for {
		err := p.session(ctx, store)
		var late *expiredError
		if ctx.Err() != nil || !errors.As(err, &late) {
			return err
		}
		p.metrics.txns.WithLabelValues("expired").Inc()
		p.log.WarnContext(ctx, "the broker aborted a transaction that outlived its timeout; reading the batch again in a new session",
			"took", late.took.Round(time.Millisecond), "timeout", p.cfg.TransactionTimeout, "err", late.err)
	}
}

// expiredError is a transaction that the broker aborted because it stayed
// open past TransactionTimeout, fencing the session's producer.
type expiredError struct {
	took time.Duration
	err  error
}

func (e *expiredError) Error() string {
	return fmt.Sprintf("process: transaction open for %v, past its timeout: %v", e.took.Round(time.Millisecond), e.err)
}

func (e *expiredError) Unwrap() error { return e.err }

// session runs one transactional session until ctx ends or it fails.
func (p *Processor) session(ctx context.Context, store *Store) error {
	p.mu.Lock()
	clear(p.assigned) // a previous session's: this one is assigned afresh
	clear(p.revoked)
	p.mu.Unlock()
	forget := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, part := range m[topic.Raw] {
			p.revoked[part] = true
			delete(p.assigned, part)
		}
	}
	// Partitions are restored as soon as they are assigned, not when their
	// first record comes: until then the processor is not ready.
	assign := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, part := range m[topic.Raw] {
			p.assigned[part] = true
		}
		p.joined = true
		if p.wake != nil {
			p.wake()
		}
	}
	opts := slices.Clone(p.deps.Session)
	if p.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(p.cfg.InstanceID))
	}
	sess, err := kgo.NewGroupTransactSession(append(opts,
		topic.ProducerOpt(),
		kgo.TransactionalID(p.cfg.TransactionalID),
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(topic.Raw),
		// kgo always fetches group offsets with RequireStable: offsets that a
		// transaction still open committed are not trusted.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.OnPartitionsAssigned(assign),
		kgo.OnPartitionsRevoked(forget),
		kgo.OnPartitionsLost(forget),
	)...)
	if err != nil {
		return fmt.Errorf("process: session: %w", err)
	}
	defer sess.Close()
	// Initializing the producer id now fences a previous incarnation with
	// this transactional id and aborts its open transaction, whose pending
	// offset commit would otherwise hold the group's offsets unstable
	// until the transaction times out.
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, _, err = sess.Client().ProducerID(ictx)
	cancel()
	if err != nil {
		return fmt.Errorf("process: init producer id: %w", err)
	}

	parts := map[int32]*partState{}
	for {
		if err := p.restoreAssigned(ctx, store, parts); err != nil {
			return err
		}
		fetches := p.poll(ctx, sess)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fetches.IsClientClosed() {
			return errors.New("process: client closed")
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.Canceled) { // a poll ended to restore
				p.log.WarnContext(ctx, "fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
			}
		}
		p.forgetRevoked(parts)

		byPart := map[int32][]*kgo.Record{}
		fetches.EachRecord(func(r *kgo.Record) { byPart[r.Partition] = append(byPart[r.Partition], r) })
		if len(byPart) == 0 {
			continue
		}
		if err := p.batch(ctx, sess, store, parts, byPart); err != nil {
			return err
		}
	}
}

// poll polls until records come or a new assignment wants restoring.
func (p *Processor) poll(ctx context.Context, sess *kgo.GroupTransactSession) kgo.Fetches {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.mu.Lock()
	p.wake = cancel
	if len(p.assigned) > 0 {
		cancel()
	}
	p.mu.Unlock()
	fetches := sess.PollFetches(pctx)
	p.mu.Lock()
	p.wake = nil
	p.mu.Unlock()
	return fetches
}

// restoreAssigned restores the partitions assigned since the last call,
// each from where the group's committed offset resumes it, and marks the
// processor ready once it has joined and nothing is left to restore.
func (p *Processor) restoreAssigned(ctx context.Context, store *Store, parts map[int32]*partState) error {
	p.forgetRevoked(parts)
	p.mu.Lock()
	var todo []int32
	for _, part := range slices.Sorted(maps.Keys(p.assigned)) {
		if _, ok := parts[part]; !ok { // else restored when its first records came
			todo = append(todo, part)
		}
	}
	clear(p.assigned)
	joined := p.joined
	p.mu.Unlock()
	if len(todo) > 0 {
		resume, err := p.committed(ctx)
		if err != nil {
			return err
		}
		for _, part := range todo {
			first, ok := resume[part]
			if !ok || first < 0 {
				first = 0 // no commit yet: the session reads from the start
			}
			st, err := p.restore(ctx, store, part, first)
			if err != nil {
				return err
			}
			parts[part] = st
		}
	}
	if joined {
		p.readyOnce.Do(func() { close(p.ready) })
	}
	return nil
}

// forgetRevoked drops the state of partitions revoked since the last call.
func (p *Processor) forgetRevoked(parts map[int32]*partState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for part := range p.revoked {
		delete(parts, part)
	}
	clear(p.revoked)
}

// committed returns the group's committed offsets on ogma.raw.
func (p *Processor) committed(ctx context.Context) (map[int32]int64, error) {
	cl, err := p.deps.Dial()
	if err != nil {
		return nil, fmt.Errorf("process: committed offsets: %w", err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, p.cfg.Group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("process: committed offsets: %w", err)
	}
	out := map[int32]int64{}
	for part, o := range offs[topic.Raw] {
		out[part] = o.At
	}
	return out, nil
}

// batch runs one transaction over the records polled, polling more while a
// partition's records end inside a bucket.
func (p *Processor) batch(ctx context.Context, sess *kgo.GroupTransactSession, store *Store, parts map[int32]*partState, byPart map[int32][]*kgo.Record) error {
	// restore restores the partitions seen for the first time; a poll
	// within the batch may bring a partition assigned meanwhile.
	restore := func() error {
		for part, recs := range byPart {
			if _, ok := parts[part]; !ok {
				st, err := p.restore(ctx, store, part, recs[0].Offset)
				if err != nil {
					return err
				}
				parts[part] = st
			}
		}
		return nil
	}
	if err := restore(); err != nil {
		return err
	}
	// The transaction begins before the transform, which produces its
	// output as it goes: producing overlaps transforming.
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("process: begin: %w", err)
	}
	begun := p.now() // the broker's clock of TransactionTimeout starts after this
	defer p.resumeFetches(sess)
	promise := kgo.AbortingFirstErrPromise(sess.Client())
	var out []*kgo.Record
	// refusedNow collects the raw records whose output Kafka refused as
	// such (too large, invalid): the retry deadletters them.
	var refusedMu sync.Mutex
	refusedNow := map[int32]map[int64]refusal{}
	ship := func(recs []*kgo.Record, from []int64) {
		for i, r := range recs {
			raw, done := from[i], promise.Promise()
			sess.Client().Produce(ctx, r, func(r *kgo.Record, err error) {
				if raw >= 0 && refusesRecord(err) {
					refusedMu.Lock()
					if refusedNow[r.Partition] == nil {
						refusedNow[r.Partition] = map[int64]refusal{}
					}
					refusedNow[r.Partition][raw] = refusal{fmt.Sprintf("Kafka refused its output to %s: %v", r.Topic, err), r.Topic == topic.Deadletter}
					refusedMu.Unlock()
				}
				done(r, err)
			})
		}
		out = append(out, recs...)
	}
	abort := func(err error) error {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, aerr := sess.End(actx, kgo.TryAbort); aerr != nil {
			p.log.WarnContext(ctx, "abort transaction", "err", aerr)
		}
		return err
	}

	// A batch that ends inside a bucket polls for the bucket's other rows,
	// which a committed connector transaction holds. Only a wait of
	// BucketWait that brings no record at all gives up on the bucket (its
	// rows go to the deadletter): the time spent transforming does not count.
	// Each partition's transform takes the records polled meanwhile where
	// it stopped, so no record is transformed twice.
	byT := map[int32]*transform{}
	var ts []*transform
	// run hands each partition its new records and reports whether any
	// partition, polled now or before, still ends inside a bucket.
	run := func(recs map[int32][]*kgo.Record, flush bool) (incomplete bool, err error) {
		for _, part := range slices.Sorted(maps.Keys(recs)) {
			t := byT[part]
			if t == nil {
				t = newTransform(store, part, p.deps.Layout, p.keys)
				t.ship, t.refused = ship, p.refused[part]
				byT[part] = t
				ts = append(ts, t)
			}
			if err := t.run(recs[part], parts[part].skipThrough, flush); err != nil {
				return false, fmt.Errorf("process partition %d: %w", part, err)
			}
		}
		for _, t := range ts {
			incomplete = incomplete || t.incomplete()
		}
		return incomplete, nil
	}
	incomplete, err := run(byPart, false)
	for err == nil && incomplete {
		if p.deps.OnBucketWait != nil {
			p.deps.OnBucketWait()
		}
		wctx, cancel := context.WithTimeout(ctx, p.cfg.BucketWait)
		more := p.pollRest(wctx, sess, ts, begun)
		cancel()
		if ctx.Err() != nil {
			return abort(ctx.Err())
		}
		byPart = map[int32][]*kgo.Record{}
		more.EachRecord(func(r *kgo.Record) { byPart[r.Partition] = append(byPart[r.Partition], r) })
		if err := restore(); err != nil {
			return abort(err)
		}
		if len(byPart) == 0 {
			// Nothing came: every bucket still open was cut short.
			for part := range byT {
				byPart[part] = nil
			}
			_, err = run(byPart, true)
			break
		}
		incomplete, err = run(byPart, false)
	}
	if err != nil {
		return abort(err)
	}
	slices.SortFunc(ts, func(a, b *transform) int { return cmp.Compare(a.p, b.p) })

	produceErr := promise.Err()
	if p.deps.BeforeCommit != nil {
		p.deps.BeforeCommit()
	}
	p.log.DebugContext(ctx, "produced", "partitions", len(ts), "records", len(out), "err", produceErr)
	committed, err := sess.End(ctx, kgo.TransactionEndTry(produceErr == nil))
	if took := p.now().Sub(begun); took >= p.cfg.TransactionTimeout && fenced(err, produceErr) {
		// Not a rival instance (two with one id would fence each other
		// forever if fences were retried): this batch took too long.
		return &expiredError{took: took, err: cmp.Or(err, produceErr)}
	}
	if err != nil {
		return fmt.Errorf("process: end transaction: %w", err)
	}
	if !committed {
		// A rebalance or a failed produce: the session rewound to the
		// committed offsets; the state changes are dropped with the batch,
		// and a raw record whose output Kafka refused is deadlettered when
		// the batch is read again, so that it cannot stall the partition.
		p.metrics.txns.WithLabelValues("aborted").Inc()
		p.aborts++
		p.metrics.aborts.Set(float64(p.aborts))
		for part, offs := range refusedNow {
			if p.refused[part] == nil {
				p.refused[part] = map[int64]refusal{}
			}
			for off, r := range offs {
				if was, ok := p.refused[part][off]; ok {
					r.reason = was.reason // why its output was refused first
				}
				p.refused[part][off] = r
			}
		}
		level := slog.LevelInfo
		if p.aborts >= 3 {
			level = slog.LevelError
		}
		p.log.Log(ctx, level, "transaction aborted", "in_a_row", p.aborts, "refused_outputs", len(refusedNow), "err", produceErr)
		return nil
	}
	for _, t := range ts {
		p.keys.Commit(t.published...)
		for _, tenant := range t.published {
			if err := store.dropPendingKey(tenant); err != nil {
				return err
			}
		}
	}
	p.aborts = 0
	p.metrics.aborts.Set(0)
	p.metrics.txns.WithLabelValues("committed").Inc()
	p.metrics.commits.Committed(time.Now())
	p.log.DebugContext(ctx, "committed", "records", len(out))

	lastEvent, lastDeadletter := map[int32]int64{}, map[int32]int64{}
	for _, r := range out {
		switch r.Topic {
		case topic.Events:
			lastEvent[r.Partition] = max(lastEvent[r.Partition], r.Offset)
		case topic.Deadletter:
			lastDeadletter[r.Partition] = max(lastDeadletter[r.Partition], r.Offset)
		}
	}
	for _, t := range ts {
		old := Checkpoint{Events: -1, Deadletter: -1}
		if _, err := t.ov.getJSON(checkpointKey(t.p), &old); err != nil {
			return err
		}
		ck := Checkpoint{Raw: max(t.lastRaw, parts[t.p].skipThrough), Events: old.Events, Deadletter: old.Deadletter}
		if e, ok := lastEvent[t.p]; ok {
			ck.Events = e
		}
		if d, ok := lastDeadletter[t.p]; ok {
			ck.Deadletter = d
		}
		t.ov.setJSON(checkpointKey(t.p), ck)
		if err := t.ov.commit(); err != nil {
			return err
		}
		parts[t.p].skipThrough = ck.Raw
		delete(p.refused, t.p) // each was deadlettered, or read again only if it is to be
		for outcome, n := range t.counts {
			p.metrics.records.WithLabelValues(outcome).Add(float64(n))
		}
	}
	p.metrics.stateBytes.Set(float64(store.Size()))
	if p.deps.OnCommit != nil {
		p.deps.OnCommit()
	}
	return nil
}

// fenced reports whether any of errs says the producer's epoch is stale:
// another instance took its transactional id, or the broker aborted its
// transaction for outliving the timeout.
func fenced(errs ...error) bool {
	for _, err := range errs {
		if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
			return true
		}
	}
	return false
}

// pollRest polls for the rest of the buckets a batch ends inside. A batch
// normally takes what comes meanwhile too, but a connector that keeps
// producing would keep ending polls inside new buckets and the transaction
// open until the broker aborts it: past a quarter of TransactionTimeout it
// polls only the first partition still inside a bucket, and no more
// records than the bucket misses, so that it ends when its buckets do.
func (p *Processor) pollRest(ctx context.Context, sess *kgo.GroupTransactSession, ts []*transform, begun time.Time) kgo.Fetches {
	if p.now().Sub(begun) < p.cfg.TransactionTimeout/4 {
		return sess.PollFetches(ctx)
	}
	var open *transform
	for _, t := range ts {
		if t.incomplete() && (open == nil || t.p < open.p) {
			open = t
		}
	}
	var others []int32
	for part := range int32(p.deps.Layout.Partitions) {
		if part != open.p {
			others = append(others, part)
		}
	}
	sess.Client().ResumeFetchPartitions(map[string][]int32{topic.Raw: {open.p}})
	sess.Client().PauseFetchPartitions(map[string][]int32{topic.Raw: others})
	return sess.PollRecords(ctx, open.missing())
}

// resumeFetches resumes the partitions that pollRest paused.
func (p *Processor) resumeFetches(sess *kgo.GroupTransactSession) {
	if paused := sess.Client().PauseFetchPartitions(nil); len(paused) > 0 {
		sess.Client().ResumeFetchPartitions(paused)
	}
}

// restore brings the store's state of partition part up to date with
// ogma.events and returns where raw processing resumes. firstRaw is the
// offset of the first raw record this session fetched for the partition.
// A break in a tenant's chain (a seq gap or a prev that does not link) is
// read again once, then refused: state built over a hole would fork.
func (p *Processor) restore(ctx context.Context, store *Store, part int32, firstRaw int64) (*partState, error) {
	st, err := p.restoreOnce(ctx, store, part, firstRaw)
	var gap *GapError
	if errors.As(err, &gap) {
		p.metrics.gaps.Inc()
		p.log.WarnContext(ctx, "chain gap in ogma.events, reading again", "partition", part, "tenant", gap.Tenant, "err", err)
		st, err = p.restoreOnce(ctx, store, part, firstRaw)
		if errors.As(err, &gap) {
			p.metrics.gaps.Inc()
		}
	}
	return st, err
}

// GapError reports that ogma.events breaks a tenant's chain: the event at
// Partition/Offset does not follow the head before it.
type GapError struct {
	Tenant    string
	Partition int32
	Offset    int64
	// Head is the head before the event; Seq and Prev are the event's.
	Head Head
	Seq  uint64
	Prev string
}

func (e *GapError) Error() string {
	if e.Seq != e.Head.Seq+1 {
		return fmt.Sprintf("chain of %s breaks at ogma.events %d/%d: seq %d follows head %d", e.Tenant, e.Partition, e.Offset, e.Seq, e.Head.Seq)
	}
	return fmt.Sprintf("chain of %s breaks at ogma.events %d/%d: seq %d's prev %s is not the head's hash %s", e.Tenant, e.Partition, e.Offset, e.Seq, e.Prev, e.Head.Hash)
}

func (p *Processor) restoreOnce(ctx context.Context, store *Store, part int32, firstRaw int64) (*partState, error) {
	start := time.Now()
	ov := newOverlay(store)
	ck := Checkpoint{Raw: -1, Events: -1, Deadletter: -1}
	if _, err := ov.getJSON(checkpointKey(part), &ck); err != nil {
		return nil, err
	}
	applied, repeats := 0, 0
	heads := map[string]Head{}
	// Every key of the partition's events is in ogma.keys with them; an
	// erased tenant's events restore its chain, not what it held.
	if err := p.restoreKeys(ctx, store); err != nil {
		return nil, fmt.Errorf("restore partition %d: %w", part, err)
	}
	err := topic.ReadFrom(ctx, p.deps.Dial, topic.Events, map[int32]int64{part: ck.Events + 1}, func(r *kgo.Record) error {
		rec, err := event.DecodeRecord(r.Value)
		if err != nil {
			return fmt.Errorf("ogma.events %d/%d: %w", r.Partition, r.Offset, err)
		}
		e := rec.Event
		if event.Hash([]byte(rec.Canonical)) != rec.Hash {
			return fmt.Errorf("ogma.events %d/%d: hash does not match its canonical bytes", r.Partition, r.Offset)
		}
		head, ok := heads[e.Tenant]
		if !ok {
			head = Head{Hash: event.Genesis}
			if _, err := ov.getJSON(headKey(part, e.Tenant), &head); err != nil {
				return err
			}
		}
		ck.Events = r.Offset
		switch {
		case e.Seq <= head.Seq:
			// A copy of an event already applied: a redelivery the reader
			// recognises, which changes nothing.
			repeats++
			return nil
		case e.Seq != head.Seq+1 || e.Prev != head.Hash:
			return &GapError{Tenant: e.Tenant, Partition: r.Partition, Offset: r.Offset, Head: head, Seq: e.Seq, Prev: e.Prev}
		}
		head = Head{Seq: e.Seq, Hash: rec.Hash}
		heads[e.Tenant] = head
		ov.setJSON(headKey(part, e.Tenant), head)
		ck.Raw = max(ck.Raw, rec.Source.Offset)
		applied++
		erased, err := p.keys.Open(ctx, rec)
		if err != nil {
			return fmt.Errorf("ogma.events %d/%d: %w", r.Partition, r.Offset, err)
		}
		if erased {
			return nil
		}
		digest := event.ContentDigest(rec.Data)
		if e.Kind == event.Identity {
			if digest, err = normalize.DirectoryDigest(rec.Data); err != nil {
				return fmt.Errorf("ogma.events %d/%d: %w", r.Partition, r.Offset, err)
			}
		}
		ov.setEntry(dedupeKey(part, e.Tenant, e.Vendor, e.Stream, e.Key), Entry{Digest: digest, Rev: e.Rev,
			DataDigest: e.DataDigest, Absent: string(rec.Data) == "null"})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore partition %d: %w", part, err)
	}
	// Raw records whose only output was a deadletter are done too: after a
	// crash lost the transaction's offsets (kfake keeps staged offsets in
	// memory only), they must not be deadlettered twice.
	err = topic.ReadFrom(ctx, p.deps.Dial, topic.Deadletter, map[int32]int64{part: ck.Deadletter + 1}, func(r *kgo.Record) error {
		ck.Deadletter = r.Offset
		var d envelope.Deadletter
		if err := json.Unmarshal(r.Value, &d); err != nil {
			return fmt.Errorf("ogma.deadletter %d/%d: %w", r.Partition, r.Offset, err)
		}
		if d.Source.Partition == part {
			ck.Raw = max(ck.Raw, d.Source.Offset)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore partition %d: %w", part, err)
	}
	// Directory walks in progress are trusted only if the store saw every
	// raw record before this session's first.
	if firstRaw != ck.Raw+1 {
		ov.dropPrefix("s/" + pfx(part))
		ov.dropPrefix("n/" + pfx(part))
	}
	ov.setJSON(checkpointKey(part), ck)
	if err := ov.commit(); err != nil {
		return nil, err
	}
	p.metrics.restore.Observe(time.Since(start).Seconds())
	p.log.InfoContext(ctx, "partition restored", "partition", part, "events_applied", applied, "events_repeated", repeats,
		"raw_offset", ck.Raw, "duration", time.Since(start))
	return &partState{skipThrough: ck.Raw}, nil
}

// restoreKeys reads the data keys committed, then takes back the keys this
// instance made for a batch that did not commit, so that the batch read
// again is sealed as it was; a kept key that committed meanwhile is dropped.
func (p *Processor) restoreKeys(ctx context.Context, store *Store) error {
	if err := p.keys.Reload(ctx); err != nil {
		return err
	}
	kept, err := store.pendingKeys()
	if err != nil {
		return err
	}
	for _, k := range kept {
		pended, err := p.keys.Pend(k)
		if err != nil {
			return err
		}
		if !pended {
			if err := store.dropPendingKey(k.Tenant); err != nil {
				return err
			}
		}
	}
	return nil
}

// refusesRecord reports whether err is Kafka refusing one record as such,
// which trying again can never change.
func refusesRecord(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.CorruptMessage)
}

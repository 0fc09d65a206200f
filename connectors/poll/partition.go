package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// partition polls the tenants of one ogma.control partition. Its loop runs
// on one goroutine; only the control state is shared with the goroutine
// that follows ogma.control.
type partition struct {
	c   *Connector
	p   int32
	log *slog.Logger

	mu    sync.Mutex
	state control.State

	prod     *kgo.Client
	cursors  map[string]stream.Cursor
	observed map[control.VendorKey]control.Observed
	due      map[string]time.Time // cursor key → next poll
	// rejected holds the key generation the vendor rejected, per
	// integration, so that not one more call is made with it.
	rejected map[control.VendorKey]int
	// gens is the key generation last polled per integration: a new key
	// makes every stream of it due at once.
	gens map[control.VendorKey]int
}

func newPartition(c *Connector, p int32) *partition {
	return &partition{c: c, p: p, log: c.log.With("partition", p), state: control.State{Keys: c.deps.Keyring},
		due: map[string]time.Time{}, rejected: map[control.VendorKey]int{}, gens: map[control.VendorKey]int{}}
}

// run follows the partition's control records and, once it has caught up
// with them, polls due streams every tick until ctx ends.
func (w *partition) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	caughtUp := make(chan struct{})
	g.Go(func() error {
		return topic.Follow(ctx, w.c.deps.Dial, topic.Control, []int32{w.p}, func(r *kgo.Record) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			if err := w.state.Apply(r); err != nil {
				w.log.ErrorContext(ctx, "skipping bad control record", "offset", r.Offset, "err", err)
			}
			return nil
		}, func() { close(caughtUp) })
	})
	g.Go(func() error {
		select {
		case <-caughtUp:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := w.open(ctx); err != nil {
			return err
		}
		defer func() { w.prod.Close() }()
		tick := time.NewTicker(w.c.cfg.Tick)
		defer tick.Stop()
		for {
			if err := w.pollDue(ctx); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	})
	return g.Wait()
}

// open starts the partition's transactional producer — which fences a
// previous owner's producer and aborts its open transaction — and then
// reads the committed cursors.
func (w *partition) open(ctx context.Context) error {
	prod, err := w.c.deps.Dial(
		topic.ProducerOpt(),
		kgo.TransactionalID(w.c.cfg.TransactionalIDPrefix+"-p"+strconv.Itoa(int(w.p))),
		kgo.TransactionTimeout(w.c.cfg.TransactionTimeout),
	)
	if err != nil {
		return err
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, _, err := prod.ProducerID(ictx); err != nil {
		prod.Close()
		return fmt.Errorf("init transactional producer: %w", err)
	}
	cursors := map[string]stream.Cursor{}
	err = topic.ReadToEnd(ctx, w.c.deps.Dial, topic.Cursors, []int32{w.p}, func(r *kgo.Record) error {
		var c stream.Cursor
		if r.Value == nil {
			delete(cursors, string(r.Key))
			return nil
		}
		if err := json.Unmarshal(r.Value, &c); err != nil {
			return fmt.Errorf("cursor %q at offset %d: %w", r.Key, r.Offset, err)
		}
		cursors[string(r.Key)] = c
		return nil
	})
	if err != nil {
		prod.Close()
		return fmt.Errorf("read cursors: %w", err)
	}
	w.prod, w.cursors, w.observed = prod, cursors, map[control.VendorKey]control.Observed{}
	return nil
}

// reopen replaces the producer after a failed transaction: the new one
// aborts whatever the old one left open, and the cursors are read again
// from what was really committed.
func (w *partition) reopen(ctx context.Context) error {
	w.prod.Close()
	return w.open(ctx)
}

type job struct {
	integ  control.Integration
	stream Scheduled
}

// pollDue polls every stream that is due. Vendor failures are logged and
// retried later; only a Kafka failure that reopening cannot fix is returned.
func (w *partition) pollDue(ctx context.Context) error {
	now := w.c.deps.Now()
	var jobs []job
	w.mu.Lock()
	for k, integ := range w.state.Integrations {
		if _, ok := w.state.Tenants[k.Tenant]; !ok || w.state.KeyInvalid(k) || w.rejected[k] == integ.Generation {
			continue
		}
		for _, s := range w.c.deps.Vendors[k.Vendor] {
			jobs = append(jobs, job{integ: integ, stream: s})
			if w.gens[k] != integ.Generation {
				delete(w.due, stream.ID{Tenant: k.Tenant, Vendor: k.Vendor, Stream: s.Stream.Name()}.Key())
			}
		}
		w.gens[k] = integ.Generation
		// What the API observed when it connected a newer key is the base
		// the pages' observations add to.
		if o, ok := w.observed[k]; !ok || w.state.Observed[k].Generation > o.Generation {
			w.observed[k] = w.state.Observed[k]
		}
	}
	w.mu.Unlock()
	// Map order must not decide who goes first.
	slices.SortFunc(jobs, func(a, b job) int {
		return strings.Compare(stream.ID{Tenant: a.integ.Tenant, Vendor: a.integ.Vendor, Stream: a.stream.Stream.Name()}.Key(),
			stream.ID{Tenant: b.integ.Tenant, Vendor: b.integ.Vendor, Stream: b.stream.Stream.Name()}.Key())
	})
	for _, j := range jobs {
		vk := control.VendorKey{Tenant: j.integ.Tenant, Vendor: j.integ.Vendor}
		key := stream.ID{Tenant: j.integ.Tenant, Vendor: j.integ.Vendor, Stream: j.stream.Stream.Name()}.Key()
		if w.rejected[vk] == j.integ.Generation || now.Before(w.due[key]) {
			continue
		}
		err := w.pollOne(ctx, j)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return err
		}
		status := control.StreamStatus{Tenant: j.integ.Tenant, Vendor: j.integ.Vendor, Stream: j.stream.Stream.Name(), LastPoll: now}
		var sc scoped
		var th throttled
		switch {
		case errors.Is(err, ErrKeyInvalid):
			// No retry: the key will not heal. The stream stops until a new
			// key is connected; the cursors stay where they are.
			w.rejected[vk] = j.integ.Generation
			w.log.WarnContext(ctx, "key rejected by the vendor", "tenant", j.integ.Tenant, "vendor", j.integ.Vendor, "stream", status.Stream)
			if err := w.invalidate(ctx, j.integ, status); err != nil {
				return err
			}
			continue
		case errors.As(err, &th) && th.Backoff() > 0:
			wait := min(th.Backoff(), maxBackoff)
			w.log.WarnContext(ctx, "vendor rate limit: backing the tenant off", "tenant", j.integ.Tenant,
				"vendor", j.integ.Vendor, "duration", wait)
			for _, s := range w.c.deps.Vendors[j.integ.Vendor] {
				k := stream.ID{Tenant: j.integ.Tenant, Vendor: j.integ.Vendor, Stream: s.Stream.Name()}.Key()
				w.due[k] = maxTime(w.due[k], now.Add(wait))
			}
			status.Error = "rate limited by the vendor; backing off " + wait.String()
		case errors.As(err, &sc) && len(sc.Scopes()) > 0:
			status.Skipped = "the key lacks " + strings.Join(sc.Scopes(), ", ")
			w.due[key] = now.Add(w.c.every(key, j.stream.Every))
		case err != nil:
			w.log.WarnContext(ctx, "poll failed", "tenant", j.integ.Tenant, "vendor", j.integ.Vendor,
				"stream", status.Stream, "err", err)
			status.Error = err.Error()
			w.due[key] = now.Add(w.c.cfg.RetryAfter)
		default:
			w.due[key] = now.Add(w.c.every(key, j.stream.Every))
		}
		if err := w.send(ctx, control.StreamStatusRecord(w.c.deps.Layout, status)); err != nil {
			var fatal *fatalError
			if errors.As(err, &fatal) {
				return err
			}
			w.log.WarnContext(ctx, "stream status not recorded", "tenant", j.integ.Tenant, "stream", status.Stream, "err", err)
		}
	}
	return nil
}

// every returns a stream's cadence with its jitter: up to Jitter of it,
// fixed by the stream's key, so a tenant keeps a steady rhythm.
func (c *Connector) every(key string, d time.Duration) time.Duration {
	if c.cfg.Jitter <= 0 {
		return d
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return d + time.Duration(float64(d)*c.cfg.Jitter*float64(h.Sum32()%1000)/1000)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// invalidate records that the vendor rejected the key of integ's
// generation: an observation of that generation, never the integration
// itself, which the API alone writes.
func (w *partition) invalidate(ctx context.Context, integ control.Integration, status control.StreamStatus) error {
	l := w.c.deps.Layout
	vk := control.VendorKey{Tenant: integ.Tenant, Vendor: integ.Vendor}
	obs := w.observed[vk]
	if obs.Generation != integ.Generation {
		obs = control.Observed{} // observations of another key do not carry over
	}
	obs.Tenant, obs.Vendor, obs.Generation, obs.Admin, obs.KeyInvalid = integ.Tenant, integ.Vendor, integ.Generation, false, true
	status.Error = "the vendor rejected the key (revoked, rotated or deleted): connect a new key"
	err := w.send(ctx, control.ObservedRecord(l, obs), control.StreamStatusRecord(l, status))
	var fatal *fatalError
	if errors.As(err, &fatal) {
		return err
	}
	if err != nil {
		// Not recorded: the next key generation, or a restart, polls again,
		// is rejected again, and records it then.
		w.log.WarnContext(ctx, "key_invalid not recorded", "tenant", integ.Tenant, "vendor", integ.Vendor, "err", err)
		return nil
	}
	w.observed[vk] = obs
	return nil
}

// fatalError is a failed transaction after which the producer could not be
// reopened: the partition cannot go on.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func (w *partition) pollOne(ctx context.Context, j job) error {
	name := j.stream.Stream.Name()
	key, err := w.c.deps.Keyring.Open(j.integ.Sealed, j.integ.Tenant, j.integ.Vendor, j.integ.Generation)
	if err != nil {
		return fmt.Errorf("open sealed key of generation %d: %w", j.integ.Generation, err)
	}
	cur, ok := w.cursors[stream.ID{Tenant: j.integ.Tenant, Vendor: j.integ.Vendor, Stream: name}.Key()]
	if !ok {
		connected := j.integ.ConnectedAt
		if connected.IsZero() {
			connected = j.integ.SealedAt
		}
		cur = stream.Cursor{Tenant: j.integ.Tenant, Vendor: j.integ.Vendor, Stream: name,
			Origin: connected.UTC().Truncate(24*time.Hour).AddDate(0, 0, -w.c.cfg.BackfillDays)}
	}
	start := time.Now()
	err = j.stream.Stream.Poll(ctx, Request{Tenant: j.integ.Tenant, Key: key, Cursor: cur, Now: w.c.deps.Now},
		func(pg Page) error { return w.commit(ctx, j.integ, name, pg) })
	w.c.metrics.pollDuration.WithLabelValues(j.integ.Vendor, name).Observe(time.Since(start).Seconds())
	result := "ok"
	if err != nil {
		result = "error"
	}
	w.c.metrics.polls.WithLabelValues(j.integ.Vendor, name, result).Inc()
	return err
}

// send produces recs in one transaction. After a failure it reopens the
// producer — which aborts what the failed one left open and reads the
// committed cursors again — and returns the failure; a *fatalError when
// even reopening failed.
func (w *partition) send(ctx context.Context, recs ...*kgo.Record) error {
	err := w.transact(ctx, recs)
	if err == nil {
		w.c.metrics.txns.WithLabelValues("committed").Inc()
		w.c.metrics.commits.Committed(time.Now())
		return nil
	}
	w.c.metrics.txns.WithLabelValues("aborted").Inc()
	if rerr := w.reopen(ctx); rerr != nil {
		return &fatalError{fmt.Errorf("kafka: %w; reopening the producer: %w", err, rerr)}
	}
	return fmt.Errorf("kafka: %w", err)
}

func (w *partition) transact(ctx context.Context, recs []*kgo.Record) error {
	if err := w.prod.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	promise := kgo.AbortingFirstErrPromise(w.prod)
	for _, r := range recs {
		w.prod.Produce(ctx, r, promise.Promise())
	}
	produceErr := promise.Err()
	commitErr := w.prod.EndTransaction(ctx, kgo.TransactionEndTry(produceErr == nil))
	return errors.Join(produceErr, commitErr)
}

// commit writes one page — its raw records, the stream's cursor, and the
// observed capabilities when they changed — in one transaction, and only
// then takes the cursor as current. A page that changes nothing is skipped.
func (w *partition) commit(ctx context.Context, integ control.Integration, name string, pg Page) error {
	l := w.c.deps.Layout
	pg.Cursor.Tenant, pg.Cursor.Vendor, pg.Cursor.Stream = integ.Tenant, integ.Vendor, name
	ckey := pg.Cursor.Key()
	pg.Cursor.Rows = w.cursors[ckey].Rows + int64(len(pg.Records))
	vk := control.VendorKey{Tenant: integ.Tenant, Vendor: integ.Vendor}
	obs := pg.Observed
	obs.Tenant, obs.Vendor, obs.Generation = integ.Tenant, integ.Vendor, integ.Generation
	merged := w.observed[vk].Merge(obs)
	old, had := w.cursors[ckey]
	if len(pg.Records) == 0 && had && reflect.DeepEqual(old, pg.Cursor) && merged == w.observed[vk] {
		return nil
	}

	recs := make([]*kgo.Record, 0, len(pg.Records)+2)
	for _, r := range pg.Records {
		recs = append(recs, l.Record(topic.Raw, integ.Tenant, []byte(r.Key()), r.Marshal()))
	}
	recs = append(recs, l.Record(topic.Cursors, integ.Tenant, []byte(ckey), marshalCursor(pg.Cursor)))
	if merged != w.observed[vk] {
		recs = append(recs, control.ObservedRecord(l, merged))
	}

	if err := w.send(ctx, recs...); err != nil {
		return fmt.Errorf("write %s page of %d records: %w", name, len(pg.Records), err)
	}
	w.c.metrics.records.WithLabelValues(integ.Vendor, name).Add(float64(len(pg.Records)))
	w.cursors[ckey] = pg.Cursor
	w.observed[vk] = merged
	w.log.DebugContext(ctx, "page committed", "tenant", integ.Tenant, "stream", name, "records", len(pg.Records))
	return nil
}

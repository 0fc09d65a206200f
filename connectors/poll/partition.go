package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	cursors  map[string]Cursor
	observed map[control.VendorKey]control.Observed
	due      map[string]time.Time // cursor key → next poll
}

func newPartition(c *Connector, p int32) *partition {
	return &partition{c: c, p: p, log: c.log.With("partition", p), due: map[string]time.Time{}}
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
	cursors := map[string]Cursor{}
	err = topic.ReadToEnd(ctx, w.c.deps.Dial, topic.Cursors, []int32{w.p}, func(r *kgo.Record) error {
		var c Cursor
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
		if _, ok := w.state.Tenants[k.Tenant]; !ok || integ.Status == control.StatusKeyInvalid {
			continue
		}
		for _, s := range w.c.deps.Vendors[k.Vendor] {
			jobs = append(jobs, job{integ: integ, stream: s})
		}
		if _, ok := w.observed[k]; !ok {
			w.observed[k] = w.state.Observed[k]
		}
	}
	w.mu.Unlock()
	// Map order must not decide who goes first.
	slices.SortFunc(jobs, func(a, b job) int {
		return strings.Compare(a.integ.Tenant+"/"+a.integ.Vendor+"/"+a.stream.Stream.Name(), b.integ.Tenant+"/"+b.integ.Vendor+"/"+b.stream.Stream.Name())
	})
	for _, j := range jobs {
		key := Cursor{Tenant: j.integ.Tenant, Vendor: j.integ.Vendor, Stream: j.stream.Stream.Name()}.Key()
		if now.Before(w.due[key]) {
			continue
		}
		err := w.pollOne(ctx, j)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var kerr *kafkaError
		if errors.As(err, &kerr) {
			if rerr := w.reopen(ctx); rerr != nil {
				return fmt.Errorf("after %w: %w", err, rerr)
			}
		}
		if err != nil {
			w.log.WarnContext(ctx, "poll failed", "tenant", j.integ.Tenant, "vendor", j.integ.Vendor,
				"stream", j.stream.Stream.Name(), "err", err)
			w.due[key] = now.Add(w.c.cfg.RetryAfter)
			continue
		}
		w.due[key] = now.Add(j.stream.Every)
	}
	return nil
}

// kafkaError marks a failed transaction, after which the producer is reopened.
type kafkaError struct{ err error }

func (e *kafkaError) Error() string { return "kafka: " + e.err.Error() }
func (e *kafkaError) Unwrap() error { return e.err }

func (w *partition) pollOne(ctx context.Context, j job) error {
	name := j.stream.Stream.Name()
	key, err := w.c.deps.Keyring.Open(j.integ.Sealed, j.integ.Tenant, j.integ.Vendor, j.integ.Generation)
	if err != nil {
		return fmt.Errorf("open sealed key of generation %d: %w", j.integ.Generation, err)
	}
	cur, ok := w.cursors[Cursor{Tenant: j.integ.Tenant, Vendor: j.integ.Vendor, Stream: name}.Key()]
	if !ok {
		connected := j.integ.ConnectedAt
		if connected.IsZero() {
			connected = j.integ.SealedAt
		}
		cur = Cursor{Tenant: j.integ.Tenant, Vendor: j.integ.Vendor, Stream: name,
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

// commit writes one page — its raw records, the stream's cursor, and the
// observed capabilities when they changed — in one transaction, and only
// then takes the cursor as current. A page that changes nothing is skipped.
func (w *partition) commit(ctx context.Context, integ control.Integration, stream string, pg Page) error {
	l := w.c.deps.Layout
	pg.Cursor.Tenant, pg.Cursor.Vendor, pg.Cursor.Stream = integ.Tenant, integ.Vendor, stream
	ckey := pg.Cursor.Key()
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
	recs = append(recs, l.Record(topic.Cursors, integ.Tenant, []byte(ckey), pg.Cursor.marshal()))
	if merged != w.observed[vk] {
		recs = append(recs, control.ObservedRecord(l, merged))
	}

	if err := w.prod.BeginTransaction(); err != nil {
		return &kafkaError{fmt.Errorf("begin transaction: %w", err)}
	}
	promise := kgo.AbortingFirstErrPromise(w.prod)
	for _, r := range recs {
		w.prod.Produce(ctx, r, promise.Promise())
	}
	produceErr := promise.Err()
	commitErr := w.prod.EndTransaction(ctx, kgo.TransactionEndTry(produceErr == nil))
	if err := errors.Join(produceErr, commitErr); err != nil {
		w.c.metrics.txns.WithLabelValues("aborted").Inc()
		return &kafkaError{fmt.Errorf("write %s page of %d records: %w", stream, len(pg.Records), err)}
	}
	w.c.metrics.txns.WithLabelValues("committed").Inc()
	w.c.metrics.records.WithLabelValues(integ.Vendor, stream).Add(float64(len(pg.Records)))
	w.cursors[ckey] = pg.Cursor
	w.observed[vk] = merged
	w.log.DebugContext(ctx, "page committed", "tenant", integ.Tenant, "stream", stream, "records", len(pg.Records))
	return nil
}

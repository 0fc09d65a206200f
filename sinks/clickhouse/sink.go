package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/ogma-dev/ogma/internal/commitclock"
	"github.com/ogma-dev/ogma/internal/jsonscan"
	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/price"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// SinkConfig configures a [Sink].
type SinkConfig struct {
	// Group is the consumer group on ogma.events and ogma.provisional.
	// Default "ogma-sink-clickhouse".
	Group string
	// BatchRows flushes a batch once it holds this many rows. Default 10000.
	BatchRows int
	// FlushEvery flushes a non-empty batch at least this often. Default 1 s.
	FlushEvery time.Duration
}

// SinkDeps are a Sink's collaborators.
type SinkDeps struct {
	Dial topic.Dial
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer; nil registers nothing.
	Registerer prometheus.Registerer
	// OnRefuse, if set, is called with every refused tenant and why, each
	// time the sink refuses one more.
	OnRefuse func(refused map[string]string)
	// Prices estimates each usage row at list price; nil means the table
	// shipped with this build (price.Default).
	Prices *price.Table
}

// Sink writes the ledger and its projections from Kafka: every event into
// `events` and every usage fact into `usage`, every open bucket into
// `usage_provisional`. It is at-least-once into tables that collapse
// redeliveries, so the result is exactly once. It refuses — skips, loudly
// — a tenant whose ledger in ClickHouse disagrees with Kafka's (a seq it
// already holds with another hash): after a lost broker state, history must
// not be overwritten. It trusts no broker with continuity either: a batch
// whose events do not continue a tenant's ledger (a seq gap, a prev that
// does not link) is read again, and a gap that persists stops that tenant
// at its last linked event.
type Sink struct {
	cfg     SinkConfig
	store   *Store
	dial    topic.Dial
	log     *slog.Logger
	refused map[string]bool
	// refusals holds why each tenant is refused, either way.
	refusals map[string]string
	onRefuse func(map[string]string)
	prices   *price.Table
	// heads are the tenants' last events in the ledger, as this sink wrote
	// or read them; gaps counts each tenant's chain breaks in a row, and
	// broken holds the tenants refused for one.
	heads   map[string]link
	gaps    map[string]int
	broken  map[string]bool
	metrics *sinkMetrics
	// keys open each event's data and salt; an erased tenant's events are
	// written without them, as erasure leaves the ledger.
	keys *datakey.Keys

	ready chan struct{}
}

// NewSink returns a sink writing to store.
func NewSink(cfg SinkConfig, store *Store, deps SinkDeps) (*Sink, error) {
	if cfg.Group == "" {
		cfg.Group = "ogma-sink-clickhouse"
	}
	if cfg.BatchRows == 0 {
		cfg.BatchRows = 10000
	}
	if cfg.FlushEvery == 0 {
		cfg.FlushEvery = time.Second
	}
	if deps.Dial == nil || store == nil {
		return nil, errors.New("clickhouse sink: a store and SinkDeps.Dial are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Prices == nil {
		deps.Prices = price.Default()
	}
	return &Sink{cfg: cfg, store: store, dial: deps.Dial, log: deps.Logger.With("component", "sink_clickhouse"), prices: deps.Prices,
		refused: map[string]bool{}, heads: map[string]link{}, gaps: map[string]int{}, broken: map[string]bool{},
		refusals: map[string]string{}, onRefuse: deps.OnRefuse, metrics: newSinkMetrics(deps.Registerer), ready: make(chan struct{}),
		keys: datakey.New(deps.Dial, topic.Layout{})}, nil
}

// Ready is closed once the sink has joined its group and resumed from its
// committed offsets: its first poll after the assignment has returned.
func (s *Sink) Ready() <-chan struct{} { return s.ready }

// Run consumes until ctx ends, returning ctx.Err().
func (s *Sink) Run(ctx context.Context) error {
	var assigned atomic.Bool
	readyOnce := sync.OnceFunc(func() { close(s.ready) })
	cl, err := s.dial(
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(topic.Events, topic.Provisional, topic.Anchors),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Offsets are committed only after the rows are in ClickHouse.
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			assigned.Store(true)
		}),
	)
	if err != nil {
		return err
	}
	defer func() {
		// Leaving the group waits for a rebalance that a poll blocked.
		cl.AllowRebalance()
		cl.Close()
	}()
	// Erasures take effect as they come: an erased tenant's events are
	// written without data from the next batch on.
	var follow sync.WaitGroup
	fctx, stopFollow := context.WithCancel(ctx)
	follow.Go(func() { s.keys.Follow(fctx, nil) })
	defer follow.Wait()
	defer stopFollow()
	var pending []*kgo.Record
	var since time.Time
	// burst: a batch was full since the last poll that came back empty;
	// the sink is reading a backlog, and its tail need not wait.
	burst := false
	// A backlog's small inserts start at least tailGap apart: at most
	// four a second at the default FlushEvery.
	tailGap := s.cfg.FlushEvery / 4
	var flushed time.Time // when the last insert started
	for {
		wait := s.cfg.FlushEvery
		if burst && len(pending) > 0 {
			// Until the backlog stops coming (a poll of linger came back
			// empty), and, for a small insert, the gap since the last
			// insert is out.
			wait = linger
			if len(pending) < s.cfg.BatchRows/4 {
				wait = max(tailGap-time.Since(flushed), linger)
			}
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fetches := cl.PollRecords(pctx, s.cfg.BatchRows)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fetches.IsClientClosed() {
			return errors.New("clickhouse sink: client closed")
		}
		if assigned.Load() {
			readyOnce()
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				s.log.WarnContext(ctx, "fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
			}
		}
		recs := fetches.Records()
		if len(recs) == 0 && wait == s.cfg.FlushEvery {
			burst = false
		}
		if len(recs) > 0 && len(pending) == 0 {
			since = time.Now()
		}
		pending = append(pending, recs...)
		// A batch is due when full, when its first row has waited
		// FlushEvery, or when the sink is reading a backlog (a batch was
		// full, and no poll has waited FlushEvery in vain since) and the
		// backlog has stopped coming: a burst's tail need not wait for the
		// timer, while a trickle still makes one insert per FlushEvery.
		// Only a poll that came back empty says so — nothing buffered
		// says only that the next fetch is on its way, and flushing then
		// cut a backlog into an insert per fetch.
		full := len(pending) >= s.cfg.BatchRows
		// The insert rate is bounded for small inserts only: a quarter
		// batch is an efficient insert whenever it comes.
		tail := burst && len(recs) == 0 && (time.Since(flushed) >= tailGap || len(pending) >= s.cfg.BatchRows/4)
		if len(pending) > 0 && (full || tail || time.Since(since) >= s.cfg.FlushEvery) {
			flushed = time.Now()
			err := s.flush(ctx, pending)
			var gap *gapError
			switch {
			case errors.As(err, &gap):
				s.gapped(ctx, cl, gap, pending)
			case err != nil:
				return err
			default:
				clear(s.gaps)
				if err := cl.CommitRecords(ctx, pending...); err != nil {
					return fmt.Errorf("clickhouse sink: commit offsets: %w", err)
				}
				s.metrics.commits.Committed(time.Now())
				burst = burst || full
			}
			pending = pending[:0]
		}
		if len(pending) == 0 {
			// Partitions move only between batches, never under pending rows.
			cl.AllowRebalance()
		}
	}
}

// openEvents decodes and opens each ogma.events record of recs — ~3 µs
// each, the flush's only work before its inserts besides two queries —
// on every core. out[i] is recs[i]'s event; nil when recs[i] is not an
// event or is undecodable (logged). An erased tenant's events stay
// sealed.
func (s *Sink) openEvents(ctx context.Context, recs []*kgo.Record) (out []*event.Record, err error) {
	out = make([]*event.Record, len(recs))
	const chunk = 512
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for lo := 0; lo < len(recs); lo += chunk {
		g.Go(func() error {
			for i := lo; i < min(lo+chunk, len(recs)); i++ {
				r := recs[i]
				if r.Topic != topic.Events {
					continue
				}
				e, err := event.DecodeRecord(r.Value)
				if err != nil {
					s.log.ErrorContext(ctx, "undecodable event record", "partition", r.Partition, "offset", r.Offset, "err", err)
					continue
				}
				if _, err := s.keys.Open(ctx, e); err != nil {
					return fmt.Errorf("ogma.events %d/%d: %w", r.Partition, r.Offset, err)
				}
				out[i] = e
			}
			return nil
		})
	}
	return out, g.Wait()
}

// linger is how long a sink reading a backlog waits for more of it
// before it writes what it holds: fetches of a backlog come back far
// sooner.
const linger = 20 * time.Millisecond

// gaps a tenant's chain may show in a row, each read again, before the
// sink refuses the tenant.
const maxGapReads = 3

// gapped handles a batch that breaks a tenant's chain: it reads the
// batch's partitions again from their committed offsets (a read-committed
// fetch can miss records, as kfake's did after a crash), and refuses the
// tenant once the gap has persisted maxGapReads times.
func (s *Sink) gapped(ctx context.Context, cl *kgo.Client, gap *gapError, pending []*kgo.Record) {
	s.metrics.gaps.Inc()
	s.gaps[gap.tenant]++
	if s.gaps[gap.tenant] >= maxGapReads {
		s.broken[gap.tenant] = true
		s.log.ErrorContext(ctx, "tenant refused: its chain in ogma.events has a gap that reading again does not close",
			"tenant", gap.tenant, "reads", s.gaps[gap.tenant], "err", gap)
		s.refuse(ctx, gap.tenant, fmt.Sprintf("its chain in ogma.events has a gap that reading again does not close (%v)", gap))
	} else {
		s.log.WarnContext(ctx, "chain gap in ogma.events, reading again", "tenant", gap.tenant, "err", gap)
	}
	committed := cl.CommittedOffsets()
	rewind := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range pending {
		if rewind[r.Topic] == nil {
			rewind[r.Topic] = map[int32]kgo.EpochOffset{}
		}
		if _, ok := rewind[r.Topic][r.Partition]; ok {
			continue
		}
		o, ok := committed[r.Topic][r.Partition]
		if !ok {
			o = kgo.EpochOffset{Epoch: -1, Offset: 0}
		}
		rewind[r.Topic][r.Partition] = o
	}
	cl.SetOffsets(rewind)
}

// flush writes one batch.
func (s *Sink) flush(ctx context.Context, recs []*kgo.Record) error {
	opened, err := s.openEvents(ctx, recs)
	if err != nil {
		return err
	}
	var events []*event.Record
	at := map[*event.Record]position{}
	var prov []provRow
	var anchors []anchorRow
	for i, r := range recs {
		switch r.Topic {
		case topic.Events:
			e := opened[i]
			if e == nil {
				continue // undecodable, and logged
			}
			events = append(events, e)
			at[e] = position{r.Partition, r.Offset}
		case topic.Anchors:
			rows, err := anchorRows(r)
			if err != nil {
				s.log.ErrorContext(ctx, "undecodable anchors record", "offset", r.Offset, "err", err)
				continue
			}
			anchors = append(anchors, rows...)
		case topic.Provisional:
			if id, _, err := envelope.ParseProvisionalKey(r.Key); err == nil && stream.KindOf(id.Vendor, id.Stream) != stream.UsageReport {
				continue // open cost buckets have no projection yet
			}
			rows, err := provisionalRows(r)
			if err != nil {
				s.log.ErrorContext(ctx, "undecodable provisional record", "partition", r.Partition, "offset", r.Offset, "err", err)
				continue
			}
			prov = append(prov, rows...)
		}
	}
	events, err = s.checkHeads(ctx, events)
	if err != nil {
		return err
	}
	events, heads, err := s.checkChains(ctx, events, at)
	if err != nil {
		return err
	}
	if err := s.insertEvents(ctx, events); err != nil {
		return err
	}
	if err := s.insertProvisional(ctx, prov); err != nil {
		return err
	}
	if err := s.insertAnchors(ctx, anchors); err != nil {
		return err
	}
	maps.Copy(s.heads, heads)
	s.metrics.rows.WithLabelValues("events").Add(float64(len(events)))
	s.metrics.rows.WithLabelValues("usage_provisional").Add(float64(len(prov)))
	s.metrics.rows.WithLabelValues("anchors").Add(float64(len(anchors)))
	return nil
}

// erased reports whether r is an erased tenant's: sealed, and not opened.
func erased(r *event.Record) bool { return r.Sealed != nil && r.Data == nil }

// checkHeads drops the events of tenants whose ledger in ClickHouse holds
// one of their seqs with another hash, and refuses those tenants for good.
func (s *Sink) checkHeads(ctx context.Context, events []*event.Record) ([]*event.Record, error) {
	type span struct{ lo, hi uint64 }
	spans := map[string]*span{}
	for _, e := range events {
		sp := spans[e.Event.Tenant]
		if sp == nil {
			spans[e.Event.Tenant] = &span{e.Event.Seq, e.Event.Seq}
			continue
		}
		sp.lo, sp.hi = min(sp.lo, e.Event.Seq), max(sp.hi, e.Event.Seq)
	}
	have := map[string]map[uint64]string{}
	for tenant, sp := range spans {
		if s.refused[tenant] {
			continue
		}
		m, err := s.store.hashes(ctx, tenant, sp.lo, sp.hi)
		if err != nil {
			return nil, err
		}
		have[tenant] = m
	}
	out := events[:0]
	for _, e := range events {
		t := e.Event.Tenant
		if h, ok := have[t][e.Event.Seq]; ok && h != e.Hash && !s.refused[t] {
			s.refused[t] = true
			s.log.ErrorContext(ctx, "tenant refused: ClickHouse holds a different event at this seq; Kafka's history is behind ClickHouse's",
				"tenant", t, "seq", e.Event.Seq)
			s.refuse(ctx, t, fmt.Sprintf("ClickHouse database %s holds another event at seq %d: its ledger is not this installation's "+
				"(a database that outlived its data dir?)", s.store.db, e.Event.Seq))
		}
		if !s.refused[t] {
			out = append(out, e)
		}
	}
	return out, nil
}

// refuse records that tenant is refused and tells Deps.OnRefuse.
func (s *Sink) refuse(ctx context.Context, tenant, reason string) {
	s.metrics.refused.Inc()
	s.refusals[tenant] = reason
	if err := s.store.Refuse(ctx, tenant, reason); err != nil {
		s.log.ErrorContext(ctx, "record refusal", "tenant", tenant, "err", err)
	}
	if s.onRefuse != nil {
		s.onRefuse(maps.Clone(s.refusals))
	}
}

func (s *Store) hashes(ctx context.Context, tenant string, lo, hi uint64) (map[uint64]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, "SELECT seq, hash FROM events WHERE tenant = ? AND seq >= ? AND seq <= ?", tenant, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read ledger of %s: %w", tenant, err)
	}
	defer rows.Close()
	m := map[uint64]string{}
	for rows.Next() {
		var seq uint64
		var h string
		if err := rows.Scan(&seq, &h); err != nil {
			return nil, err
		}
		m[seq] = h
	}
	return m, rows.Err()
}

// insertEvents writes events into the ledger and, at the same time on
// another connection, into the tables projected from them: neither depends
// on the other, and offsets are committed only once both are written.
func (s *Sink) insertEvents(ctx context.Context, events []*event.Record) error {
	if len(events) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.insertLedger(gctx, events) })
	g.Go(func() error { return s.insertProjections(gctx, events) })
	return g.Wait()
}

func (s *Sink) insertLedger(ctx context.Context, events []*event.Record) error {
	err := s.store.batch(ctx, `INSERT INTO events (tenant, seq, prev, hash, kind, vendor, stream, key, rev,
		observed_at, data_digest, canonical, data, salt, source_partition, source_offset)`, func(add func(...any) error) error {
		for _, r := range events {
			e := r.Event
			observed, _ := time.Parse(time.RFC3339Nano, e.ObservedAt)
			if err := add(e.Tenant, e.Seq, e.Prev, r.Hash, e.Kind, e.Vendor, e.Stream, string(e.Key), e.Rev,
				observed.UTC(), e.DataDigest, r.Canonical, string(r.Data), r.Salt, r.Source.Partition, r.Source.Offset); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

func (s *Sink) insertProjections(ctx context.Context, events []*event.Record) error {
	// An erased tenant's events are in the ledger for the chain's sake;
	// its projections went with its data.
	events = slices.DeleteFunc(slices.Clone(events), erased)
	var usage, costs, audits, manifests []*event.Record
	for _, r := range events {
		switch {
		case r.Event.Kind == event.Manifest:
			manifests = append(manifests, r)
		case r.Event.Kind != event.Fact:
		case stream.KindOf(r.Event.Vendor, r.Event.Stream) == stream.UsageReport:
			usage = append(usage, r)
		case stream.KindOf(r.Event.Vendor, r.Event.Stream) == stream.CostReport:
			costs = append(costs, r)
		case stream.KindOf(r.Event.Vendor, r.Event.Stream) == stream.AuditLog:
			audits = append(audits, r)
		}
	}
	if err := s.insertCosts(ctx, costs); err != nil {
		return err
	}
	if err := s.insertAudits(ctx, audits); err != nil {
		return err
	}
	if err := s.insertIdentities(ctx, events); err != nil {
		return err
	}
	if err := s.insertManifests(ctx, manifests); err != nil {
		return err
	}
	if len(usage) == 0 {
		return nil
	}
	err := s.store.batch(ctx, `INSERT INTO usage (tenant, vendor, stream, key, primary_set, day, bucket_start, model, user_id,
		project_id, api_key_id, batch, service_tier, input_tokens, input_cached_tokens, output_tokens, num_model_requests, rev, seq,
		input_cache_write_5m, input_cache_write_1h, estimated_usd, priced, price_version, `+unitColumns+`)`,
		func(add func(...any) error) error {
			for _, r := range usage {
				k, err := parseKey(r.Event.Key)
				if err != nil {
					return fmt.Errorf("usage key of %s seq %d: %w", r.Event.Tenant, r.Event.Seq, err)
				}
				u, err := normalize.UsageColumns(r.Event.Vendor, r.Data)
				if err != nil {
					return fmt.Errorf("usage data of %s seq %d: %w", r.Event.Tenant, r.Event.Seq, err)
				}
				primary := uint8(0)
				if spec, _ := stream.Lookup(r.Event.Vendor, r.Event.Stream); spec.Counts(k.GroupSet, u.APIKeyID) {
					primary = 1
				}
				e := r.Event
				est := s.prices.Estimate(e.Vendor, k.BucketStart, u)
				if err := add(e.Tenant, e.Vendor, e.Stream, string(e.Key), primary, k.BucketStart.UTC(), k.BucketStart.UTC(),
					u.Model, u.UserID, u.ProjectID, u.APIKeyID, u.Batch, u.ServiceTier,
					u.InputTokens, u.InputCachedTokens, u.OutputTokens, u.NumModelRequests, e.Rev, e.Seq,
					u.InputCacheWrite5m, u.InputCacheWrite1h, est.USD, boolByte(est.Priced), est.Version,
					u.Images, u.Characters, u.Seconds, u.Bytes, u.Sessions, u.Calls); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("insert usage: %w", err)
	}
	return nil
}

// insertManifests records the bucket each manifest settles.
func (s *Sink) insertManifests(ctx context.Context, manifests []*event.Record) error {
	if len(manifests) == 0 {
		return nil
	}
	err := s.store.batch(ctx, `INSERT INTO manifests (tenant, vendor, stream, bucket_start, seq)`, func(add func(...any) error) error {
		for _, r := range manifests {
			k, err := parseKey(r.Event.Key)
			if err != nil {
				return fmt.Errorf("manifest key of %s seq %d: %w", r.Event.Tenant, r.Event.Seq, err)
			}
			e := r.Event
			if err := add(e.Tenant, e.Vendor, e.Stream, event.Time(k.BucketStart), e.Seq); err != nil { // as the key writes it
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert manifests: %w", err)
	}
	return nil
}

func (s *Sink) insertCosts(ctx context.Context, costs []*event.Record) error {
	if len(costs) == 0 {
		return nil
	}
	err := s.store.batch(ctx, `INSERT INTO costs (tenant, vendor, stream, key, day, bucket_start, project_id, line_item,
		amount, currency, rev, seq)`, func(add func(...any) error) error {
		for _, r := range costs {
			k, err := parseKey(r.Event.Key)
			if err != nil {
				return fmt.Errorf("cost key of %s seq %d: %w", r.Event.Tenant, r.Event.Seq, err)
			}
			c, err := normalize.CostColumns(r.Event.Vendor, r.Data)
			if err != nil {
				return fmt.Errorf("cost data of %s seq %d: %w", r.Event.Tenant, r.Event.Seq, err)
			}
			e := r.Event
			if err := add(e.Tenant, e.Vendor, e.Stream, string(e.Key), k.BucketStart.UTC(), k.BucketStart.UTC(),
				c.ProjectID, c.LineItem, c.Amount, c.Currency, e.Rev, e.Seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert costs: %w", err)
	}
	return nil
}

// reportKey is what the sink reads of a report row's key.
type reportKey struct {
	BucketStart time.Time `json:"bucket_start"`
	GroupSet    []string  `json:"group_set"`
}

// parseKey reads a report row's key — valid JSON, as DecodeRecord checks
// it — directly, or through encoding/json for a name that matches a field
// only without regard to case.
func parseKey(key []byte) (reportKey, error) {
	var k reportKey
	var err error
	fallback := false
	direct := jsonscan.Members(key, func(name string, v []byte) bool {
		switch {
		case name == "bucket_start":
			err = k.BucketStart.UnmarshalJSON(v)
		case name == "group_set":
			k.GroupSet, fallback = plainStrings(v)
		case strings.EqualFold(name, "bucket_start") || strings.EqualFold(name, "group_set"):
			fallback = true // matched by encoding/json too
		}
		return err == nil && !fallback
	})
	if !direct || fallback {
		k = reportKey{}
		err = json.Unmarshal(key, &k)
	}
	return k, err
}

// plainStrings reads a JSON array of plain strings; fallback is true for
// any other value.
func plainStrings(v []byte) (_ []string, fallback bool) {
	s := jsonscan.Scanner{B: v}
	if !s.Lit("[") {
		return nil, true
	}
	out := []string{}
	for !s.Lit("]") {
		if len(out) > 0 && !s.Lit(",") {
			return nil, true
		}
		str, ok := s.PlainString()
		if !ok {
			return nil, true
		}
		out = append(out, str)
	}
	return out, !s.End()
}

type provRow struct {
	tenant, vendor, stream string
	start                  time.Time
	version                int64
	kind                   uint8
	row                    uint32
	u                      normalize.Usage
	fetched                time.Time
}

// provisionalRows turns an ogma.provisional record into table rows: its
// rows, an empty-bucket marker, or a settled marker for a tombstone.
func provisionalRows(r *kgo.Record) ([]provRow, error) {
	if r.Value == nil {
		id, start, err := envelope.ParseProvisionalKey(r.Key)
		if err != nil {
			return nil, err
		}
		return []provRow{{tenant: id.Tenant, vendor: id.Vendor, stream: id.Stream, start: start, version: r.Offset, kind: 1}}, nil
	}
	var p envelope.Provisional
	if err := json.Unmarshal(r.Value, &p); err != nil {
		return nil, err
	}
	base := provRow{tenant: p.Tenant, vendor: p.Vendor, stream: p.Stream, start: time.Unix(p.Bucket.Start, 0).UTC(),
		version: r.Offset, fetched: p.FetchedAt.UTC()}
	if len(p.Rows) == 0 {
		base.kind = 2
		return []provRow{base}, nil
	}
	spec, _ := stream.Lookup(p.Vendor, p.Stream)
	out := make([]provRow, 0, len(p.Rows))
	for i, data := range p.Rows {
		u, err := normalize.UsageColumns(p.Vendor, data)
		if err != nil {
			return nil, err
		}
		row := base
		row.row, row.u = uint32(i), u
		if !spec.Counts(p.GroupSet, u.APIKeyID) {
			row.kind = 3 // a breakdown of usage counted in another row
		}
		out = append(out, row)
	}
	return out, nil
}

func (s *Sink) insertProvisional(ctx context.Context, rows []provRow) error {
	if len(rows) == 0 {
		return nil
	}
	err := s.store.batch(ctx, `INSERT INTO usage_provisional (tenant, vendor, stream, bucket_start, version, kind, row, day,
		model, user_id, project_id, api_key_id, batch, service_tier, input_tokens, input_cached_tokens, output_tokens,
		num_model_requests, fetched_at, input_cache_write_5m, input_cache_write_1h, estimated_usd, priced, price_version, `+unitColumns+`)`, func(add func(...any) error) error {
		for _, r := range rows {
			u := r.u
			est := s.prices.Estimate(r.vendor, r.start, u)
			if err := add(r.tenant, r.vendor, r.stream, r.start, r.version, r.kind, r.row, r.start,
				u.Model, u.UserID, u.ProjectID, u.APIKeyID, u.Batch, u.ServiceTier,
				u.InputTokens, u.InputCachedTokens, u.OutputTokens, u.NumModelRequests, r.fetched,
				u.InputCacheWrite5m, u.InputCacheWrite1h, est.USD, boolByte(est.Priced), est.Version,
				u.Images, u.Characters, u.Seconds, u.Bytes, u.Sessions, u.Calls); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert usage_provisional: %w", err)
	}
	// Each version once its rows are in: a read takes a bucket's highest
	// version from here, never one whose rows are still on their way.
	err = s.store.batch(ctx, `INSERT INTO provisional_versions (tenant, vendor, stream, bucket_start, version)`, func(add func(...any) error) error {
		for i, r := range rows {
			if i > 0 && r.tenant == rows[i-1].tenant && r.version == rows[i-1].version {
				continue // one record's rows, which come together: a version is its offset on the tenant's partition
			}
			if err := add(r.tenant, r.vendor, r.stream, r.start, r.version); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert provisional_versions: %w", err)
	}
	return nil
}

// batch runs one prepared batch insert: fill appends the rows through add.
func (s *Store) batch(ctx context.Context, insert string, fill func(add func(...any) error) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	b, err := s.conn.PrepareBatch(ctx, insert)
	if err != nil {
		return err
	}
	if err := fill(func(v ...any) error { return b.Append(v...) }); err != nil {
		b.Abort()
		return err
	}
	return b.Send()
}

type sinkMetrics struct {
	rows    *prometheus.CounterVec
	refused prometheus.Counter
	gaps    prometheus.Counter
	commits *commitclock.Clock
}

func newSinkMetrics(reg prometheus.Registerer) *sinkMetrics {
	m := &sinkMetrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ogma_sink_clickhouse_rows_total",
			Help: "Rows written to ClickHouse, by table family (events, usage_provisional).",
		}, []string{"table"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ogma_sink_clickhouse_tenants_refused_total",
			Help: "Tenants refused because ClickHouse holds a different event at a seq Kafka delivered, or because their chain in ogma.events has a gap that reading again does not close: investigate before anything else.",
		}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ogma_sink_clickhouse_chain_gaps_total",
			Help: "Batches whose events broke a tenant's chain (a seq gap or a prev that does not link) and were read again.",
		}),
	}
	m.commits = commitclock.New("sink_clickhouse", reg)
	if reg != nil {
		reg.MustRegister(m.rows, m.refused, m.gaps)
	}
	return m
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

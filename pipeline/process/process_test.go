package process_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ogma-dev/ogma/connectors/openai"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/process"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/seal/sealtest"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

var simNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type pipeline struct {
	sim      *openaisim.Server
	simClock *clock
	clock    *clock
	cluster  *topictest.Cluster
	commits  atomic.Int64
	restarts atomic.Int64
	// restartsExpected is set by tests that make the processor fail.
	restartsExpected bool
	stateDir         string
	polls            *prometheus.Registry
	// tune, if set, changes the processor's configuration.
	tune func(*process.Config, *process.Deps)
}

// newPipeline runs the simulator, a connector polling it for tenant "acme"
// and a processor, on a fresh broker.
func newPipeline(t *testing.T, streams func(*openai.Client) []poll.Scheduled, opts ...kfake.Opt) *pipeline {
	t.Helper()
	return newTunedPipeline(t, streams, nil, opts...)
}

// newTunedPipeline is newPipeline with tune applied to the processor.
func newTunedPipeline(t *testing.T, streams func(*openai.Client) []poll.Scheduled, tune func(*process.Config, *process.Deps), opts ...kfake.Opt) *pipeline {
	t.Helper()
	p := &pipeline{simClock: &clock{t: simNow}, clock: &clock{t: simNow}, cluster: topictest.New(t, opts...),
		stateDir: t.TempDir(), polls: prometheus.NewRegistry(), tune: tune}
	p.sim = openaisim.New(openaisim.Config{Seed: 3, Users: 30, Projects: 3, Now: p.simClock.Now})
	srv := httptest.NewServer(p.sim)
	t.Cleanup(srv.Close)
	kr, _ := sealtest.Keyring(t)
	sealed, _ := kr.Seal(seal.NewSecret(p.sim.Key(openaisim.KeyFull)), "acme", openai.Vendor, 1)
	l := p.cluster.Layout
	if err := control.Publish(t.Context(), p.cluster.Dial, kr,
		control.TenantRecord(l, control.Tenant{ID: "acme", Name: "Acme", Residency: control.ResidencyUS}),
		control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: openai.Vendor, Generation: 1,
			Sealed: sealed, SealedAt: simNow, ConnectedAt: simNow, Status: control.StatusOK})); err != nil {
		t.Fatal(err)
	}
	client, _ := openai.NewClient(openai.ClientConfig{BaseURL: srv.URL})
	conn, err := poll.New(poll.Config{Tick: 5 * time.Millisecond, SessionTimeout: 6 * time.Second, Jitter: -1}, poll.Deps{
		Dial: p.cluster.Dial, Layout: l, Keyring: kr, Now: p.clock.Now, Registerer: p.polls,
		Vendors: map[string][]poll.Scheduled{openai.Vendor: streams(client)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{}, 2)
	go func() {
		if err := conn.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("connector: %v", err)
		}
		done <- struct{}{}
	}()
	go func() { p.runProcessor(t, ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		if n := p.restarts.Load(); n > 0 && !p.restartsExpected {
			t.Errorf("the processor failed %d times (see the log); only a test that injects failures expects that", n)
		}
	})
	return p
}

// runProcessor runs the processor until ctx ends; like a supervised role,
// it is started again when it exits with an error.
func (p *pipeline) runProcessor(t *testing.T, ctx context.Context) {
	for ctx.Err() == nil {
		cfg := process.Config{StateDir: p.stateDir, BucketWait: 2 * time.Second, SessionTimeout: 6 * time.Second}
		deps := process.Deps{Dial: p.cluster.Dial, Session: topic.Opts(p.cluster.Broker.Addrs()), Layout: p.cluster.Layout,
			OnCommit: func() { p.commits.Add(1) }}
		if p.tune != nil {
			p.tune(&cfg, &deps)
		}
		proc, err := process.New(cfg, deps)
		if err != nil {
			t.Error(err)
			return
		}
		if err := proc.Run(ctx); err != nil && ctx.Err() == nil {
			p.restarts.Add(1)
			t.Logf("processor exited, restarting: %v", err)
		}
	}
}

// caughtUp reports whether the processor has committed past every
// committed raw record.
func (p *pipeline) caughtUp(t *testing.T) bool {
	last := map[int32]int64{}
	for _, r := range p.cluster.Records(t, topic.Raw) {
		last[r.Partition] = r.Offset
	}
	cl, err := p.cluster.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	committed, err := kadm.NewClient(cl).FetchOffsets(t.Context(), "ogma-process")
	if err != nil {
		return false
	}
	for part, off := range last {
		if c, ok := committed.Lookup(topic.Raw, part); !ok || c.At <= off {
			return false
		}
	}
	return true
}

// settle waits until the raw topic is fully processed after a poll.
func (p *pipeline) settle(t *testing.T, polls float64) {
	t.Helper()
	wait.Until(t, fmt.Sprintf("%v usage polls", polls), func() bool { return pollCount(p.polls) >= polls })
	wait.Until(t, "the processor to catch up", func() bool { return p.caughtUp(t) })
}

func pollCount(reg *prometheus.Registry) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "ogma_connector_polls_total" {
			continue
		}
		var n float64
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "stream" && lp.GetValue() == "usage.completions" {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	return 0
}

// ledgerEvent is an ogma.events record as a stranger reads it: plain JSON,
// no code of the processor. Its event member is the exact hashed bytes.
type ledgerEvent struct {
	Canonical json.RawMessage `json:"event"`
	Hash      string          `json:"hash"`
	Data      json.RawMessage `json:"data"`
	Salt      string          `json:"salt"`
	// Event is what the canonical bytes say.
	Event struct {
		Tenant     string          `json:"tenant"`
		Seq        uint64          `json:"seq"`
		Prev       string          `json:"prev"`
		Kind       string          `json:"kind"`
		Stream     string          `json:"stream"`
		Key        json.RawMessage `json:"key"`
		Rev        uint32          `json:"rev"`
		DataDigest string          `json:"data_digest"`
	} `json:"-"`
}

func (p *pipeline) events(t *testing.T) []ledgerEvent {
	t.Helper()
	var out []ledgerEvent
	keys := datakey.New(p.cluster.Dial, p.cluster.Layout)
	for _, r := range p.cluster.Records(t, topic.Events) {
		var e ledgerEvent
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(e.Canonical, &e.Event); err != nil {
			t.Fatal(err)
		}
		// The data and salt travel sealed under the tenant's key.
		opened := topictest.OpenEvent(t, keys, r.Value)
		e.Data, e.Salt = opened.Data, opened.Salt
		out = append(out, e)
	}
	return out
}

// verifyChain recomputes the chain independently: hash = SHA-256 of the
// canonical bytes, each prev the hash before, seq contiguous from 1 per
// tenant, data_digest = SHA-256(salt ‖ data), and the canonical bytes
// holding the event's fields.
func verifyChain(t *testing.T, evs []ledgerEvent) {
	t.Helper()
	prev := map[string]string{}
	seq := map[string]uint64{}
	for _, e := range evs {
		h := sha256.Sum256([]byte(e.Canonical))
		if hex.EncodeToString(h[:]) != e.Hash {
			t.Fatalf("%s seq %d: hash is not SHA-256 of its canonical bytes", e.Event.Tenant, e.Event.Seq)
		}
		want := prev[e.Event.Tenant]
		if want == "" {
			want = "0000000000000000000000000000000000000000000000000000000000000000"
		}
		if e.Event.Prev != want {
			t.Fatalf("%s seq %d: prev %s, want %s", e.Event.Tenant, e.Event.Seq, e.Event.Prev, want)
		}
		if e.Event.Seq != seq[e.Event.Tenant]+1 {
			t.Fatalf("%s: seq %d follows %d", e.Event.Tenant, e.Event.Seq, seq[e.Event.Tenant])
		}
		salt, _ := hex.DecodeString(e.Salt)
		d := sha256.Sum256(append(salt, e.Data...))
		if len(salt) != 32 || hex.EncodeToString(d[:]) != e.Event.DataDigest {
			t.Fatalf("%s seq %d: data_digest does not match SHA-256(salt ‖ data)", e.Event.Tenant, e.Event.Seq)
		}
		var canon map[string]any
		if err := json.Unmarshal([]byte(e.Canonical), &canon); err != nil {
			t.Fatal(err)
		}
		if canon["prev"] != e.Event.Prev || canon["data_digest"] != e.Event.DataDigest || canon["v"] != float64(1) {
			t.Fatalf("%s seq %d: canonical bytes do not hold the event", e.Event.Tenant, e.Event.Seq)
		}
		if !bytes.HasPrefix([]byte(e.Canonical), []byte(`{"data_digest":`)) {
			t.Fatalf("canonical form is not key-sorted JCS: %.40s", e.Canonical)
		}
		prev[e.Event.Tenant], seq[e.Event.Tenant] = e.Hash, e.Event.Seq
	}
}

func usageOnly(c *openai.Client) []poll.Scheduled {
	return openai.Streams(c, 15*time.Minute, time.Hour)[:1]
}

// Issue 3: the chain recomputes independently; unchanged re-fetches make no
// event; a restated past bucket makes exactly one new event with rev 1 and
// an updated manifest; today's growing bucket is provisional only, and is
// chained once it settles.
func TestChainDedupeAndSettlement(t *testing.T) {
	p := newPipeline(t, usageOnly)
	p.settle(t, 1)
	evs := p.events(t)
	verifyChain(t, evs)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	today := simNow.Truncate(24 * time.Hour)
	var facts, manifests int
	for _, e := range evs {
		var k struct {
			BucketStart string `json:"bucket_start"`
		}
		json.Unmarshal(e.Event.Key, &k)
		if k.BucketStart == today.Format(time.RFC3339) {
			t.Fatalf("today's open bucket was chained: %s", e.Event.Key)
		}
		switch e.Event.Kind {
		case "fact":
			facts++
		case "manifest":
			manifests++
		}
		if e.Event.Rev != 0 {
			t.Errorf("first pass made rev %d", e.Event.Rev)
		}
	}
	if manifests != 90 {
		t.Errorf("manifests = %d, want one per settled day of the 90-day window", manifests)
	}
	var wantFacts int
	for d := today.AddDate(0, 0, -90); d.Before(today); d = d.Add(24 * time.Hour) {
		wantFacts += len(p.sim.Completions(d, openaisim.CompletionsGroupBy))
	}
	if facts != wantFacts {
		t.Errorf("facts = %d, want the simulator's %d rows", facts, wantFacts)
	}
	prov := p.cluster.Records(t, topic.Provisional)
	if len(prov) == 0 || !bytes.Contains(prov[len(prov)-1].Key, []byte(fmt.Sprint(today.Unix()))) {
		t.Errorf("today's bucket is not in ogma.provisional")
	}

	// Unchanged re-fetch: no event.
	p.clock.Set(simNow.Add(16 * time.Minute))
	p.settle(t, 2)
	if n := len(p.events(t)); n != len(evs) {
		t.Fatalf("an unchanged re-fetch made %d events", n-len(evs))
	}

	// A restated past bucket: one new fact with rev 1 and an updated manifest.
	restated := today.AddDate(0, 0, -2)
	p.sim.Restate(restated, 777)
	p.clock.Set(simNow.Add(32 * time.Minute))
	p.settle(t, 3)
	all := p.events(t)
	verifyChain(t, all)
	fresh := all[len(evs):]
	if len(fresh) != 2 || fresh[0].Event.Kind != "fact" || fresh[0].Event.Rev != 1 || fresh[1].Event.Kind != "manifest" || fresh[1].Event.Rev != 1 {
		var got []string
		for _, e := range fresh {
			got = append(got, fmt.Sprintf("%s rev %d", e.Event.Kind, e.Event.Rev))
		}
		t.Fatalf("restatement made %v, want [fact rev 1, manifest rev 1]", got)
	}

	// Today settles: the simulator moves to tomorrow, the connector past
	// the grace; today's rows are chained, with their manifest.
	p.simClock.Set(today.Add(24*time.Hour + 2*time.Hour))
	p.clock.Set(today.Add(24*time.Hour + 2*time.Hour))
	p.settle(t, 4)
	settled := p.events(t)[len(all):]
	verifyChain(t, p.events(t))
	wantToday := len(p.sim.Completions(today, openaisim.CompletionsGroupBy))
	var todayFacts int
	for _, e := range settled {
		var k struct {
			BucketStart string `json:"bucket_start"`
		}
		json.Unmarshal(e.Event.Key, &k)
		if e.Event.Kind == "fact" && k.BucketStart == today.Format(time.RFC3339) {
			todayFacts++
		}
	}
	if todayFacts != wantToday {
		t.Errorf("after settling, %d facts of today were chained, want %d", todayFacts, wantToday)
	}
	var tomb bool
	for _, r := range p.cluster.Records(t, topic.Provisional) {
		tomb = tomb || (r.Value == nil && bytes.Contains(r.Key, []byte(fmt.Sprint(today.Unix()))))
	}
	if !tomb {
		t.Error("the settled bucket's provisional record was not deleted")
	}
}

// Issue 3: an aborted transaction (EndTxn failing) leaves state and heads as
// if the batch never ran, and the retry produces the same bytes.
func TestAbortedBatchRetriesByteIdentical(t *testing.T) {
	var failed atomic.Bool
	var c *kfake.Cluster
	p := newPipeline(t, usageOnly, kfake.BrokerConfigs(map[string]string{}))
	p.restartsExpected = true
	c = p.cluster.Broker.Cluster()
	c.ControlKey(kmsg.EndTxn.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		if r.TransactionalID != "ogma-process-0" || !r.Commit || failed.Load() {
			c.KeepControl()
			return nil, nil, false
		}
		failed.Store(true)
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.InvalidTxnState.Code
		return resp, nil, true
	})
	p.settle(t, 1)
	if !failed.Load() || p.restarts.Load() == 0 {
		t.Fatalf("the injected failure did not happen (failed %v, restarts %d)", failed.Load(), p.restarts.Load())
	}
	committed := p.events(t)
	verifyChain(t, committed)

	// Read everything, aborted records included: the aborted attempt made
	// exactly the bytes its retry committed.
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.cluster.Broker.Addrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic.Events: {topic.Partition("acme", topictest.Partitions): kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(t.Context(), topic.Events)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic.Events, topic.Partition("acme", topictest.Partitions))
	var all [][]byte
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for last := int64(-1); last < end.Offset-2; { // the last offset is the commit's marker
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { all, last = append(all, r.Value), r.Offset })
	}
	if len(all) <= len(committed) {
		t.Fatalf("read %d records uncommitted, %d committed: the aborted attempt left nothing to compare", len(all), len(committed))
	}
	// The record values as they are — event, hash, data, salt, source —
	// not a decoding of them.
	aborted, retried := all[:len(all)-len(committed)], all[len(all)-len(committed):]
	for i, v := range aborted {
		if !bytes.Equal(v, retried[i]) {
			t.Fatalf("aborted record %d differs from its retry:\n%s\n%s", i, v, retried[i])
		}
	}
}

// Issue 5: a user deleted from the organization becomes an absent revision
// at the next complete walk of the users list.
func TestDeletedUserBecomesAbsent(t *testing.T) {
	p := newPipeline(t, func(c *openai.Client) []poll.Scheduled {
		return []poll.Scheduled{{Stream: &openai.List{Client: c, Spec: stream.Must(stream.OpenAI, "users"), Path: "/v1/organization/users"}, Every: time.Hour}}
	})
	gone, at, ok := p.sim.DeletedUserAfter()
	if !ok {
		t.Fatal("the simulator has no user leaving after its start")
	}
	wait.Until(t, "the first walk chained", func() bool { return len(p.events(t)) > 0 && p.caughtUp(t) })
	before := len(p.events(t))

	p.simClock.Set(at.Add(time.Minute))
	p.clock.Set(at.Add(time.Minute))
	wait.Until(t, "the absent revision", func() bool {
		evs := p.events(t)
		return len(evs) > before && p.caughtUp(t)
	})
	evs := p.events(t)
	verifyChain(t, evs)
	fresh := evs[before:]
	if len(fresh) != 1 || string(fresh[0].Data) != "null" || fresh[0].Event.Rev != 1 ||
		!bytes.Contains(fresh[0].Event.Key, []byte(gone.ID)) || fresh[0].Event.Kind != "identity" {
		t.Fatalf("after %s left, the chain got %d events, first %s", gone.ID, len(fresh), fresh[0].Event.Key)
	}
}

// Issue 5: cost settles late: a day is chained only after its 48 h grace,
// with the final amount, and never as the early partial one.
func TestLateCostChainedOnlyWhenSettled(t *testing.T) {
	p := newPipeline(t, func(c *openai.Client) []poll.Scheduled {
		return []poll.Scheduled{{Stream: &openai.Usage{Client: c, Spec: stream.Must(stream.OpenAI, "costs"), Limit: 180},
			Every: 15 * time.Minute}}
	})
	wait.Until(t, "costs chained", func() bool { return len(p.events(t)) > 0 && p.caughtUp(t) })
	today := simNow.Truncate(24 * time.Hour)
	chainedDays := func() map[string]int {
		days := map[string]int{}
		for _, e := range p.events(t) {
			var k struct {
				BucketStart string `json:"bucket_start"`
			}
			json.Unmarshal(e.Event.Key, &k)
			if e.Event.Kind == "fact" {
				days[k.BucketStart]++
				if e.Event.Rev != 0 {
					t.Fatalf("a cost fact was restated (rev %d): the partial amount reached the chain", e.Event.Rev)
				}
			}
		}
		return days
	}
	recent := today.AddDate(0, 0, -1).Format(time.RFC3339)
	if n := chainedDays()[recent]; n != 0 {
		t.Fatalf("yesterday's cost was chained within its grace (%d facts)", n)
	}
	// Two days on, the vendor's amount is final and the bucket settled.
	p.simClock.Set(today.AddDate(0, 0, 2).Add(time.Hour))
	p.clock.Set(today.AddDate(0, 0, 2).Add(time.Hour))
	wait.Until(t, "yesterday's cost chained", func() bool { return chainedDays()[recent] > 0 && p.caughtUp(t) })
	want := p.sim.Costs(today.AddDate(0, 0, -1), []string{"line_item", "project_id"})
	if got := chainedDays()[recent]; got != len(want) {
		t.Errorf("yesterday's chained cost facts = %d, want the settled %d", got, len(want))
	}
	for _, e := range p.events(t) {
		var c struct {
			Amount struct{ Value float64 } `json:"amount"`
		}
		var k struct {
			BucketStart string `json:"bucket_start"`
			LineItem    string `json:"line_item"`
			ProjectID   string `json:"project_id"`
		}
		json.Unmarshal(e.Data, &c)
		json.Unmarshal(e.Event.Key, &k)
		if e.Event.Kind != "fact" || k.BucketStart != recent {
			continue
		}
		for _, w := range want {
			if *w.LineItem == k.LineItem && *w.ProjectID == k.ProjectID && w.Amount.Value != c.Amount.Value {
				t.Errorf("%s %s chained at %v, want the final %v", k.ProjectID, k.LineItem, c.Amount.Value, w.Amount.Value)
			}
		}
	}
}

// A batch that stays open past the transaction timeout is aborted by the
// broker, which fences the processor's producer. The processor is not
// stopped by it: it reads the batch again in a new session, and every
// record is chained exactly once.
func TestExpiredTransactionIsReadAgain(t *testing.T) {
	var reg *prometheus.Registry
	var p *pipeline
	var expired atomic.Bool
	p = newTunedPipeline(t, usageOnly, func(cfg *process.Config, deps *process.Deps) {
		cfg.TransactionTimeout = 2 * time.Second
		reg = prometheus.NewRegistry() // a restart, which fails the test, registers again
		deps.Registerer = reg
		deps.BeforeCommit = func() {
			if expired.Load() {
				return
			}
			// Outlive the timeout: wait until the broker has aborted it.
			cl, err := p.cluster.Dial()
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for deadline := time.Now().Add(wait.Deadline); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				txns, err := kadm.NewClient(cl).DescribeTransactions(t.Context(), "ogma-process-0")
				if txn, ok := txns["ogma-process-0"]; err == nil && ok && txn.State != "Ongoing" {
					expired.Store(true)
					return
				}
			}
			t.Error("the broker never aborted the transaction")
		}
	})
	p.settle(t, 1)
	if !expired.Load() {
		t.Fatal("no transaction outlived its timeout")
	}
	if n := counter(t, reg, "ogma_processor_transactions_total", "expired"); n != 1 {
		t.Errorf("transactions_total{result=expired} = %v, want 1", n)
	}
	evs := p.events(t)
	verifyChain(t, evs)
	var facts int
	for _, e := range evs {
		if e.Event.Kind == "fact" {
			facts++
		}
	}
	var want int
	today := simNow.Truncate(24 * time.Hour)
	for d := today.AddDate(0, 0, -90); d.Before(today); d = d.Add(24 * time.Hour) {
		want += len(p.sim.Completions(d, openaisim.CompletionsGroupBy))
	}
	if facts != want {
		t.Errorf("facts = %d, want the simulator's %d rows, each once", facts, want)
	}
}

// counter returns the value of the counter name with a label valued
// value; 0 when absent.
func counter(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	m := metric(t, reg, name, func(m *dto.Metric) bool {
		return slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetValue() == value })
	})
	return m.GetCounter().GetValue()
}

// metric returns the first metric of the family name in reg that match
// takes; nil when none.
func metric(t *testing.T, reg *prometheus.Registry, name string, match func(*dto.Metric) bool) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if match(m) {
				return m
			}
		}
	}
	return nil
}

// Issue 13: erasing a tenant destroys its data key, so that ogma.events —
// kept without end, shared by the tenants of a partition — no longer opens
// its data, while its chain still verifies: after compaction no record of
// ogma.keys holds the key, no event holds the data in the clear, the
// open buckets are gone from ogma.provisional, and what the tenant's
// connector fetches afterwards is not processed.
func TestErasureDestroysTheTenantsDataInKafka(t *testing.T) {
	p := newPipeline(t, usageOnly)
	p.settle(t, 1)
	before := p.events(t)
	verifyChain(t, before)
	var key []byte
	for _, r := range p.cluster.Records(t, topic.Keys) {
		if string(r.Key) == "datakey/acme" {
			var k datakey.Key
			json.Unmarshal(r.Value, &k)
			key = k.Key
		}
	}
	if len(key) == 0 || len(before) == 0 || len(before[0].Data) == 0 {
		t.Fatalf("before erasure: key %x, %d events, the first with data %s", key, len(before), before[0].Data)
	}

	if err := datakey.Erase(t.Context(), p.cluster.Dial, p.cluster.Layout, "acme", simNow); err != nil {
		t.Fatal(err)
	}
	// More usage comes, and the bucket of today settles: the connector
	// still polls (this test keeps the integration), the processor drops it.
	today := simNow.Truncate(24 * time.Hour)
	p.simClock.Set(today.Add(24*time.Hour + 2*time.Hour))
	p.clock.Set(today.Add(24*time.Hour + 2*time.Hour))
	p.settle(t, 2)
	p.cluster.Broker.Cluster().Compact()

	for _, r := range p.cluster.Records(t, topic.Keys) {
		if bytes.Contains(r.Value, []byte(base64.StdEncoding.EncodeToString(key))) {
			t.Errorf("after compaction, ogma.keys's %s still holds the data key", r.Key)
		}
	}
	// An open bucket's last record is its tombstone, which compaction
	// carries out once it leaves the active segment (the broker never
	// compacts that one, and no other tenant writes here).
	last := map[string][]byte{}
	for _, r := range p.cluster.Records(t, topic.Provisional) {
		if bytes.HasPrefix(r.Key, []byte("acme/")) {
			last[string(r.Key)] = r.Value
		}
	}
	for k, v := range last {
		if v != nil {
			t.Errorf("ogma.provisional's open bucket %s outlives the erasure", k)
		}
	}
	after := p.cluster.Events(t)
	if len(after) != len(before) {
		t.Errorf("%d events after the erasure, %d before: the erased tenant's usage was chained", len(after), len(before))
	}
	for _, r := range p.cluster.Records(t, topic.Events) {
		if bytes.Contains(r.Value, []byte(`"input_tokens"`)) || bytes.Contains(r.Value, []byte(before[0].Salt)) {
			t.Fatalf("an event holds the erased tenant's data or salt in the clear: %s", r.Value)
		}
	}
	for _, e := range after {
		if e.Data != nil || e.Salt != "" {
			t.Fatalf("seq %d opens after the erasure: %s", e.Event.Seq, e.Data)
		}
		if event.Hash([]byte(e.Canonical)) != e.Hash {
			t.Fatalf("seq %d: the chain no longer verifies", e.Event.Seq)
		}
	}
}

package rekor_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/event/eventtest"
	"github.com/ogma-dev/ogma/pipeline/seal/sealtest"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/rekor"
	"github.com/ogma-dev/ogma/sinks/rekor/rekortest"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// harness is an installation's Kafka, its anchor key and the real Rekor
// it anchors in.
type harness struct {
	c     *topictest.Cluster
	key   *anchor.Key
	url   string
	roots rekor.TrustRoots
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	url := rekortest.URL(t)
	c := topictest.New(t)
	kr, _ := sealtest.Keyring(t)
	key, err := anchor.EnsureKey(t.Context(), c.Dial, kr)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{c: c, key: key, url: url, roots: rekor.TrustRoots{LogKey: rekortest.LogKey(t, url), AnchorKey: key.Fingerprint()}}
}

// running is a sink of the harness, stopped at the end of the test.
type running struct {
	ticks chan time.Time
	reg   *prometheus.Registry
	stop  func()
}

// run starts a sink that anchors in the log at url, and waits until it has
// read ogma.events.
func (h *harness) run(t *testing.T, url string) *running {
	t.Helper()
	log, err := rekor.NewRekor(url)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{ticks: make(chan time.Time), reg: prometheus.NewRegistry()}
	ready := make(chan struct{})
	sink, err := rekor.New(rekor.Config{MaxBackoff: 200 * time.Millisecond}, rekor.Deps{Dial: h.c.Dial, Layout: h.c.Layout,
		Log: log, Key: h.key, Ticks: r.ticks, Registerer: r.reg, Ready: func() { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx) }()
	r.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("rekor sink: %v", err)
		}
	})
	t.Cleanup(r.stop)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("rekor sink stopped before it was ready: %v", err)
	}
	return r
}

// tick makes the sink state the heads as of at.
func (r *running) tick(at time.Time) { r.ticks <- at }

// gauge reads a metric of the sink.
func (r *running) gauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// anchors reads ogma.anchors: statements and receipts by index.
func (h *harness) anchors(t *testing.T) (map[uint64]anchor.Anchor, map[uint64]anchor.Receipt) {
	t.Helper()
	as, rs := map[uint64]anchor.Anchor{}, map[uint64]anchor.Receipt{}
	for _, r := range h.c.Records(t, topic.Anchors) {
		d, err := anchor.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if d.Anchor != nil {
			as[d.Anchor.Index] = *d.Anchor
		}
		if d.Receipt != nil {
			rs[d.Receipt.Anchor.Index] = *d.Receipt
		}
	}
	return as, rs
}

// receipt waits for the receipt of statement index and verifies it against
// the pinned roots.
func (h *harness) receipt(t *testing.T, index uint64) (anchor.Receipt, anchor.Statement) {
	t.Helper()
	var rc anchor.Receipt
	wait.Until(t, fmt.Sprintf("receipt %d", index), func() bool {
		_, rs := h.anchors(t)
		var ok bool
		rc, ok = rs[index]
		return ok
	})
	st, err := rekor.VerifyReceipt(t.Context(), rc, h.roots)
	if err != nil {
		t.Fatalf("receipt %d: %v", index, err)
	}
	return rc, st
}

// heads returns the leaf of each chain's last event.
func heads(chains ...[]*event.Record) map[string]anchor.Leaf {
	m := map[string]anchor.Leaf{}
	for _, c := range chains {
		last := c[len(c)-1]
		m[last.Event.Tenant] = anchor.Leaf{Tenant: last.Event.Tenant, Seq: last.Event.Seq, Hash: last.Hash}
	}
	return m
}

// checkLeaves checks that the receipt anchors exactly want, each leaf's
// path leading to the statement's root.
func checkLeaves(t *testing.T, rc anchor.Receipt, st anchor.Statement, want map[string]anchor.Leaf) {
	t.Helper()
	if len(rc.Anchor.Leaves) != len(want) || st.Size != len(want) {
		t.Errorf("statement %d has %d leaves, want %d", st.Index, len(rc.Anchor.Leaves), len(want))
	}
	hashes := anchor.Hashes(rc.Anchor.Leaves)
	root, _ := hex.DecodeString(st.Root)
	for i, l := range rc.Anchor.Leaves {
		if want[l.Tenant] != l {
			t.Errorf("statement %d anchors %+v, want %+v", st.Index, l, want[l.Tenant])
		}
		if !anchor.VerifyPath(hashes[i], i, len(hashes), anchor.Path(hashes, i), [32]byte(root)) {
			t.Errorf("statement %d: the path of %s does not lead to the root", st.Index, l.Tenant)
		}
	}
}

// Each interval makes one statement and one log entry, whatever the number
// of tenants or events, also when nothing moved; statements chain through
// prev, and each receipt verifies offline against the pinned roots.
func TestOneEntryPerIntervalWhateverTheTenants(t *testing.T) {
	h := newHarness(t)
	var chains [][]*event.Record
	for i := range 10 {
		c := eventtest.Chain(t, fmt.Sprintf("tenant-%02d", i), "a", nil, 3+i)
		h.c.ProduceEvents(t, c...)
		chains = append(chains, c)
	}
	r := h.run(t, h.url)
	r.tick(t0)
	rc1, st1 := h.receipt(t, 1)
	checkLeaves(t, rc1, st1, heads(chains...))
	if st1.Prev != anchor.Genesis || st1.Time != "2026-12-01T10:00:00Z" {
		t.Errorf("statement 1: prev %s, time %s", st1.Prev, st1.Time)
	}
	if got := r.gauge(t, "ogma_anchor_unanchored_events"); got != 0 {
		t.Errorf("unanchored after receipt 1 = %v, want 0", got)
	}

	more := eventtest.Chain(t, "tenant-00", "b", chains[0][len(chains[0])-1], 5)
	h.c.ProduceEvents(t, more...)
	wait.Until(t, "the sink to read 5 more events", func() bool { return r.gauge(t, "ogma_anchor_unanchored_events") == 5 })
	chains[0] = append(chains[0], more...)
	r.tick(t0.Add(10 * time.Minute))
	rc2, st2 := h.receipt(t, 2)
	checkLeaves(t, rc2, st2, heads(chains...))
	if st2.Prev != anchor.Digest([]byte(rc1.Anchor.Statement)) {
		t.Error("statement 2 does not chain to statement 1")
	}

	r.tick(t0.Add(20 * time.Minute)) // nothing moved
	rc3, st3 := h.receipt(t, 3)
	if st3.Root != st2.Root || st3.Prev != anchor.Digest([]byte(rc2.Anchor.Statement)) || st3.Time == st2.Time {
		t.Errorf("an idle interval's statement = %+v, want statement 2's root, chained, at its own time", st3)
	}
	if !(rc1.LogIndex < rc2.LogIndex && rc2.LogIndex < rc3.LogIndex) {
		t.Errorf("log indexes %d, %d, %d: want one entry each, in order", rc1.LogIndex, rc2.LogIndex, rc3.LogIndex)
	}
	as, rs := h.anchors(t)
	if len(as) != 3 || len(rs) != 3 {
		t.Errorf("ogma.anchors holds %d statements and %d receipts, want 3 and 3", len(as), len(rs))
	}
	// The log serves each entry by its index, as rekor-cli get --log-index reads it.
	for _, rc := range []anchor.Receipt{rc1, rc2, rc3} {
		resp, err := http.Get(fmt.Sprintf("%s/api/v1/log/entries?logIndex=%d", h.url, rc.LogIndex))
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]json.RawMessage
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if _, ok := got[rc.UUID]; !ok || len(got) != 1 {
			t.Errorf("log index %d holds %v, want entry %s", rc.LogIndex, slices.Collect(maps.Keys(got)), rc.UUID)
		}
	}
	if r.gauge(t, "ogma_anchor_last_success_timestamp_seconds") == 0 {
		t.Error("no last success time")
	}
}

// A statement is persisted before it is uploaded. Stopped in between — or
// after the log took it but before the receipt was written — the next
// start uploads the same bytes, and the log, which already has them,
// answers with the one entry it holds.
func TestPersistedStatementIsUploadedOnce(t *testing.T) {
	h := newHarness(t)
	chain := eventtest.Chain(t, "acme", "a", nil, 4)
	h.c.ProduceEvents(t, chain...)

	down := closedURL(t)
	r := h.run(t, down)
	r.tick(t0)
	wait.Until(t, "statement 1 in ogma.anchors", func() bool { as, _ := h.anchors(t); _, ok := as[1]; return ok })
	wait.Until(t, "a failed upload", func() bool { return r.gauge(t, "ogma_anchor_upload_failures_total") > 0 })
	if got := r.gauge(t, "ogma_anchor_unanchored_events"); got != 4 {
		t.Errorf("unanchored while the log is down = %v, want 4", got)
	}
	r.stop() // as a kill between persisting and uploading

	as, _ := h.anchors(t)
	log, err := rekor.NewRekor(h.url)
	if err != nil {
		t.Fatal(err)
	}
	// The upload the killed sink made just before it died.
	first, err := log.Add(t.Context(), []byte(as[1].Statement), as[1].Signature, h.key.PublicPEM())
	if err != nil {
		t.Fatal(err)
	}

	r = h.run(t, h.url)
	rc, st := h.receipt(t, 1)
	if rc.UUID != first.UUID || rc.LogIndex != first.LogIndex || rc.Anchor.Statement != as[1].Statement {
		t.Errorf("receipt 1 = %s at %d, want the entry already in the log (%s at %d)", rc.UUID, rc.LogIndex, first.UUID, first.LogIndex)
	}
	checkLeaves(t, rc, st, heads(chain))
	r.tick(t0.Add(10 * time.Minute))
	if _, st2 := h.receipt(t, 2); st2.Prev != anchor.Digest([]byte(rc.Anchor.Statement)) {
		t.Error("statement 2 does not chain to statement 1")
	}
}

// The log being out of reach delays receipts, never statements: they are
// made on time, persisted and counted, and once the log is back their
// receipts catch up in order, no index skipped or used twice.
func TestLogOutageDelaysReceiptsOnly(t *testing.T) {
	h := newHarness(t)
	p := newProxy(t, h.url)
	acme := eventtest.Chain(t, "acme", "a", nil, 3)
	h.c.ProduceEvents(t, acme...)
	r := h.run(t, p.url)
	r.tick(t0)
	h.receipt(t, 1)

	p.cut(true)
	more := eventtest.Chain(t, "acme", "b", acme[len(acme)-1], 6)
	for i, at := range []time.Time{t0.Add(10 * time.Minute), t0.Add(20 * time.Minute), t0.Add(30 * time.Minute)} {
		h.c.ProduceEvents(t, more[2*i:2*i+2]...)
		wait.Until(t, "the sink to read two more events", func() bool {
			return r.gauge(t, "ogma_anchor_unanchored_events") == float64(2*(i+1))
		})
		r.tick(at)
	}
	wait.Until(t, "three statements waiting for the log", func() bool { return r.gauge(t, "ogma_anchor_pending_statements") == 3 })
	if _, rs := h.anchors(t); len(rs) != 1 {
		t.Errorf("%d receipts while the log is down, want 1", len(rs))
	}
	success := r.gauge(t, "ogma_anchor_last_success_timestamp_seconds")

	p.cut(false)
	prev := uint64(0)
	for i := uint64(2); i <= 4; i++ {
		rc, st := h.receipt(t, i)
		if rc.LogIndex <= int64(prev) {
			t.Errorf("receipt %d at log index %d, not after %d", i, rc.LogIndex, prev)
		}
		prev = uint64(rc.LogIndex)
		want := heads(append(acme, more[:2*(i-1)]...))
		checkLeaves(t, rc, st, want)
	}
	wait.Until(t, "nothing pending", func() bool { return r.gauge(t, "ogma_anchor_pending_statements") == 0 })
	if r.gauge(t, "ogma_anchor_unanchored_events") != 0 || r.gauge(t, "ogma_anchor_last_success_timestamp_seconds") < success {
		t.Error("the metrics did not catch up")
	}
	as, rs := h.anchors(t)
	if len(as) != 4 || len(rs) != 4 {
		t.Errorf("%d statements, %d receipts: want 4 and 4", len(as), len(rs))
	}
}

// A tenant's chain that does not continue from the head the sink holds (a
// gap, as a broker that lost a record would show) is never anchored past:
// the sink starts over and reads again, and while the gap stays it stays
// loud and states nothing.
func TestChainGapIsNotAnchoredPast(t *testing.T) {
	h := newHarness(t)
	chain := eventtest.Chain(t, "acme", "a", nil, 6)
	h.c.ProduceEvents(t, chain[:3]...)
	r := h.run(t, h.url)
	h.c.ProduceEvents(t, chain[4:]...) // seq 4 is missing
	wait.Until(t, "the gap seen, read again, and seen again", func() bool {
		return r.gauge(t, "ogma_anchor_chain_breaks_total") >= 2 && r.gauge(t, "ogma_anchor_restarts_total") >= 2
	})
	if as, _ := h.anchors(t); len(as) != 0 {
		t.Errorf("%d statements made over a broken chain", len(as))
	}
}

// closedURL returns the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return "http://" + ln.Addr().String()
}

// proxy passes TCP to the log until cut: then it refuses connections and
// drops those open, as a network outage would.
type proxy struct {
	url string
	up  string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func newProxy(t *testing.T, upstream string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &proxy{url: "http://" + ln.Addr().String(), up: upstream[len("http://"):], conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *proxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c] = true
	p.mu.Unlock()
	defer func() { p.mu.Lock(); delete(p.conns, c); p.mu.Unlock(); c.Close() }()
	up, err := net.Dial("tcp", p.up)
	if err != nil {
		return
	}
	defer up.Close()
	go io.Copy(up, c)
	io.Copy(c, up)
}

func (p *proxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

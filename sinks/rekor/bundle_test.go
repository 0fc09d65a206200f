package rekor_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/event/eventtest"
	"github.com/ogma-dev/ogma/sinks/rekor"
)

// evidence is one tenant's bundle in parts, to tamper with and write.
type evidence struct {
	header  anchor.BundleHeader
	anchors []anchor.TenantReceipt
	events  []anchor.BundleEvent
}

func (e evidence) bytes(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := anchor.NewBundleWriter(&buf, e.header)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range e.anchors {
		w.Anchor(a)
	}
	for _, ev := range e.events {
		w.Event(ev)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// clone copies e deeply enough to tamper with one part.
func (e evidence) clone() evidence {
	c := evidence{header: e.header, anchors: slices.Clone(e.anchors), events: slices.Clone(e.events)}
	for i := range c.events {
		c.events[i].Canonical = bytes.Clone(c.events[i].Canonical)
		c.events[i].Data = bytes.Clone(c.events[i].Data)
	}
	return c
}

// anchoredEvidence makes acme's evidence on the real log: 30 events, of
// which statement 1 anchors seq 20, statements 2 and 3 (an idle interval)
// seq 25, and the last 5 are not anchored yet.
func anchoredEvidence(t *testing.T) (*harness, evidence) {
	t.Helper()
	h := newHarness(t)
	chain := eventtest.Chain(t, "acme", "a", nil, 20)
	h.c.ProduceEvents(t, chain...)
	r := h.run(t, h.url)
	r.tick(t0)
	h.receipt(t, 1)
	more := eventtest.Chain(t, "acme", "b", chain[19], 5)
	h.c.ProduceEvents(t, more...)
	wait.Until(t, "5 unanchored", func() bool { return r.gauge(t, "ogma_anchor_unanchored_events") == 5 })
	r.tick(t0.Add(10 * time.Minute))
	h.receipt(t, 2)
	r.tick(t0.Add(20 * time.Minute))
	h.receipt(t, 3)
	chain = append(chain, more...)
	chain = append(chain, eventtest.Chain(t, "acme", "c", more[4], 5)...)

	ev := evidence{header: anchor.BundleHeader{V: 1, Tenant: "acme", FromSeq: 1, Data: true, ExportedAt: "2026-12-01T11:00:00Z"}}
	_, rs := h.anchors(t)
	for i := uint64(1); i <= 3; i++ {
		ev.anchors = append(ev.anchors, rs[i].TenantReceipts()...)
	}
	for _, e := range chain {
		ev.events = append(ev.events, anchor.BundleEvent{Seq: e.Event.Seq, Hash: e.Hash, Canonical: json.RawMessage(e.Canonical),
			Data: e.Data, Salt: e.Salt})
	}
	return h, ev
}

// A bundle verifies offline against the pinned roots, and each way of
// tampering with it fails at the exact first seq it touches: an event's
// field, a data byte, a deleted or swapped event, a replaced receipt, a
// withheld anchor, events cut below an anchor, a bundle re-signed with
// another anchor key or verified against another log's key. A cut tail
// that no anchor covers is reported as fewer unanchored events, never as
// proven past the last anchor.
func TestBundleVerifiesAndTamperingFailsAtItsSeq(t *testing.T) {
	h, ev := anchoredEvidence(t)
	rep, err := rekor.VerifyBundle(t.Context(), bytes.NewReader(ev.bytes(t)), h.roots)
	if err != nil || rep.Failure != nil {
		t.Fatalf("untouched bundle: %v, %+v", err, rep.Failure)
	}
	if rep.Events != 30 || rep.Anchors != 3 || rep.AnchoredSeq != 25 || rep.Unanchored != 5 || rep.LastSeq != 30 {
		t.Errorf("report = %+v, want 30 events, 3 anchors, anchored through 25, 5 unanchored", rep)
	}

	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		name   string
		tamper func(e *evidence)
		roots  func(r rekor.TrustRoots) rekor.TrustRoots
		seq    uint64
		reason string
	}{
		{name: "one field of one event", seq: 7, reason: "hash of its canonical bytes",
			tamper: func(e *evidence) {
				e.events[6].Canonical = bytes.Replace(e.events[6].Canonical, []byte(`"kind":"identity"`), []byte(`"kind":"fact"`), 1)
			}},
		{name: "an event re-hashed after its field changed", seq: 8, reason: "prev does not link",
			tamper: func(e *evidence) {
				e.events[6].Canonical = bytes.Replace(e.events[6].Canonical, []byte(`"kind":"identity"`), []byte(`"kind":"fact"`), 1)
				e.events[6].Hash = event.Hash(e.events[6].Canonical)
			}},
		{name: "one data byte", seq: 9, reason: "data digest",
			tamper: func(e *evidence) {
				e.events[8].Data = bytes.Replace(e.events[8].Data, []byte("user-a"), []byte("user-A"), 1)
			}},
		{name: "a deleted event", seq: 12, reason: "missing",
			tamper: func(e *evidence) { e.events = slices.Delete(e.events, 11, 12) }},
		{name: "two swapped events", seq: 14, reason: "missing",
			tamper: func(e *evidence) { e.events[13], e.events[14] = e.events[14], e.events[13] }},
		{name: "a replaced receipt", seq: 25, reason: "anchor 2",
			tamper: func(e *evidence) {
				e.anchors[1].Entry, e.anchors[1].UUID = e.anchors[0].Entry, e.anchors[0].UUID
				e.anchors[1].LogIndex, e.anchors[1].IntegratedTime = e.anchors[0].LogIndex, e.anchors[0].IntegratedTime
			}},
		{name: "a withheld anchor", seq: 25, reason: "anchors 2 to 2 are missing",
			tamper: func(e *evidence) { e.anchors = slices.Delete(e.anchors, 1, 2) }},
		{name: "events cut below an anchor", seq: 24, reason: "events were cut",
			tamper: func(e *evidence) { e.events = e.events[:23] }},
		{name: "re-signed with another anchor key", seq: 20, reason: "not the pinned",
			tamper: func(e *evidence) {
				for i := range e.anchors {
					st, _ := anchor.ParseStatement([]byte(e.anchors[i].Statement))
					der, _ := x509.MarshalPKIXPublicKey(&attacker.PublicKey)
					st.AnchorKey = anchor.Fingerprint(der)
					e.anchors[i].Statement = string(st.Canonical())
				}
			}},
		{name: "verified against another anchor key", seq: 20, reason: "not the pinned",
			roots: func(r rekor.TrustRoots) rekor.TrustRoots { r.AnchorKey = strings.Repeat("a", 64); return r }},
		{name: "verified against another log's key", seq: 20, reason: "not by the pinned log key",
			roots: func(r rekor.TrustRoots) rekor.TrustRoots { r.LogKey = &attacker.PublicKey; return r }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := ev.clone()
			if tc.tamper != nil {
				tc.tamper(&e)
			}
			roots := h.roots
			if tc.roots != nil {
				roots = tc.roots(roots)
			}
			rep, err := rekor.VerifyBundle(t.Context(), bytes.NewReader(e.bytes(t)), roots)
			if err != nil {
				t.Fatalf("VerifyBundle: %v", err)
			}
			if f := rep.Failure; f == nil || f.Seq != tc.seq || !strings.Contains(f.String(), tc.reason) {
				t.Errorf("failure = %v, want at seq %d saying %q", f, tc.seq, tc.reason)
			}
		})
	}

	t.Run("an unanchored tail cut", func(t *testing.T) {
		e := ev.clone()
		e.events = e.events[:27]
		rep, err := rekor.VerifyBundle(t.Context(), bytes.NewReader(e.bytes(t)), h.roots)
		if err != nil || rep.Failure != nil || rep.Unanchored != 2 || rep.AnchoredSeq != 25 {
			t.Errorf("report = %+v, %v: want proven through 25 and 2 unanchored", rep, err)
		}
	})
	t.Run("without data", func(t *testing.T) {
		e := ev.clone()
		e.header.Data = false
		for i := range e.events {
			e.events[i].Data, e.events[i].Salt = nil, ""
		}
		rep, err := rekor.VerifyBundle(t.Context(), bytes.NewReader(e.bytes(t)), h.roots)
		if err != nil || rep.Failure != nil || rep.Events != 30 {
			t.Errorf("report = %+v, %v", rep, err)
		}
	})
}

// A bundle that cannot be read — cut short, garbage, lines out of place —
// is unusable input with a message saying where, never a failure found
// and never a panic.
func TestUnusableBundles(t *testing.T) {
	ev := evidence{header: anchor.BundleHeader{Tenant: "acme", FromSeq: 1, Data: true}}
	for _, e := range eventtest.Chain(t, "acme", "a", nil, 3) {
		ev.events = append(ev.events, anchor.BundleEvent{Seq: e.Event.Seq, Hash: e.Hash, Canonical: json.RawMessage(e.Canonical), Data: e.Data, Salt: e.Salt})
	}
	good := ev.bytes(t)
	lines := strings.SplitAfter(string(good), "\n")
	cases := map[string]string{
		"empty":                  "",
		"garbage":                "\x00\x01garbage",
		"cut short":              string(good[:len(good)/2]),
		"without its end line":   strings.Join(lines[:len(lines)-2], ""),
		"an end that miscounts":  strings.Join(lines[:len(lines)-2], "") + `{"end":{"anchors":0,"events":9}}` + "\n",
		"no header":              strings.Join(lines[1:], ""),
		"two headers":            lines[0] + strings.Join(lines, ""),
		"a newer version":        strings.Replace(string(good), `"v":1`, `"v":2`, 1),
		"an unknown field":       strings.Replace(string(good), `"data":true`, `"data":true,"x":1`, 1),
		"an anchor after events": strings.Join(lines[:2], "") + `{"anchor":{"index":1}}` + "\n" + strings.Join(lines[2:], ""),
		"lines after the end":    string(good) + lines[1],
	}
	roots := rekor.TrustRoots{AnchorKey: strings.Repeat("a", 64)}
	for name, b := range cases {
		rep, err := rekor.VerifyBundle(t.Context(), strings.NewReader(b), roots)
		if !errors.Is(err, anchor.ErrBundle) {
			t.Errorf("%s: VerifyBundle = %+v, %v; want an unusable bundle", name, rep, err)
		}
	}
	if rep, err := rekor.VerifyBundle(t.Context(), bytes.NewReader(good), roots); err != nil || rep.Failure != nil || rep.Unanchored != 3 {
		t.Errorf("the bundle they were cut from: %+v, %v", rep, err)
	}
}

// FuzzVerifyBundle: no input makes the verifier panic, and whatever it
// accepts as a bundle it reads to a report.
func FuzzVerifyBundle(f *testing.F) {
	ev := evidence{header: anchor.BundleHeader{Tenant: "acme", FromSeq: 1, Data: true}}
	for _, e := range eventtest.Chain(f, "acme", "a", nil, 3) {
		ev.events = append(ev.events, anchor.BundleEvent{Seq: e.Event.Seq, Hash: e.Hash, Canonical: json.RawMessage(e.Canonical), Data: e.Data, Salt: e.Salt})
	}
	var buf bytes.Buffer
	w, _ := anchor.NewBundleWriter(&buf, ev.header)
	w.Anchor(anchor.TenantReceipt{Index: 1, Statement: "{}", Leaf: anchor.Leaf{Tenant: "acme", Seq: 2}, Path: []string{"00"},
		Logged: anchor.Logged{Entry: json.RawMessage(`{}`)}})
	for _, e := range ev.events {
		w.Event(e)
	}
	w.Close()
	f.Add(buf.Bytes())
	f.Add([]byte(`{"bundle":{"v":1,"tenant":"a","from_seq":1}}` + "\n" + `{"end":{"anchors":0,"events":0}}` + "\n"))
	roots := rekor.TrustRoots{AnchorKey: strings.Repeat("a", 64)}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := rekor.VerifyBundle(t.Context(), bytes.NewReader(b), roots)
		if err == nil && rep == nil {
			t.Fatal("no report and no error")
		}
		if err != nil && !errors.Is(err, anchor.ErrBundle) {
			t.Fatalf("an error that is not about the bundle: %v", err)
		}
	})
}

// A manifest is checked against the facts chained for its bucket: a fact
// left out of the chain — the chain re-linked and re-hashed after it, so
// that every hash and prev holds — is found at the manifest. A bundle that
// starts after seq 1 cannot know every fact, and leaves manifests alone.
func TestManifestsCoverTheirFacts(t *testing.T) {
	const salt = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
	type spec struct {
		kind      string
		key, data string
	}
	fact := func(model string) spec {
		return spec{event.Fact, `{"bucket_start":"2026-11-20T00:00:00Z","bucket_width":"1d","endpoint":"completions","group_set":["model"],"model":"` + model + `"}`,
			`{"input_tokens":10,"model":"` + model + `"}`}
	}
	// build seals specs into a chain; a manifest's data is computed from
	// the facts before it, as the processor does.
	build := func(specs []spec) evidence {
		ev := evidence{header: anchor.BundleHeader{Tenant: "acme", FromSeq: 1, Data: true}}
		prev, facts := event.Genesis, map[string]string{}
		for i, s := range specs {
			data := s.data
			if s.kind == event.Manifest {
				keys := slices.Sorted(maps.Keys(facts))
				h := sha256.New()
				for _, k := range keys {
					h.Write([]byte(k + "\n" + facts[k] + "\n"))
				}
				data = fmt.Sprintf(`{"bucket_end":"2026-11-21T00:00:00Z","digest":"%x","rows":%d}`, h.Sum(nil), len(keys))
			}
			rec, err := event.Seal(event.Event{Tenant: "acme", Seq: uint64(i + 1), Prev: prev, Kind: s.kind, Vendor: "openai",
				Stream: "usage.completions", Key: []byte(s.key), ObservedAt: "2026-11-21T02:00:00Z"}, []byte(data), salt, event.Source{})
			if err != nil {
				t.Fatal(err)
			}
			if s.kind == event.Fact {
				facts[s.key] = rec.Event.DataDigest
			}
			prev = rec.Hash
			ev.events = append(ev.events, anchor.BundleEvent{Seq: rec.Event.Seq, Hash: rec.Hash, Canonical: json.RawMessage(rec.Canonical),
				Data: rec.Data, Salt: salt})
		}
		return ev
	}
	manifest := spec{kind: event.Manifest, key: `{"bucket_start":"2026-11-20T00:00:00Z","endpoint":"completions","group_set":["model"]}`}
	whole := build([]spec{fact("a"), fact("b"), fact("c"), manifest})
	roots := rekor.TrustRoots{}
	if rep, err := rekor.VerifyBundle(t.Context(), bytes.NewReader(whole.bytes(t)), roots); err != nil || rep.Failure != nil {
		t.Fatalf("a whole bucket: %+v, %v", rep, err)
	}

	// The manifest as made over three facts, in a chain that holds two.
	short := build([]spec{fact("a"), fact("c"), manifest})
	m := whole.events[3]
	rec, err := event.Seal(event.Event{Tenant: "acme", Seq: 3, Prev: short.events[1].Hash, Kind: event.Manifest, Vendor: "openai",
		Stream: "usage.completions", Key: []byte(manifest.key), ObservedAt: "2026-11-21T02:00:00Z"}, m.Data, salt, event.Source{})
	if err != nil {
		t.Fatal(err)
	}
	short.events[2] = anchor.BundleEvent{Seq: 3, Hash: rec.Hash, Canonical: json.RawMessage(rec.Canonical), Data: rec.Data, Salt: salt}
	rep, err := rekor.VerifyBundle(t.Context(), bytes.NewReader(short.bytes(t)), roots)
	if err != nil || rep.Failure == nil || rep.Failure.Seq != 3 || !strings.Contains(rep.Failure.Reason, "manifest") {
		t.Errorf("a fact left out: %+v, %v; want the manifest at seq 3 to fail", rep.Failure, err)
	}

	from2 := whole.clone()
	from2.header.FromSeq, from2.events = 2, from2.events[1:]
	if rep, err := rekor.VerifyBundle(t.Context(), bytes.NewReader(from2.bytes(t)), roots); err != nil || rep.Failure != nil {
		t.Errorf("a bundle from seq 2: %+v, %v", rep.Failure, err)
	}
}

// The public Sigstore log's key ships pinned: its log id is the one the
// log states in every entry.
func TestPublicSigstoreKeyIsPinned(t *testing.T) {
	k, err := rekor.ParseLogKey(rekor.PublicSigstoreKey)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(k)
	if id := sha256.Sum256(der); hex.EncodeToString(id[:]) != "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d" {
		t.Errorf("the pinned key's log id is %x", id)
	}
}

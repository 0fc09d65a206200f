package rekor

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/normalize"
)

// Report is what verifying a bundle proved, or where it failed.
type Report struct {
	Tenant string
	// Events counts the events checked, FirstSeq to LastSeq.
	Events            int
	FirstSeq, LastSeq uint64
	// Anchors counts the receipts checked; AnchoredSeq is the highest
	// seq a receipt covers, AnchoredAt the time of that statement and
	// LoggedAt when the log integrated it.
	Anchors     int
	AnchoredSeq uint64
	AnchoredAt  string
	LoggedAt    time.Time
	// Covered lists what each anchor covers, by index.
	Covered []Covered
	// Unanchored counts the events after AnchoredSeq: whole and linked,
	// but not yet proven by any log.
	Unanchored int
	// Erased counts events whose data was erased, in a bundle with data.
	Erased int
	// Failure is the first failure by seq, nil when all was proven.
	Failure *Failure
}

// Covered is what one anchor of a bundle covers: the tenant's chain
// through Seq, as stated at Stated and logged at Logged.
type Covered struct {
	Index  uint64
	Seq    uint64
	Stated string
	Logged time.Time
}

// Failure is a check that failed, at the first seq it concerns.
type Failure struct {
	Seq uint64
	// Anchor is the statement index, when an anchor failed.
	Anchor uint64
	Reason string
}

func (f *Failure) String() string {
	if f.Anchor > 0 {
		return fmt.Sprintf("seq %d: anchor %d: %s", f.Seq, f.Anchor, f.Reason)
	}
	return fmt.Sprintf("seq %d: %s", f.Seq, f.Reason)
}

// fail keeps the failure with the lowest seq.
func (r *Report) fail(f Failure) {
	if r.Failure == nil || f.Seq < r.Failure.Seq {
		r.Failure = &f
	}
}

// VerifyBundle checks a bundle offline against the pinned roots: every
// receipt (the statement, its signature with the pinned anchor key, the
// log's entry and proof under the pinned log key, the tenant's leaf and
// path to the statement's root), the anchor chain (indexes without a gap,
// each prev the digest of the statement before), and every event (seq in
// order without a gap, prev linking to the hash before, the hash of the
// canonical bytes, the canonical bytes naming that tenant, seq and prev,
// the data digest where data is present, and the hash each anchor states
// for its seq). An error means the bundle is not usable at all (wraps
// [anchor.ErrBundle]); what fails a check is the report's Failure.
func VerifyBundle(ctx context.Context, r io.Reader, roots TrustRoots) (*Report, error) {
	br, err := anchor.NewBundleReader(r)
	if err != nil {
		return nil, err
	}
	h := br.Header
	rep := &Report{Tenant: h.Tenant}
	anchored := map[uint64]string{} // seq → hash, from the receipts
	var mf *manifests
	if h.FromSeq == 1 {
		mf = &manifests{buckets: map[string]map[string]string{}}
	}
	var last *anchor.TenantReceipt
	var prevHash string
	for {
		rc, ev, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if rc != nil {
			rep.Anchors++
			st, f := checkTenantReceipt(ctx, rc, last, h.Tenant, roots)
			if f != nil {
				rep.fail(*f)
			} else if old, ok := anchored[rc.Leaf.Seq]; ok && old != rc.Leaf.Hash {
				rep.fail(Failure{Seq: rc.Leaf.Seq, Anchor: rc.Index, Reason: "two anchors state two hashes for this seq"})
			}
			anchored[rc.Leaf.Seq] = rc.Leaf.Hash
			c := Covered{Index: rc.Index, Seq: rc.Leaf.Seq, Stated: st.Time, Logged: time.Unix(rc.IntegratedTime, 0).UTC()}
			rep.Covered = append(rep.Covered, c)
			if rc.Leaf.Seq >= rep.AnchoredSeq {
				rep.AnchoredSeq, rep.AnchoredAt, rep.LoggedAt = c.Seq, c.Stated, c.Logged
			}
			last = rc
			continue
		}
		want := h.FromSeq + uint64(rep.Events)
		if rep.Events == 0 {
			rep.FirstSeq = ev.Seq
		}
		rep.Events++
		if f := checkEvent(ev, want, prevHash, h, anchored, mf); f != nil {
			rep.fail(*f)
			if f.Seq == want && ev.Seq != want {
				break // an event missing or out of place: the rest cannot link
			}
		}
		rep.LastSeq, prevHash = ev.Seq, ev.Hash
		if h.Data && len(ev.Data) == 0 {
			rep.Erased++
		}
	}
	if rep.AnchoredSeq > rep.LastSeq && rep.AnchoredSeq >= h.FromSeq {
		rep.fail(Failure{Seq: rep.LastSeq + 1, Reason: fmt.Sprintf("anchored through seq %d, but the events end at seq %d: events were cut", rep.AnchoredSeq, rep.LastSeq)})
	}
	if rep.LastSeq > rep.AnchoredSeq {
		rep.Unanchored = int(rep.LastSeq - max(rep.AnchoredSeq, h.FromSeq-1))
	}
	return rep, nil
}

// checkTenantReceipt checks one receipt of a bundle, and that it follows
// the one before; it returns the statement whenever it parses.
func checkTenantReceipt(ctx context.Context, rc, before *anchor.TenantReceipt, tenant string, roots TrustRoots) (anchor.Statement, *Failure) {
	var st anchor.Statement
	fail := func(format string, a ...any) (anchor.Statement, *Failure) {
		return st, &Failure{Seq: rc.Leaf.Seq, Anchor: rc.Index, Reason: fmt.Sprintf(format, a...)}
	}
	if rc.Leaf.Tenant != tenant {
		return fail("the leaf is tenant %q's", rc.Leaf.Tenant)
	}
	st, err := verifyLogged(ctx, rc.Index, rc.Statement, rc.Logged, roots)
	if err != nil {
		var re *ReceiptError
		if errors.As(err, &re) {
			return fail("%s", re.Reason)
		}
		return fail("%v", err)
	}
	var path [][32]byte
	for _, p := range rc.Path {
		b, err := hex.DecodeString(p)
		if err != nil || len(b) != 32 {
			return fail("the leaf's path holds %q", p)
		}
		path = append(path, [32]byte(b))
	}
	root, _ := hex.DecodeString(st.Root)
	if len(root) != 32 || !anchor.VerifyPath(anchor.LeafHash(rc.Leaf.Bytes()), rc.LeafIndex, st.Size, path, [32]byte(root)) {
		return fail("the tenant's leaf does not lead to the statement's root")
	}
	if before != nil {
		if rc.Index != before.Index+1 {
			return fail("follows anchor %d: anchors %d to %d are missing", before.Index, before.Index+1, rc.Index-1)
		}
		if st.Prev != anchor.Digest([]byte(before.Statement)) {
			return fail("its prev is not the digest of anchor %d", before.Index)
		}
		if rc.Leaf.Seq < before.Leaf.Seq {
			return fail("anchors seq %d after anchor %d anchored seq %d", rc.Leaf.Seq, before.Index, before.Leaf.Seq)
		}
	}
	return st, nil
}

// checkEvent checks one event of a bundle; want is the seq it must have,
// prev the hash of the event before ("" for the first of a bundle that
// starts after seq 1).
func checkEvent(ev *anchor.BundleEvent, want uint64, prev string, h anchor.BundleHeader, anchored map[uint64]string, mf *manifests) *Failure {
	fail := func(format string, a ...any) *Failure {
		return &Failure{Seq: want, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case ev.Seq < want:
		return fail("seq %d comes again, or out of order, where seq %d belongs", ev.Seq, want)
	case ev.Seq > want:
		return fail("missing: the next event in the bundle is seq %d", ev.Seq)
	}
	if got := event.Hash(ev.Canonical); got != ev.Hash {
		return fail("the hash of its canonical bytes is %s, not the %s recorded", got, ev.Hash)
	}
	e, err := event.ParseCanonical(ev.Canonical)
	if err != nil {
		return fail("%v", err)
	}
	switch {
	case e.V != 1:
		return fail("event version %d", e.V)
	case e.Tenant != h.Tenant:
		return fail("the event is tenant %q's", e.Tenant)
	case e.Seq != ev.Seq:
		return fail("the event says seq %d", e.Seq)
	case want == 1 && e.Prev != event.Genesis:
		return fail("the first event's prev is not 64 zeros")
	case prev != "" && e.Prev != prev:
		return fail("its prev does not link to the hash of seq %d", want-1)
	}
	if a, ok := anchored[ev.Seq]; ok && a != ev.Hash {
		return fail("an anchor states another hash for this seq")
	}
	if len(ev.Data) > 0 { // left out, or erased: nothing to check
		dd, err := event.DataDigest(ev.Salt, ev.Data)
		if err != nil {
			return fail("%v", err)
		}
		if dd != e.DataDigest {
			return fail("its data does not have the event's data digest")
		}
	}
	if mf != nil {
		var err error
		switch {
		case e.Kind == event.Fact && normalize.IsReport(e.Vendor, e.Stream):
			err = mf.fact(&e)
		case e.Kind == event.Manifest && len(ev.Data) > 0:
			err = mf.manifest(&e, ev.Data)
		}
		if err != nil {
			return fail("%v", err)
		}
	}
	return nil
}

package clickhouse

import (
	"context"
	"fmt"

	"github.com/ogma-dev/ogma/pipeline/event"
)

// link is the last event of a tenant's chain in the ledger.
type link struct {
	seq  uint64
	hash string
}

// gapError reports that a batch breaks a tenant's chain: the event does not
// follow the ledger's head. The sink reads the batch again before it
// believes it (DESIGN: a consumer of ogma.events never skips a gap).
type gapError struct {
	tenant    string
	head      link
	seq       uint64
	prev      string
	partition int32
	offset    int64
}

func (e *gapError) Error() string {
	return fmt.Sprintf("chain of %s breaks at ogma.events %d/%d: seq %d (prev %.12s…) does not follow the ledger's head %d (%.12s…)",
		e.tenant, e.partition, e.offset, e.seq, e.prev, e.head.seq, e.head.hash)
}

// checkChains verifies that each tenant's events in a batch, in delivery
// order, continue the ledger: seq head+1 whose prev is the head's hash.
// Events at or below the head are repeats, harmless in a ReplacingMergeTree
// (checkHeads catches a different event at a seq). It returns the events to
// write and the heads they lead to, or the first break. A tenant refused
// for a gap keeps only what continues its ledger: nothing past the gap.
func (s *Sink) checkChains(ctx context.Context, events []*event.Record, at map[*event.Record]position) ([]*event.Record, map[string]link, error) {
	next := map[string]link{}
	out := events[:0]
	for _, e := range events {
		t := e.Event.Tenant
		head, ok := next[t]
		if !ok {
			if head, ok = s.heads[t]; !ok {
				h, err := s.store.head(ctx, t)
				if err != nil {
					return nil, nil, err
				}
				head = h
			}
		}
		if !follows(e, head) {
			// Another sink instance may have written the tenant since: the
			// ledger's own head decides.
			h, err := s.store.head(ctx, t)
			if err != nil {
				return nil, nil, err
			}
			head = h
		}
		switch {
		case follows(e, head):
		case s.broken[t]:
			next[t] = head
			continue
		default:
			return nil, nil, &gapError{tenant: t, head: head, seq: e.Event.Seq, prev: e.Event.Prev,
				partition: at[e].partition, offset: at[e].offset}
		}
		if e.Event.Seq > head.seq {
			head = link{e.Event.Seq, e.Hash}
		}
		next[t] = head
		out = append(out, e)
	}
	return out, next, nil
}

// follows reports whether e continues a chain whose head is h, or repeats
// an event at or below it.
func follows(e *event.Record, h link) bool {
	return e.Event.Seq <= h.seq || e.Event.Seq == h.seq+1 && e.Event.Prev == h.hash
}

// position is where a record was read.
type position struct {
	partition int32
	offset    int64
}

// head reads a tenant's last event in the ledger; an empty ledger's head
// is seq 0 with the genesis hash.
func (s *Store) head(ctx context.Context, tenant string) (link, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, "SELECT seq, hash FROM events WHERE tenant = ? ORDER BY seq DESC LIMIT 1", tenant)
	if err != nil {
		return link{}, fmt.Errorf("read ledger head of %s: %w", tenant, err)
	}
	defer rows.Close()
	h := link{hash: event.Genesis}
	if rows.Next() {
		if err := rows.Scan(&h.seq, &h.hash); err != nil {
			return link{}, fmt.Errorf("read ledger head of %s: %w", tenant, err)
		}
	}
	return h, rows.Err()
}

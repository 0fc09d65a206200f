// Package poll runs the vendor streams of every tenant with a sealed key:
// it spreads tenants over connector instances by a consumer group on
// ogma.control, polls each stream on its schedule, and writes each fetched
// page together with the stream's new cursor in one Kafka transaction.
//
// A page is fetched with no transaction open; only then are its raw records
// (ogma.raw) and the cursor (ogma.cursors) produced in one transaction. A
// failure anywhere before the commit leaves the cursor where it was, so the
// page is fetched again, and a read-committed reader never sees a record
// twice. Each owned partition has its own transactional id, so an instance
// that takes a partition over fences the previous owner.
package poll

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/seal"
)

// ErrKeyInvalid is matched (errors.Is) by a vendor error saying the key is
// malformed, revoked or unknown: the integration turns key_invalid and its
// streams stop until a new key is connected.
var ErrKeyInvalid = errors.New("poll: the vendor rejected the key")

// scoped is a vendor error naming scopes the key lacks: the stream is
// skipped, its cursor untouched.
type scoped interface{ Scopes() []string }

// throttled is a vendor error asking to back off (429): every stream of the
// tenant waits that long, and other tenants go on.
type throttled interface{ Backoff() time.Duration }

// maxBackoff bounds a vendor's Retry-After.
const maxBackoff = time.Hour

// Stream is one vendor stream (usage of one endpoint, a directory list).
// Implementations are safe for concurrent use by many tenants.
type Stream interface {
	// Name is the stream's name in envelopes and cursors, e.g. "usage.completions".
	Name() string
	// Poll reads what is new for req.Tenant since req.Cursor, calling emit
	// once per fetched page with that page's raw records and the cursor
	// after it. emit commits the page; Poll must not fetch the next page
	// before emit returns, and stops at emit's first error. Poll returns
	// after the last page, or with the first error.
	Poll(ctx context.Context, req Request, emit func(Page) error) error
}

// Request is one poll of one stream for one tenant.
type Request struct {
	Tenant string
	Key    seal.Secret
	// Cursor is the stream's cursor as last committed; on the first poll it
	// has only Origin set.
	Cursor Cursor
	// Now is the connector's clock; fetched_at and the poll window come from it.
	Now func() time.Time
}

// Page is what one fetched vendor page gives: raw records to publish, the
// cursor to commit with them, and capability flags the page showed true.
type Page struct {
	Records  []*envelope.Raw
	Cursor   Cursor
	Observed control.Observed
}

// Scheduled is a stream with its cadence.
type Scheduled struct {
	Stream Stream
	// Every is the time between two polls of the stream for one tenant.
	Every time.Duration
}

// Cursor is where a stream of one tenant stands. It is stored in
// ogma.cursors under "<tenant>/<vendor>/<stream>".
type Cursor struct {
	Tenant string `json:"tenant"`
	Vendor string `json:"vendor"`
	Stream string `json:"stream"`
	// Origin is where the stream's history begins: the day of the first
	// connect minus the backfill window.
	Origin time.Time `json:"origin"`
	// WindowStart is the start of the first report bucket never read; the
	// backfill is done once it passes the trailing window.
	WindowStart time.Time `json:"window_start,omitzero"`
	// WindowEnd is the (frozen) end of the last report read.
	WindowEnd time.Time `json:"window_end,omitzero"`
	// AfterID is where a list walk in progress continues.
	AfterID string `json:"after_id,omitempty"`
	// State is "backfill" or "live" for reports, "walking" or "idle" for lists.
	State string `json:"state"`
	// Snapshot is the id of the list walk in progress, and Count the objects
	// it has listed so far.
	Snapshot string `json:"snapshot,omitempty"`
	Count    int    `json:"count,omitempty"`
	// Rows counts the raw records committed for the stream.
	Rows int64 `json:"rows,omitempty"`
	// Digests maps each bucket start of the trailing window (Unix seconds)
	// to the digest of its rows as last published.
	Digests map[int64]string `json:"digests,omitempty"`
}

// Key returns the cursor's ogma.cursors key.
func (c Cursor) Key() string { return c.Tenant + "/" + c.Vendor + "/" + c.Stream }

func (c Cursor) marshal() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic("poll: marshal cursor: " + err.Error()) // plain struct
	}
	return b
}

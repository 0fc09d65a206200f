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
	"github.com/ogma-dev/ogma/pipeline/stream"
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
	Cursor stream.Cursor
	// Now is the connector's clock; fetched_at and the poll window come from it.
	Now func() time.Time
}

// Page is what one fetched vendor page gives: raw records to publish, the
// cursor to commit with them, and capability flags the page showed true.
type Page struct {
	Records  []*envelope.Raw
	Cursor   stream.Cursor
	Observed control.Observed
}

// Scheduled is a stream with its cadence.
type Scheduled struct {
	Stream Stream
	// Every is the time between two polls of the stream for one tenant.
	Every time.Duration
}

func marshalCursor(c stream.Cursor) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic("poll: marshal cursor: " + err.Error()) // plain struct
	}
	return b
}

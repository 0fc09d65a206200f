package stream

import "time"

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

// ID returns the cursor's stream.
func (c Cursor) ID() ID { return ID{Tenant: c.Tenant, Vendor: c.Vendor, Stream: c.Stream} }

// Key returns the cursor's ogma.cursors key.
func (c Cursor) Key() string { return c.ID().Key() }

// Package envelope defines the records of ogma.raw: one vendor object as
// received, wrapped with where and when it came from.
//
// Report streams (usage, costs) publish per bucket: one record per result row
// of a bucket, each naming the bucket and its row count, or one record with
// no data for a bucket that came back empty — so that a bucket's coverage,
// empty days included, is provable downstream. List streams (the directory)
// bracket a complete walk between a begin and an end marker of one snapshot,
// so that an object missing from a complete walk can be told apart from one
// not yet read. Log streams (audit logs) carry neither: each record is one
// event, identified by its id.
package envelope

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Version is the envelope version this package writes.
const Version = 1

// Raw is one record of ogma.raw.
type Raw struct {
	V      int    `json:"v"`
	Tenant string `json:"tenant"`
	Vendor string `json:"vendor"`
	Stream string `json:"stream"`
	// Request is the vendor request the object came from, without any key.
	Request Request `json:"request"`
	// FetchedAt is when the connector received the response; downstream it
	// is the event's observed_at and the clock of settlement.
	FetchedAt time.Time `json:"fetched_at"`
	// Salt is 32 random bytes, hex, drawn by the connector so that the
	// processor stays pure: the event's data_digest is SHA-256(salt ‖ JCS(data)).
	Salt string `json:"salt"`
	// Bucket is set on report streams.
	Bucket *Bucket `json:"bucket,omitempty"`
	// GroupSet is the sorted group_by dimensions of a report request.
	GroupSet []string `json:"group_set,omitempty"`
	// Snapshot is set on list streams.
	Snapshot *Snapshot `json:"snapshot,omitempty"`
	// Data is the vendor's object exactly as received; absent on markers and
	// empty buckets.
	Data json.RawMessage `json:"data,omitempty"`
}

// Request is a vendor request: path and encoded query. It never holds a key:
// vendors take keys in headers only.
type Request struct {
	Path  string `json:"path"`
	Query string `json:"query"`
}

// Bucket places a report row: the bucket's start and end (Unix seconds, end
// exclusive), its width, how many rows the vendor returned for it, and this
// row's index. An empty bucket has Rows 0 and a record without data.
type Bucket struct {
	Start int64  `json:"start"`
	End   int64  `json:"end"`
	Width string `json:"width"`
	Rows  int    `json:"rows"`
	Row   int    `json:"row"`
}

// Snapshot markers.
const (
	Begin = "begin" // a walk starts; no data
	Item  = "item"  // one object of the walk
	End   = "end"   // the walk completed; Count objects were listed
)

// Snapshot places a directory object within a complete list walk.
type Snapshot struct {
	ID     string `json:"id"`
	Marker string `json:"marker"`
	Count  int    `json:"count,omitempty"`
}

// NewSalt returns 32 random bytes, hex.
func NewSalt() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// ID returns the stream r belongs to.
func (r *Raw) ID() stream.ID { return stream.ID{Tenant: r.Tenant, Vendor: r.Vendor, Stream: r.Stream} }

// Key returns the record key of r: its identity within the tenant's stream.
func (r *Raw) Key() string {
	k := r.ID().Key()
	switch {
	case r.Bucket != nil:
		return k + "/" + strconv.FormatInt(r.Bucket.Start, 10) + "/" + strconv.Itoa(r.Bucket.Row)
	case r.Snapshot != nil:
		return k + "/" + r.Snapshot.ID + "/" + r.Snapshot.Marker + "/" + objectID(r.Data)
	}
	return k + "/" + objectID(r.Data)
}

func objectID(data json.RawMessage) string {
	var o struct {
		ID string `json:"id"`
	}
	if len(data) > 0 && json.Unmarshal(data, &o) == nil {
		return o.ID
	}
	return ""
}

// Marshal returns r's JSON.
func (r *Raw) Marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("envelope: marshal: %v", err)) // plain struct, valid RawMessage
	}
	return b
}

// Decode parses an ogma.raw record value and checks what every consumer
// relies on. Its errors say what is wrong, for the deadletter reason. The
// result's Data may share b's memory: b must not change while it is used.
func Decode(b []byte) (*Raw, error) {
	r, ok := decodeFast(b, &Raw{})
	return check(b, r, ok)
}

// check decodes b through encoding/json unless the direct decoder read it
// (ok), then checks the result.
func check(b []byte, r *Raw, ok bool) (*Raw, error) {
	if !ok {
		r = &Raw{}
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("envelope: %w", err)
		}
	}
	switch {
	case r.V != Version:
		return nil, fmt.Errorf("envelope: version %d, want %d", r.V, Version)
	case r.Tenant == "" || r.Vendor == "" || r.Stream == "":
		return nil, errors.New("envelope: tenant, vendor and stream are required")
	case r.FetchedAt.IsZero():
		return nil, errors.New("envelope: fetched_at is required")
	case len(r.Salt) != 64:
		return nil, fmt.Errorf("envelope: salt is %d hex digits, want 64", len(r.Salt))
	}
	for i := 0; i < len(r.Salt); i++ {
		if c := r.Salt[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return nil, fmt.Errorf("envelope: salt: invalid hex digit %q", c)
		}
	}
	return r, nil
}

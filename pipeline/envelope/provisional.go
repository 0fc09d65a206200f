package envelope

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/pipeline/stream"
)

// Provisional is the value of an ogma.provisional record: an open bucket,
// served flagged and never chained.
type Provisional struct {
	Tenant    string            `json:"tenant"`
	Vendor    string            `json:"vendor"`
	Stream    string            `json:"stream"`
	Bucket    Bucket            `json:"bucket"`
	GroupSet  []string          `json:"group_set"`
	FetchedAt time.Time         `json:"fetched_at"`
	Rows      []json.RawMessage `json:"rows"`
	// RowsOmitted counts rows left out of a bucket too large for one
	// record: the rest of it shows once it is settled.
	RowsOmitted int `json:"rows_omitted,omitempty"`
}

// ProvisionalKey returns the ogma.provisional key of the bucket of stream
// id starting at start (Unix seconds): "<tenant>/<vendor>/<stream>/<start>".
func ProvisionalKey(id stream.ID, start int64) []byte {
	return []byte(id.Key() + "/" + strconv.FormatInt(start, 10))
}

// ParseProvisionalKey reads an ogma.provisional key.
func ParseProvisionalKey(key []byte) (stream.ID, time.Time, error) {
	id, rest, err := stream.ParseKey(string(key))
	if err != nil {
		return id, time.Time{}, fmt.Errorf("provisional key: %w", err)
	}
	start, err := strconv.ParseInt(strings.TrimPrefix(rest, "/"), 10, 64)
	if err != nil || rest == "" {
		return id, time.Time{}, fmt.Errorf("provisional key %q: no bucket start", key)
	}
	return id, time.Unix(start, 0).UTC(), nil
}

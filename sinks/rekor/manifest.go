package rekor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ogma-dev/ogma/pipeline/event"
)

// manifests checks each manifest event against the facts of its bucket.
// A manifest records, when a report bucket settles or is restated, how
// many rows the vendor returned and
// hex(SHA-256(Σ key ‖ "\n" ‖ data_digest ‖ "\n")) over their fact keys in
// key order, each with the data digest of its latest revision. The checker
// keeps the latest data digest of every fact key by bucket, so it needs
// the chain from its first event, and the manifests' data.
type manifests struct {
	buckets map[string]map[string]string // bucket → fact key → data digest
}

// bucketKey is what identifies a report bucket in a fact's or a
// manifest's key.
type bucketKey struct {
	BucketStart string   `json:"bucket_start"`
	GroupSet    []string `json:"group_set"`
}

func bucketOf(e *event.Event) (string, error) {
	var k bucketKey
	if err := json.Unmarshal(e.Key, &k); err != nil || k.BucketStart == "" {
		return "", fmt.Errorf("a %s event whose key names no bucket", e.Kind)
	}
	set, _ := json.Marshal(k.GroupSet)
	return e.Vendor + "\x00" + e.Stream + "\x00" + k.BucketStart + "\x00" + string(set), nil
}

// fact records a fact event's data digest under its bucket.
func (m *manifests) fact(e *event.Event) error {
	b, err := bucketOf(e)
	if err != nil {
		return err
	}
	if m.buckets[b] == nil {
		m.buckets[b] = map[string]string{}
	}
	m.buckets[b][string(e.Key)] = e.DataDigest
	return nil
}

// manifest checks a manifest event, whose data is data, against the facts
// of its bucket so far.
func (m *manifests) manifest(e *event.Event, data []byte) error {
	b, err := bucketOf(e)
	if err != nil {
		return err
	}
	var md struct {
		Rows   int    `json:"rows"`
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal(data, &md); err != nil {
		return fmt.Errorf("the manifest's data: %v", err)
	}
	facts := m.buckets[b]
	keys := make([]string, 0, len(facts))
	for k := range facts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{'\n'})
		h.Write([]byte(facts[k]))
		h.Write([]byte{'\n'})
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != md.Digest || len(keys) > md.Rows {
		return fmt.Errorf("the manifest of bucket %s %s (%d rows) does not match the %d facts chained for it",
			e.Stream, string(e.Key), md.Rows, len(keys))
	}
	return nil
}

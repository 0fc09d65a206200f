package anchor

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/topic"
)

// ogma.anchors holds, on its one partition, two records per statement,
// keyed by kind and index so that compaction keeps both:
//
//	anchor/<index>   → Anchor, written before the upload
//	receipt/<index>  → Receipt, once the log has the entry
//
// The index is zero-padded to 20 digits, so keys sort as indexes do.

// Anchor is a signed statement as persisted before it is uploaded, with
// what it covers.
type Anchor struct {
	Index uint64 `json:"index"`
	// Statement is the exact canonical statement bytes that were signed.
	Statement string `json:"statement"`
	// Signature is the ASN.1 ECDSA signature over SHA-256(Statement).
	Signature []byte `json:"signature"`
	// Leaves are the tenants' heads the tree was built of, by tenant.
	Leaves []Leaf `json:"leaves"`
	// Offsets is, per ogma.events partition, the next offset the leaves
	// have not read: where anchoring resumes after this statement.
	Offsets map[int32]int64 `json:"offsets"`
}

// Receipt is an anchor and the log's entry of it.
type Receipt struct {
	Anchor Anchor `json:"anchor"`
	Logged
}

// Logged is where a log recorded a statement: the log, and its entry.
type Logged struct {
	// Log is the kind of log ("rekor-v1"); URL where it was reached.
	Log string `json:"log"`
	URL string `json:"url"`
	// UUID, LogIndex and IntegratedTime are read from Entry, for readers
	// that do not parse it.
	UUID           string `json:"uuid"`
	LogIndex       int64  `json:"log_index"`
	IntegratedTime int64  `json:"integrated_time"`
	// Entry is the log's entry as it answered: for Rekor v1 the
	// LogEntryAnon — body, integratedTime, logID, logIndex and
	// verification (inclusion proof, checkpoint, signed entry timestamp).
	Entry json.RawMessage `json:"entry"`
}

// LogRekorV1 names a Rekor v1 log in [Logged.Log].
const LogRekorV1 = "rekor-v1"

func indexKey(kind string, index uint64) []byte {
	return fmt.Appendf(nil, "%s/%020d", kind, index)
}

// Record returns the ogma.anchors record of a.
func (a Anchor) Record() *kgo.Record {
	b, _ := json.Marshal(a)
	return &kgo.Record{Topic: topic.Anchors, Partition: 0, Key: indexKey("anchor", a.Index), Value: b}
}

// Record returns the ogma.anchors record of r.
func (r Receipt) Record() *kgo.Record {
	b, _ := json.Marshal(r)
	return &kgo.Record{Topic: topic.Anchors, Partition: 0, Key: indexKey("receipt", r.Anchor.Index), Value: b}
}

// Decoded is one ogma.anchors record read: an anchor or a receipt.
type Decoded struct {
	Anchor  *Anchor
	Receipt *Receipt
}

// Decode reads an ogma.anchors record. Keys of other kinds decode to
// nothing, for records a later version adds.
func Decode(r *kgo.Record) (Decoded, error) {
	kind, idx, _ := strings.Cut(string(r.Key), "/")
	if kind != "anchor" && kind != "receipt" {
		return Decoded{}, nil
	}
	index, err := strconv.ParseUint(idx, 10, 64)
	if err != nil {
		return Decoded{}, fmt.Errorf("ogma.anchors record %q at %d: %w", r.Key, r.Offset, err)
	}
	var d Decoded
	switch kind {
	case "anchor":
		d.Anchor = new(Anchor)
		err = json.Unmarshal(r.Value, d.Anchor)
		if err == nil && d.Anchor.Index != index {
			err = fmt.Errorf("holds index %d", d.Anchor.Index)
		}
	case "receipt":
		d.Receipt = new(Receipt)
		err = json.Unmarshal(r.Value, d.Receipt)
		if err == nil && d.Receipt.Anchor.Index != index {
			err = fmt.Errorf("holds index %d", d.Receipt.Anchor.Index)
		}
	}
	if err != nil {
		return Decoded{}, fmt.Errorf("ogma.anchors record %q at %d: %w", r.Key, r.Offset, err)
	}
	return d, nil
}

// TenantReceipts splits r into one receipt per tenant leaf, each with the
// leaf's path to the root and without the other tenants' leaves.
func (r Receipt) TenantReceipts() []TenantReceipt {
	hashes := Hashes(r.Anchor.Leaves)
	out := make([]TenantReceipt, len(r.Anchor.Leaves))
	for i, l := range r.Anchor.Leaves {
		var path []string
		for _, h := range Path(hashes, i) {
			path = append(path, hex.EncodeToString(h[:]))
		}
		out[i] = TenantReceipt{Index: r.Anchor.Index, Statement: r.Anchor.Statement, Signature: r.Anchor.Signature,
			Leaf: l, LeafIndex: i, Path: path, Logged: r.Logged}
	}
	return out
}

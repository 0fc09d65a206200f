// Package anchor defines what ties the chains to a transparency log: the
// leaf of a tenant's chain head, the RFC 6962 tree over every tenant's
// leaf, the signed anchor statement, the records of ogma.anchors, and the
// installation anchor key that signs the statements.
//
// Every interval the rekor sink folds the heads of every tenant into one
// tree and signs one statement over its root, chained to the statement
// before through prev; the statement's SHA-256 is what the log records, so
// the log learns nothing about tenants or activity. A tenant's receipt is
// the statement, its leaf's path to the root, and the log's entry.
package anchor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ogma-dev/ogma/pipeline/event"
)

// Kind is the statement's kind.
const Kind = "ogma-anchor"

// Genesis is the prev of the first statement.
var Genesis = strings.Repeat("0", 64)

// Leaf is one tenant's chain head as anchored.
type Leaf struct {
	Tenant string `json:"tenant"`
	Seq    uint64 `json:"seq"`
	Hash   string `json:"hash"`
}

// Bytes returns JCS({"tenant","seq","hash"}): what the tree hashes.
func (l Leaf) Bytes() []byte {
	b, _ := json.Marshal(l) // strings and a number: never fails
	c, err := event.Canonicalize(b)
	if err != nil {
		panic(fmt.Sprintf("anchor: canonicalize a leaf: %v", err)) // json.Marshal's output is valid JSON
	}
	return c
}

// Hashes returns the RFC 6962 leaf hashes of leaves, which must be sorted
// by tenant.
func Hashes(leaves []Leaf) [][32]byte {
	hs := make([][32]byte, len(leaves))
	for i, l := range leaves {
		hs[i] = LeafHash(l.Bytes())
	}
	return hs
}

// SortLeaves sorts leaves by tenant, the order of the tree.
func SortLeaves(leaves []Leaf) {
	slices.SortFunc(leaves, func(a, b Leaf) int { return strings.Compare(a.Tenant, b.Tenant) })
}

// Statement is what the anchor key signs each interval. Its canonical
// bytes (JCS) are signed and logged; see [Statement.Canonical].
type Statement struct {
	V int    `json:"v"`
	K string `json:"kind"`
	// AnchorKey is the hex SHA-256 of the anchor public key (PKIX DER).
	AnchorKey string `json:"anchor_key"`
	Index     uint64 `json:"index"`
	// Root is the hex root of the tree over every tenant's leaf; Size its
	// number of leaves.
	Root string `json:"root"`
	Size int    `json:"size"`
	// Prev is the hex SHA-256 of the canonical statement Index-1 (Genesis
	// for the first), so a withheld statement breaks the chain.
	Prev string `json:"prev"`
	Time string `json:"time"`
}

// NewStatement returns statement index over leaves (sorted by tenant),
// made at t.
func NewStatement(anchorKey string, index uint64, leaves []Leaf, prev string, t time.Time) Statement {
	root := Root(Hashes(leaves))
	return Statement{V: 1, K: Kind, AnchorKey: anchorKey, Index: index, Root: hex.EncodeToString(root[:]),
		Size: len(leaves), Prev: prev, Time: t.UTC().Format(time.RFC3339)}
}

// Canonical returns the JCS bytes of s: exactly what is signed and logged.
func (s Statement) Canonical() []byte {
	b, _ := json.Marshal(s)
	c, err := event.Canonicalize(b)
	if err != nil {
		panic(fmt.Sprintf("anchor: canonicalize a statement: %v", err))
	}
	return c
}

// Digest returns the hex SHA-256 of canonical statement bytes: the next
// statement's prev, and the hash the log records.
func Digest(statement []byte) string {
	d := sha256.Sum256(statement)
	return hex.EncodeToString(d[:])
}

// ParseStatement reads canonical statement bytes, refusing any that are
// not exactly the canonical form of what they hold.
func ParseStatement(b []byte) (Statement, error) {
	var s Statement
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Statement{}, fmt.Errorf("anchor statement: %w", err)
	}
	if s.V != 1 || s.K != Kind {
		return Statement{}, fmt.Errorf("anchor statement: v %d, kind %q: want 1, %q", s.V, s.K, Kind)
	}
	if string(s.Canonical()) != string(b) {
		return Statement{}, fmt.Errorf("anchor statement: not in canonical form")
	}
	return s, nil
}

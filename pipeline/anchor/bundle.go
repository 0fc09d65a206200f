package anchor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// An evidence bundle is what a third party needs to verify one tenant's
// chain offline: JSON Lines, one object per line, in this order —
//
//	{"bundle":{"v":1,"tenant":"acme","from_seq":1,"data":true,"exported_at":"…"}}
//	{"anchor":{…}}   each statement that anchors the tenant, by index: a TenantReceipt
//	{"event":{…}}    each event from from_seq on, by seq: a BundleEvent
//	{"end":{"anchors":n,"events":m}}
//
// Anchors come first so that a verifier streams the events, holding only
// the anchored hashes; the end line makes a cut bundle evident.

// BundleVersion is the version of the bundle format.
const BundleVersion = 1

// BundleHeader is the first line of a bundle.
type BundleHeader struct {
	V      int    `json:"v"`
	Tenant string `json:"tenant"`
	// FromSeq is the first event's seq; events before it are left out.
	FromSeq uint64 `json:"from_seq"`
	// Data says whether events carry their data and salt.
	Data       bool   `json:"data"`
	ExportedAt string `json:"exported_at"`
}

// TenantReceipt is one tenant's receipt of a statement: the statement and
// its signature, the tenant's leaf and its path to the root, and the log's
// entry — not the other tenants' leaves.
type TenantReceipt struct {
	Index     uint64 `json:"index"`
	Statement string `json:"statement"`
	Signature []byte `json:"signature"`
	Leaf      Leaf   `json:"leaf"`
	LeafIndex int    `json:"leaf_index"`
	// Path is the leaf's inclusion path (hex hashes, from its sibling up).
	Path []string `json:"path"`
	Logged
}

// BundleEvent is one event of a bundle: its exact canonical bytes (inline),
// its hash, and — unless the bundle leaves data out — its data and salt.
type BundleEvent struct {
	Seq       uint64          `json:"seq"`
	Hash      string          `json:"hash"`
	Canonical json.RawMessage `json:"canonical"`
	Data      json.RawMessage `json:"data,omitempty"`
	Salt      string          `json:"salt,omitempty"`
}

// BundleEnd is the last line of a bundle.
type BundleEnd struct {
	Anchors int `json:"anchors"`
	Events  int `json:"events"`
}

type bundleLine struct {
	Bundle *BundleHeader  `json:"bundle,omitempty"`
	Anchor *TenantReceipt `json:"anchor,omitempty"`
	Event  *BundleEvent   `json:"event,omitempty"`
	End    *BundleEnd     `json:"end,omitempty"`
}

// BundleWriter writes a bundle line by line.
type BundleWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
	end BundleEnd
}

// NewBundleWriter starts a bundle on w with its header.
func NewBundleWriter(w io.Writer, h BundleHeader) (*BundleWriter, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	// The canonical bytes must pass through exactly as they were hashed.
	enc.SetEscapeHTML(false)
	h.V = BundleVersion
	return &BundleWriter{w: bw, enc: enc}, enc.Encode(bundleLine{Bundle: &h})
}

// Anchor writes a tenant receipt; every anchor precedes every event.
func (b *BundleWriter) Anchor(r TenantReceipt) error {
	b.end.Anchors++
	return b.enc.Encode(bundleLine{Anchor: &r})
}

// Event writes an event.
func (b *BundleWriter) Event(e BundleEvent) error {
	b.end.Events++
	return b.enc.Encode(bundleLine{Event: &e})
}

// Close writes the end line and flushes.
func (b *BundleWriter) Close() error {
	if err := b.enc.Encode(bundleLine{End: &b.end}); err != nil {
		return err
	}
	return b.w.Flush()
}

// MaxBundleLine bounds one line of a bundle: an event is at most 1 MiB in
// Kafka, its data beside it as much again.
const MaxBundleLine = 4 << 20

// ErrBundle is wrapped by every error about a bundle's form (not its
// content): a verifier answers such a bundle as unusable input.
var ErrBundle = errors.New("not a usable bundle")

// BundleReader reads a bundle line by line, checking its form: the header
// first, anchors before events, the end line last and its counts right.
type BundleReader struct {
	s      *bufio.Scanner
	line   int
	Header BundleHeader
	seen   BundleEnd
	phase  int // 0 anchors, 1 events, 2 ended
}

// NewBundleReader reads the header of the bundle on r.
func NewBundleReader(r io.Reader) (*BundleReader, error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 1<<16), MaxBundleLine)
	br := &BundleReader{s: s}
	l, err := br.next()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: it is empty", ErrBundle)
	}
	if err != nil {
		return nil, err
	}
	if l.Bundle == nil {
		return nil, br.errorf("the first line is not a bundle header")
	}
	if l.Bundle.V != BundleVersion {
		return nil, br.errorf("bundle version %d: this verifier reads version %d", l.Bundle.V, BundleVersion)
	}
	if l.Bundle.Tenant == "" || l.Bundle.FromSeq == 0 {
		return nil, br.errorf("the header names no tenant or no from_seq")
	}
	br.Header = *l.Bundle
	return br, nil
}

func (br *BundleReader) errorf(format string, a ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrBundle, br.line, fmt.Sprintf(format, a...))
}

func (br *BundleReader) next() (bundleLine, error) {
	var l bundleLine
	if !br.s.Scan() {
		if err := br.s.Err(); errors.Is(err, bufio.ErrTooLong) {
			return l, fmt.Errorf("%w: line %d is longer than %d bytes", ErrBundle, br.line+1, MaxBundleLine)
		} else if err != nil {
			return l, fmt.Errorf("read bundle: %w", err)
		}
		return l, io.EOF
	}
	br.line++
	dec := json.NewDecoder(bytes.NewReader(br.s.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return l, br.errorf("%v", err)
	}
	if dec.More() {
		return l, br.errorf("more than one value")
	}
	n := 0
	for _, set := range []bool{l.Bundle != nil, l.Anchor != nil, l.Event != nil, l.End != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return l, br.errorf("want one of bundle, anchor, event or end")
	}
	return l, nil
}

// Next returns the next anchor or event; after the end line it returns
// io.EOF. A bundle that stops before its end line is an error.
func (br *BundleReader) Next() (*TenantReceipt, *BundleEvent, error) {
	if br.phase == 2 {
		if _, err := br.next(); err != io.EOF {
			return nil, nil, br.errorf("lines after the end line")
		}
		return nil, nil, io.EOF
	}
	l, err := br.next()
	switch {
	case err == io.EOF:
		return nil, nil, fmt.Errorf("%w: it stops after line %d, without its end line: cut short?", ErrBundle, br.line)
	case err != nil:
		return nil, nil, err
	case l.Bundle != nil:
		return nil, nil, br.errorf("a second header")
	case l.Anchor != nil:
		if br.phase != 0 {
			return nil, nil, br.errorf("an anchor after the events")
		}
		br.seen.Anchors++
		return l.Anchor, nil, nil
	case l.Event != nil:
		br.phase = 1
		br.seen.Events++
		return nil, l.Event, nil
	default:
		if *l.End != br.seen {
			return nil, nil, br.errorf("the end line counts %d anchors and %d events, the bundle holds %d and %d",
				l.End.Anchors, l.End.Events, br.seen.Anchors, br.seen.Events)
		}
		br.phase = 2
		return br.Next()
	}
}

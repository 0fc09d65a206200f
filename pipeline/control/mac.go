package control

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Records that grant access — tenants, integrations, tokens — are signed:
// whoever may produce to ogma.control (a connector's principal, say) must
// not be able to mint a token or swap an integration. The tag is an
// HMAC-SHA256 under a key derived from the master key ([seal.Keyring.MAC])
// over the record's key and value, carried in the MACHeader header as
// "1:<master key id>:<hex tag>". Tombstones are signed too: an unsigned
// delete of a token or of the marker below is refused like an unsigned
// record.
//
// Installations from before signing hold unsigned records. [Protect]
// re-signs them once and then writes a signed marker (SignedKey) on every
// partition; on a partition past its marker, readers refuse every unsigned
// access record. Before the marker they accept one, and drop it when the
// marker arrives unless it was signed since.
const (
	// MACHeader is the record header holding an ogma.control record's tag.
	MACHeader = "ogma-mac"
	// SignedKey is the key of the marker that turns signing on for the
	// partition it is on.
	SignedKey = "installation/signed"
	// AnchorKeyKey is the key of the installation anchor key (package
	// anchor): always signed, since it came after signing.
	AnchorKeyKey = "installation/anchor-key"
)

// ErrUnsigned is returned for an access record without a tag on a
// partition where signing is on.
var ErrUnsigned = errors.New("unsigned record where every access record is signed")

// signed reports whether a record with this key must carry a tag to count.
func signed(key string) bool {
	kind, _, _ := strings.Cut(key, "/")
	return kind == "tenant" || kind == "integration" || kind == "token" || kind == "generation" || key == SignedKey || key == AnchorKeyKey
}

// Authentic returns nil if r carries a tag that checks under kr, for
// readers of a record that is always signed.
func Authentic(kr *seal.Keyring, r *kgo.Record) error {
	tagged, err := checkTag(kr, r)
	if err == nil && !tagged {
		err = ErrUnsigned
	}
	return err
}

// macMessage is what a tag covers: a label, the key (length first, so no
// key/value split is ambiguous), and the value or its absence.
func macMessage(key, value []byte) []byte {
	m := append([]byte("ogma.control v1\n"), binary.AppendUvarint(nil, uint64(len(key)))...)
	m = append(m, key...)
	if value == nil {
		return append(m, 0)
	}
	return append(append(m, 1), value...)
}

// Sign sets r's tag under kr, replacing any it had.
func Sign(kr *seal.Keyring, r *kgo.Record) {
	id, tag := kr.MAC(macMessage(r.Key, r.Value))
	v := "1:" + strconv.FormatUint(uint64(id), 10) + ":" + hex.EncodeToString(tag)
	hs := r.Headers[:0:0]
	for _, h := range r.Headers {
		if h.Key != MACHeader {
			hs = append(hs, h)
		}
	}
	r.Headers = append(hs, kgo.RecordHeader{Key: MACHeader, Value: []byte(v)})
}

// checkTag reports whether r carries a tag and, if it does, whether the
// tag checks under kr: a tag that does not is an error, whatever the
// partition.
func checkTag(kr *seal.Keyring, r *kgo.Record) (tagged bool, err error) {
	var v []byte
	for _, h := range r.Headers {
		if h.Key == MACHeader {
			if tagged {
				return true, errors.New("two tags")
			}
			v, tagged = h.Value, true
		}
	}
	if !tagged {
		return false, nil
	}
	ver, rest, _ := strings.Cut(string(v), ":")
	idText, tagText, _ := strings.Cut(rest, ":")
	id, idErr := strconv.ParseUint(idText, 10, 32)
	tag, tagErr := hex.DecodeString(tagText)
	if ver != "1" || idErr != nil || tagErr != nil {
		return true, fmt.Errorf("malformed %s header", MACHeader)
	}
	return true, kr.CheckMAC(uint32(id), macMessage(r.Key, r.Value), tag)
}

// Protect turns signing on for every partition of ogma.control that does
// not have it yet: it re-signs the access records there (the latest of
// each key, as they are) and then writes the partition's signed marker. It
// is idempotent, and cheap once every partition is marked; every process
// that writes access records calls it before its first write.
//
// A record injected before signing was turned on is signed with the rest:
// signing protects from when it is on.
func Protect(ctx context.Context, dial topic.Dial, l topic.Layout, kr *seal.Keyring) error {
	latest := map[int32]map[string]*kgo.Record{}
	marked := map[int32]bool{}
	badMark := map[int32]error{}
	err := topic.ReadToEnd(ctx, dial, topic.Control, topic.Partitions(l.Partitions), func(r *kgo.Record) error {
		key := string(r.Key)
		switch {
		case key == SignedKey:
			switch tagged, err := checkTag(kr, r); {
			case tagged && err == nil:
				marked[r.Partition] = true
			case tagged:
				badMark[r.Partition] = err
			} // an unsigned marker marks nothing
		case signed(key):
			if latest[r.Partition] == nil {
				latest[r.Partition] = map[string]*kgo.Record{}
			}
			latest[r.Partition][key] = r
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("protect ogma.control: %w", err)
	}
	var out []*kgo.Record
	for p := range l.Partitions {
		if marked[p] {
			continue
		}
		if err, ok := badMark[p]; ok {
			// Signing on this partition was turned on under another
			// master key (or the marker is forged): re-signing would
			// vouch for whatever is there now.
			return fmt.Errorf("ogma.control partition %d is signed, but not under this master key (%v): "+
				"restore the master key file that signed it", p, err)
		}
		for key, r := range latest[p] {
			if r.Value == nil {
				continue // deleted: nothing to vouch for
			}
			if tagged, _ := checkTag(kr, r); tagged {
				continue // signed already, or forged: left as it is
			}
			out = append(out, &kgo.Record{Topic: topic.Control, Partition: p, Key: []byte(key), Value: r.Value})
		}
		out = append(out, &kgo.Record{Topic: topic.Control, Partition: p, Key: []byte(SignedKey), Value: []byte(`{"v":1}`)})
	}
	if len(out) == 0 {
		return nil
	}
	// One producer writes a partition's records in order, so each marker
	// lands after the records re-signed before it.
	return Publish(ctx, dial, kr, out...)
}

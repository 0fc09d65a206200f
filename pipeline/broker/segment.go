package broker

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
)

// This file knows kfake's private data dir layout, at the pinned version
// (go.mod): partitions/<topic>-<p>/ holds <base>.dat, the record batches as
// on the wire, <base>.idx, one 15-byte entry per batch, and snapshot.json.
// A kfake upgrade must recheck it: rebuildIndexes leaves alone an index
// whose entries carry another persist version.

const (
	indexEntrySize = 15
	persistVersion = 1
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// dropSnapshots deletes every partition's snapshot.json, so that the next
// load replays the log: a snapshot taken with a transaction open forgets it.
func dropSnapshots(dir string) error {
	snaps, err := filepath.Glob(filepath.Join(dir, "partitions", "*", "snapshot.json"))
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if err := os.Remove(s); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("drop %s: %w", s, err)
		}
	}
	return nil
}

// rebuildIndexes rewrites each segment index that has fewer entries than its
// segment has valid batches — a kill between the two writes of a batch —
// from the batches themselves. kfake takes a batch without an entry for a
// plain one, so an open transaction's last batch would read as committed.
func rebuildIndexes(dir string) (int, error) {
	segs, err := filepath.Glob(filepath.Join(dir, "partitions", "*", "*.dat"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, seg := range segs {
		idxPath := strings.TrimSuffix(seg, ".dat") + ".idx"
		data, err := os.ReadFile(seg)
		if err != nil {
			return n, err
		}
		idx, err := os.ReadFile(idxPath)
		if err != nil && !os.IsNotExist(err) {
			return n, err
		}
		entries := indexEntries(data)
		if len(idx)/indexEntrySize >= len(entries)/indexEntrySize {
			continue // complete; a longer one kfake truncates itself
		}
		if len(idx) >= indexEntrySize && idx[0] != persistVersion {
			continue // another layout than the one this code knows
		}
		tmp := idxPath + ".tmp"
		if err := os.WriteFile(tmp, entries, 0o600); err != nil {
			return n, err
		}
		if err := os.Rename(tmp, idxPath); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// indexEntries returns the index entries of the valid batches at the start
// of a segment, up to the first torn or corrupt one (which kfake drops).
func indexEntries(seg []byte) []byte {
	var out []byte
	for pos := 0; pos+12 <= len(seg); {
		length := int(binary.BigEndian.Uint32(seg[pos+8 : pos+12]))
		if length < 49 || pos+12+length > len(seg) {
			break
		}
		b := seg[pos : pos+12+length]
		if binary.BigEndian.Uint32(b[17:21]) != crc32.Checksum(b[21:], crc32c) {
			break
		}
		epoch := binary.BigEndian.Uint32(b[12:16]) // PartitionLeaderEpoch, as kfake stamps it
		attrs := binary.BigEndian.Uint16(b[21:23])
		maxTS := binary.BigEndian.Uint64(b[35:43])
		var e [indexEntrySize]byte
		e[0] = persistVersion
		binary.LittleEndian.PutUint32(e[2:6], epoch)
		binary.LittleEndian.PutUint64(e[6:14], maxTS)
		if attrs&0x10 != 0 && attrs&0x20 == 0 { // transactional data, not a marker
			e[14] = 1
		}
		e[1] = byte(crc32.Checksum(e[2:], crc32c))
		out = append(out, e[:]...)
		pos += len(b)
	}
	return out
}

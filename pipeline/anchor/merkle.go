package anchor

import (
	"bytes"
	"crypto/sha256"
	"math/bits"
)

// The Merkle tree of RFC 6962 §2.1, the one transparency logs use: a leaf
// hashes as SHA-256(0x00 ‖ leaf), an inner node as SHA-256(0x01 ‖ left ‖
// right), and a tree of n leaves splits at the largest power of two below n.

// LeafHash returns the RFC 6962 hash of one leaf.
func LeafHash(leaf []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	return [32]byte(h.Sum(nil))
}

func nodeHash(l, r [32]byte) [32]byte {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

// split is the size of the left subtree of a tree of n > 1 leaves.
func split(n int) int { return 1 << (bits.Len(uint(n-1)) - 1) }

// Root returns the root of the tree over leaf hashes; the root of no
// leaves is SHA-256 of nothing.
func Root(hashes [][32]byte) [32]byte {
	switch len(hashes) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return hashes[0]
	}
	k := split(len(hashes))
	return nodeHash(Root(hashes[:k]), Root(hashes[k:]))
}

// Path returns the inclusion path of leaf i in the tree over hashes, from
// the leaf's sibling up (RFC 6962 §2.1.1).
func Path(hashes [][32]byte, i int) [][32]byte {
	if len(hashes) <= 1 {
		return nil
	}
	k := split(len(hashes))
	if i < k {
		return append(Path(hashes[:k], i), Root(hashes[k:]))
	}
	return append(Path(hashes[k:], i-k), Root(hashes[:k]))
}

// VerifyPath reports whether path proves leaf hash h at index i of a tree
// of n leaves with the given root (RFC 9162 §2.1.3.2).
func VerifyPath(h [32]byte, i, n int, path [][32]byte, root [32]byte) bool {
	if i < 0 || i >= n {
		return false
	}
	fn, sn := i, n-1
	r := h
	for _, p := range path {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			r = nodeHash(r, p)
		}
		fn, sn = fn>>1, sn>>1
	}
	return sn == 0 && bytes.Equal(r[:], root[:])
}

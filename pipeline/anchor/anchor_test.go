package anchor_test

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/anchor"
)

// The roots of the first 1..8 leaves of RFC 6962's reference test inputs
// (certificate-transparency's merkle tree tests).
func TestRootMatchesRFC6962Vectors(t *testing.T) {
	inputs := []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	roots := []string{
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	var hashes [][32]byte
	for i, in := range inputs {
		b, _ := hex.DecodeString(in)
		hashes = append(hashes, anchor.LeafHash(b))
		if got := anchor.Root(hashes); hex.EncodeToString(got[:]) != roots[i] {
			t.Errorf("root of %d leaves = %x, want %s", i+1, got, roots[i])
		}
	}
	if got := anchor.Root(nil); hex.EncodeToString(got[:]) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("root of no leaves = %x, want SHA-256 of nothing", got)
	}
}

// Every leaf of every tree up to 70 leaves has a path that proves it, and
// only it: not at another index, not in the tree grown by a leaf, not
// under another root.
func TestPathsProveTheirLeafOnly(t *testing.T) {
	for n := 1; n <= 70; n++ {
		hashes := make([][32]byte, n)
		for i := range hashes {
			hashes[i] = anchor.LeafHash([]byte{byte(i), byte(n)})
		}
		root := anchor.Root(hashes)
		for i := range n {
			path := anchor.Path(hashes, i)
			if !anchor.VerifyPath(hashes[i], i, n, path, root) {
				t.Fatalf("n=%d: the path of leaf %d does not prove it", n, i)
			}
			if n > 1 && anchor.VerifyPath(hashes[i], (i+1)%n, n, path, root) {
				t.Fatalf("n=%d: the path of leaf %d proves it at index %d", n, i, (i+1)%n)
			}
			if grown := anchor.Root(append(hashes[:n:n], anchor.LeafHash([]byte("more")))); anchor.VerifyPath(hashes[i], i, n+1, path, grown) {
				t.Fatalf("n=%d: the path of leaf %d proves it in the tree grown by one", n, i)
			}
			other := root
			other[0] ^= 1
			if anchor.VerifyPath(hashes[i], i, n, path, other) {
				t.Fatalf("n=%d: the path of leaf %d proves it under another root", n, i)
			}
		}
	}
}

// A statement is the JCS of its fields, its leaves those of DESIGN.md, and
// only its exact canonical bytes parse back.
func TestStatementIsCanonical(t *testing.T) {
	leaves := []anchor.Leaf{{Tenant: "globex", Seq: 7, Hash: strings.Repeat("b", 64)}, {Tenant: "acme", Seq: 12, Hash: strings.Repeat("a", 64)}}
	anchor.SortLeaves(leaves)
	if got := string(leaves[0].Bytes()); got != `{"hash":"`+strings.Repeat("a", 64)+`","seq":12,"tenant":"acme"}` {
		t.Errorf("leaf bytes = %s", got)
	}
	s := anchor.NewStatement(strings.Repeat("f", 64), 3, leaves, anchor.Genesis, time.Date(2026, 12, 1, 10, 20, 0, 0, time.UTC))
	b := s.Canonical()
	want := `{"anchor_key":"` + strings.Repeat("f", 64) + `","index":3,"kind":"ogma-anchor","prev":"` + anchor.Genesis +
		`","root":"` + s.Root + `","size":2,"time":"2026-12-01T10:20:00Z","v":1}`
	if string(b) != want {
		t.Errorf("statement = %s\nwant        %s", b, want)
	}
	if back, err := anchor.ParseStatement(b); err != nil || back != s {
		t.Errorf("ParseStatement = %+v, %v", back, err)
	}
	for _, bad := range []string{
		strings.Replace(want, `"index":3,`, `"index":3, `, 1),
		strings.Replace(want, `"v":1`, `"v":2`, 1),
		strings.Replace(want, `"v":1}`, `"v":1,"extra":0}`, 1),
		want[:len(want)-1],
	} {
		if _, err := anchor.ParseStatement([]byte(bad)); err == nil {
			t.Errorf("ParseStatement accepted %s", bad)
		}
	}
}

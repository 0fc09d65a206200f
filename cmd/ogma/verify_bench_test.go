package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/event"
)

// BenchmarkVerifyMillion runs `ogma verify` on a bundle of a million events
// with their data, as its own process: the time it takes and its peak RSS,
// which stay flat however long the chain, since a bundle is streamed.
func BenchmarkVerifyMillion(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	path := filepath.Join(dir, "million.bundle")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w, _ := anchor.NewBundleWriter(f, anchor.BundleHeader{Tenant: "acme", FromSeq: 1, Data: true})
	prev := event.Genesis
	salt := strings.Repeat("5a", 32)
	for seq := uint64(1); seq <= n; seq++ {
		data := fmt.Appendf(nil, `{"id":"user-%d","object":"organization.user"}`, seq)
		rec, err := event.Seal(event.Event{Tenant: "acme", Seq: seq, Prev: prev, Kind: event.Identity, Vendor: "openai",
			Stream: "users", Key: fmt.Appendf(nil, `{"id":"user-%d","object":"user"}`, seq), ObservedAt: "2026-11-27T12:00:00Z"},
			data, salt, event.Source{Offset: int64(seq)})
		if err != nil {
			b.Fatal(err)
		}
		w.Event(anchor.BundleEvent{Seq: seq, Hash: rec.Hash, Canonical: json.RawMessage(rec.Canonical), Data: rec.Data, Salt: salt})
		prev = rec.Hash
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(path)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	keyFile := filepath.Join(dir, "log.pub")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)

	var rss int64
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "verify", path, "--log-key", keyFile, "--anchor-key-fingerprint", strings.Repeat("0", 64))
		cmd.Env = append(os.Environ(), envAsOgma+"=1")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "proven: tenant acme, 1000000 events") {
			b.Fatalf("ogma verify: %v\n%s", err, out)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/verify")
		rss = max(rss, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) // KiB
	}
	b.ReportMetric(float64(rss)/1024, "peak-RSS-MB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "bundle-MB")
}

package process

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/ogma-dev/ogma/pipeline/event"
)

// BenchmarkDedupeStore writes b.N dedupe entries of usage-sized keys in
// batches of 10k and reports the store's size on disk per key; run it with
// -benchtime=1000000x for the README's figure per million keys.
func BenchmarkDedupeStore(b *testing.B) {
	dir := b.TempDir()
	s, err := OpenStore(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	ov := newOverlay(s)
	i := 0
	for b.Loop() {
		key := fmt.Appendf(nil, `{"api_key_id":"key_%016d","batch":"false","bucket_start":"2026-11-%02dT00:00:00Z","bucket_width":"1d","endpoint":"completions",`+
			`"group_set":["api_key_id","batch","model","project_id","service_tier","user_id"],"model":"gpt-6-sol","project_id":"proj_abcdefghijklmnopqrstuvwx",`+
			`"service_tier":"default","user_id":"user-abcdefghijklmnopqrstuvwx"}`, i, i%28+1)
		d := event.ContentDigest(key)
		ov.setEntry(dedupeKey(0, "acme", "openai", "usage.completions", key), Entry{Digest: d, Rev: 0, DataDigest: d})
		if i++; i%10000 == 0 {
			if err := ov.commit(); err != nil {
				b.Fatal(err)
			}
			ov = newOverlay(s)
		}
	}
	if err := ov.commit(); err != nil {
		b.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	var size int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, err := e.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	b.ReportMetric(float64(size)/float64(i), "disk-bytes/key")
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "keys/s")
}

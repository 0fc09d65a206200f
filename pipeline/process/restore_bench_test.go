package process

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/envelope"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/normalize"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

// BenchmarkProcess5MKeys runs a real `ogma process` (built here, a separate
// process) on a state store that holds 5M dedupe keys of one tenant, feeds
// it 20k usage rows — half of them repeats of stored keys, half new — and
// reports how long its partition took to restore, how fast it processed,
// and its peak RSS (VmHWM). With -short it stores 500k keys.
func BenchmarkProcess5MKeys(b *testing.B) {
	keys := 5_000_000
	if testing.Short() {
		keys = 500_000
	}
	bin := filepath.Join(b.TempDir(), "ogma")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ogma-dev/ogma/cmd/ogma").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	c := topictest.New(b)
	const tenant = "acme"
	part := c.Layout.Partition(tenant)
	stateDir := b.TempDir()

	// The input: 20 settled buckets of 1,000 rows. The first 10 buckets
	// were seen before (their keys and digests are in the store); the
	// others are new. The store is topped up to keys with keys of the same
	// shape from other days.
	fetched := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var input []*kgo.Record
	s, err := OpenStore(stateDir, nil)
	if err != nil {
		b.Fatal(err)
	}
	ov := newOverlay(s)
	stored := 0
	store := func(key []byte, digest string) {
		ov.setEntry(dedupeKey(part, tenant, "openai", "usage.completions", key), Entry{Digest: digest, DataDigest: digest})
		if stored++; stored%100_000 == 0 {
			if err := ov.commit(); err != nil {
				b.Fatal(err)
			}
			ov = newOverlay(s)
		}
	}
	groupSet := stream.Must(stream.OpenAI, "usage.completions").GroupSet
	for day := range 20 {
		start := fetched.Add(time.Duration(-30+day) * 24 * time.Hour)
		for j := range 1000 {
			r := &envelope.Raw{V: 1, Tenant: tenant, Vendor: "openai", Stream: "usage.completions", FetchedAt: fetched,
				Salt: strings.Repeat("ab", 32), GroupSet: groupSet,
				Bucket: &envelope.Bucket{Start: start.Unix(), End: start.Add(24 * time.Hour).Unix(), Width: "1d", Rows: 1000, Row: j},
				Data: json.RawMessage(fmt.Sprintf(`{"input_tokens":%d,"output_tokens":5,"num_model_requests":1,"project_id":"proj_1",`+
					`"user_id":"user-%04d","api_key_id":"key_%04d","model":"gpt-6-sol","batch":false,"service_tier":"default"}`, 100+j, j, j))}
			if day < 10 {
				f, err := normalize.Normalize(r)
				if err != nil {
					b.Fatal(err)
				}
				store(f.Key, f.Digest)
			}
			input = append(input, c.Layout.Record(topic.Raw, tenant, []byte(r.Key()), r.Marshal()))
		}
	}
	for i := 0; stored < keys; i++ {
		key := fmt.Appendf(nil, `{"api_key_id":"key_%016d","batch":"false","bucket_start":"2024-%02d-%02dT00:00:00Z","bucket_width":"1d","endpoint":"completions",`+
			`"group_set":["api_key_id","batch","model","project_id","service_tier","user_id"],"model":"gpt-6-sol","project_id":"proj_1",`+
			`"service_tier":"default","user_id":"user-%016d"}`, i, i%12+1, i%28+1, i)
		store(key, event.ContentDigest(key))
	}
	ov.setJSON(headKey(part, tenant), Head{Seq: uint64(stored), Hash: event.Genesis})
	ov.setJSON(checkpointKey(part), Checkpoint{Raw: -1, Events: -1, Deadletter: -1})
	if err := ov.commit(); err != nil {
		b.Fatal(err)
	}
	s.Close()

	cl, err := c.Dial(topic.ProducerOpt())
	if err != nil {
		b.Fatal(err)
	}
	if err := cl.ProduceSync(b.Context(), input...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	cl.Close()

	for b.Loop() {
		cmd := exec.Command(bin, "process", "--kafka-brokers", c.Broker.Addrs()[0], "--process-state-dir", stateDir,
			"--log-format", "json", "--kafka-partitions", strconv.Itoa(int(c.Layout.Partitions)))
		logs, _ := cmd.StderrPipe()
		cmd.Stdout = io.Discard
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		restored := make(chan float64, 1)
		go func() {
			sc := bufio.NewScanner(logs)
			for sc.Scan() {
				var l struct {
					Msg      string `json:"msg"`
					Duration float64
				}
				if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "partition restored" {
					restored <- l.Duration / 1e9
				}
			}
		}()
		topictest.WaitDrained(b, c.Dial, "ogma-process", 0)
		elapsed := time.Since(start)
		rss := peakRSS(b, cmd.Process.Pid)
		cmd.Process.Kill()
		cmd.Wait()
		b.ReportMetric(<-restored, "restore-s")
		b.ReportMetric(rss/(1<<20), "peak-RSS-MB")
		b.ReportMetric(float64(len(input))/elapsed.Seconds(), "rows/s")
		b.ReportMetric(float64(stored), "keys")
	}
}

var vmHWM = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)

// peakRSS returns a process's peak resident set, in bytes.
func peakRSS(b *testing.B, pid int) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	m := vmHWM.FindSubmatch(st)
	if m == nil {
		b.Fatal("no VmHWM in /proc status")
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb * 1024
}

// BenchmarkRestore measures restore on its own: a partition's state rebuilt
// from an ogma.events tail of 20,200 events (20k usage facts and their
// manifests) into an empty store, as a processor does on assignment after
// its state was lost.
func BenchmarkRestore(b *testing.B) {
	c := topictest.New(b)
	const tenant = "acme"
	part := c.Layout.Partition(tenant)
	// The tail: the events a processor makes of 20k new usage rows.
	s, err := OpenStore(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	tr := newTransform(s, part, c.Layout, datakey.New(nil, c.Layout))
	raw := topictest.UsageRows(c.Layout, tenant, 20000)
	for i, r := range raw {
		r.Offset = int64(i)
	}
	if err := tr.run(raw, -1, true); err != nil {
		b.Fatal(err)
	}
	s.Close()
	var events, keys []*kgo.Record
	for _, r := range tr.out {
		switch r.Topic {
		case topic.Events:
			events = append(events, r)
		case topic.Keys:
			keys = append(keys, r) // the tenant's data key, which restore opens the events with
		}
	}
	c.Produce(b, keys...)
	c.Produce(b, events...)
	p, err := New(Config{StateDir: b.TempDir()}, Deps{Dial: c.Dial, Layout: c.Layout})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		store, err := OpenStore(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := p.restoreOnce(b.Context(), store, part, 0); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		store.Close()
	}
	b.ReportMetric(float64(len(events)*b.N)/b.Elapsed().Seconds(), "events/s")
}

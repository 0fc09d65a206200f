package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A role run on its own serves its metrics, its Kafka clients' among them
// (kprom, issue 15), and its health with --metrics-addr, which
// `ogma healthcheck` checks.
func TestStandaloneProcessServesMetricsAndHealth(t *testing.T) {
	c := topictest.New(t)
	addr := freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	root := newRootCmd(envOf(nil), runners{})
	root.SetArgs([]string{"process", "--kafka-brokers", c.Broker.Addrs()[0], "--data-dir", t.TempDir(), "--metrics-addr", addr})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		// Run returns ctx's error once canceled; anything else failed it.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("ogma process: %v", err)
		}
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wait.Until(t, "/healthz to say ready", func() bool { s, _ := get("/healthz"); return s == http.StatusOK })
	// The container image has no curl: its health check is the binary.
	if _, err := ogma(t, nil, "healthcheck", "--url", "http://"+addr+"/healthz"); err != nil {
		t.Errorf("ogma healthcheck of a ready role: %v", err)
	}
	if _, err := ogma(t, nil, "healthcheck", "--url", "http://"+addr+"/nothing"); err == nil {
		t.Error("ogma healthcheck of a 404: exit 0")
	}
	var body string
	wait.Until(t, "/metrics with the Kafka clients' metrics", func() bool {
		s, b := get("/metrics")
		body = b
		return s == http.StatusOK && strings.Contains(body, `ogma_kafka_connects_total{client="0",node_id=`)
	})
	for _, m := range []string{"ogma_processor_state_bytes", "ogma_processor_restore_duration_seconds", "go_goroutines",
		`ogma_kafka_read_bytes_total{client="0",node_id="0",role="process"}`} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// The processor's session client is closed and made again when the broker
// aborts a transaction of it: the new one registers the same series
// (kprom registers them on a new client and panics on a duplicate), even
// when the role made another client meanwhile.
func TestAPinnedClientSlotIsMadeAgain(t *testing.T) {
	reg := prometheus.NewRegistry()
	km := &kafkaMetrics{reg: reg, role: "process"}
	session := km.pinned()
	for i := range 2 {
		cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), session)
		if err != nil {
			t.Fatal(err)
		}
		other, release := km.opt() // a side client, made while the session is down
		side, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), other)
		if err != nil {
			release()
			t.Fatal(err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		slots := map[string]bool{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "client" {
						slots[l.GetValue()] = true
					}
				}
			}
		}
		if len(slots) != 2 {
			t.Errorf("session %d: client slots %v, want the session's and the side client's", i, slots)
		}
		cl.Close()
		side.Close()
	}
}

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
)

// A role run on its own serves its metrics with --metrics-addr.
func TestStandaloneProcessServesMetrics(t *testing.T) {
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
	var body string
	wait.Until(t, "/metrics to answer", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	for _, m := range []string{"ogma_processor_state_bytes", "ogma_processor_restore_duration_seconds", "go_goroutines"} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

package process_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/process"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

func TestTimeline(t *testing.T) {
	for range 6 {
		c := topictest.New(t)
		n := seedRaw(t, c)
		start := time.Now()
		h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(g []string, a slog.Attr) slog.Attr {
			if a.Key == "time" {
				return slog.Int64("ms", time.Since(start).Milliseconds())
			}
			return a
		}})
		ctx, cancel := context.WithCancel(t.Context())
		proc, _ := process.New(process.Config{Group: "g", TransactionalID: "g", StateDir: t.TempDir()},
			process.Deps{Dial: c.Dial, Session: topic.Opts(c.Broker.Addrs()), Layout: c.Layout, Logger: slog.New(h)})
		done := make(chan struct{})
		go func() { defer close(done); proc.Run(ctx) }()
		drained(t, c, "g", n)
		t.Logf("drained after %v", time.Since(start))
		cancel()
		<-done
		c.Broker.Close()
	}
}

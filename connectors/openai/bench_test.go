package openai_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ogma-dev/ogma/connectors/openai"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/seal/sealtest"
	"github.com/ogma-dev/ogma/pipeline/stream"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

// BenchmarkBackfill runs the 90-day backfill of a 1,000-user organization,
// every stream, through the connector into ogma.raw, and reports records/s
// and raw bytes per simulated day.
func BenchmarkBackfill(b *testing.B) {
	sim := openaisim.New(openaisim.Config{Seed: 1, Users: 1000, Projects: 20, Now: func() time.Time { return simNow }})
	srv := httptest.NewServer(sim)
	b.Cleanup(srv.Close)
	kr, _ := sealtest.Keyring(b)
	client, _ := openai.NewClient(openai.ClientConfig{BaseURL: srv.URL})
	var records, bytes float64
	for b.Loop() {
		c := topictest.New(b)
		sealed, _ := kr.Seal(seal.NewSecret(sim.Key(openaisim.KeyFull)), "acme", openai.Vendor, 1)
		control.Publish(b.Context(), c.Dial, kr,
			control.TenantRecord(c.Layout, control.Tenant{ID: "acme", Name: "Acme", Residency: control.ResidencyUS}),
			control.IntegrationRecord(c.Layout, control.Integration{Tenant: "acme", Vendor: openai.Vendor, Generation: 1,
				Sealed: sealed, SealedAt: simNow, ConnectedAt: simNow, Status: control.StatusOK}))
		reg := prometheus.NewRegistry()
		conn, err := poll.New(poll.Config{Tick: time.Millisecond}, poll.Deps{Dial: c.Dial, Layout: c.Layout, Keyring: kr,
			Registerer: reg, Now: func() time.Time { return simNow },
			Vendors: map[string][]poll.Scheduled{openai.Vendor: openai.Streams(client, 15*time.Minute, time.Hour)}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		done := make(chan struct{})
		go func() { conn.Run(ctx); close(done) }()
		for {
			n := 0
			for _, spec := range stream.Of(stream.OpenAI) {
				s := spec.Name
				if testutil.ToFloat64(pollsOK(reg, s)) >= 1 {
					n++
				}
			}
			if n == len(stream.Of(stream.OpenAI)) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
		for _, r := range c.Records(b, topic.Raw) {
			records++
			bytes += float64(len(r.Key) + len(r.Value))
		}
	}
	b.ReportMetric(records/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(bytes/float64(b.N)/91, "raw-bytes/day")
	b.ReportMetric(records/float64(b.N), "records")
}

package openai_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ogma-dev/ogma/connectors/openai"
	"github.com/ogma-dev/ogma/connectors/openai/openaisim"
	"github.com/ogma-dev/ogma/connectors/poll"
	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/seal/sealtest"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

// Issue 2: tenants are spread over connector instances by a consumer group
// on ogma.control's partitions; with two instances every partition is
// owned by one of them, and each tenant's window is published exactly once.
func TestTenantsSpreadOverInstances(t *testing.T) {
	sim := openaisim.New(openaisim.Config{Seed: 5, Users: 40, Now: func() time.Time { return simNow }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c := topictest.New(t)
	kr, _ := sealtest.Keyring(t)

	// One tenant on each partition.
	tenants := map[int32]string{}
	for i := 0; len(tenants) < int(c.Layout.Partitions); i++ {
		id := fmt.Sprintf("t%d", i)
		if _, ok := tenants[c.Layout.Partition(id)]; !ok {
			tenants[c.Layout.Partition(id)] = id
		}
	}
	for _, id := range tenants {
		sealed, err := kr.Seal(seal.NewSecret(sim.Key(openaisim.KeyFull)), id, openai.Vendor, 1)
		if err != nil {
			t.Fatal(err)
		}
		err = control.Publish(t.Context(), c.Dial, kr,
			control.TenantRecord(c.Layout, control.Tenant{ID: id, Name: id, Residency: control.ResidencyUS}),
			control.IntegrationRecord(c.Layout, control.Integration{Tenant: id, Vendor: openai.Vendor, Generation: 1,
				Sealed: sealed, SealedAt: simNow, ConnectedAt: simNow, Status: control.StatusOK}))
		if err != nil {
			t.Fatal(err)
		}
	}
	client, _ := openai.NewClient(openai.ClientConfig{BaseURL: srv.URL})
	ctx, cancel := context.WithCancel(t.Context())
	var regs []*prometheus.Registry
	done := make(chan error, 2)
	for range 2 {
		reg := prometheus.NewRegistry()
		regs = append(regs, reg)
		conn, err := poll.New(poll.Config{Tick: 5 * time.Millisecond, SessionTimeout: 6 * time.Second},
			poll.Deps{Dial: c.Dial, Layout: c.Layout, Keyring: kr, Registerer: reg, Now: func() time.Time { return simNow },
				Vendors: map[string][]poll.Scheduled{openai.Vendor: usageOnly(client)}})
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- conn.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); <-done; <-done })

	owned := func(reg *prometheus.Registry) float64 {
		return testutil.ToFloat64(gauge(reg, "ogma_connector_partitions_owned"))
	}
	wait.Until(t, "both instances own partitions and every tenant is backfilled", func() bool {
		a, b := owned(regs[0]), owned(regs[1])
		if a < 1 || b < 1 || a+b != float64(c.Layout.Partitions) {
			return false
		}
		polled := map[string]bool{}
		for _, r := range rawOf(t, c.Records(t, topic.Raw), "usage.completions") {
			polled[r.Tenant] = true
		}
		return len(polled) == len(tenants)
	})
	wait.Until(t, "the backfill of every tenant complete", func() bool {
		// Today's bucket comes on the last page of a backfill.
		done := map[string]bool{}
		for _, r := range rawOf(t, c.Records(t, topic.Raw), "usage.completions") {
			done[r.Tenant] = done[r.Tenant] || r.Bucket.Start == simNow.Truncate(24*time.Hour).Unix()
		}
		n := 0
		for _, ok := range done {
			if ok {
				n++
			}
		}
		return n == len(tenants)
	})
	seen := map[string]int{}
	buckets := map[string]map[int64]bool{}
	for _, r := range rawOf(t, c.Records(t, topic.Raw), "usage.completions") {
		seen[r.Key()]++
		if buckets[r.Tenant] == nil {
			buckets[r.Tenant] = map[int64]bool{}
		}
		buckets[r.Tenant][r.Bucket.Start] = true
		if r.Tenant != tenants[topic.Partition(r.Tenant, c.Layout.Partitions)] {
			t.Errorf("record of %s on another tenant's partition", r.Tenant)
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s published %d times", k, n)
		}
	}
	for id, b := range buckets {
		if len(b) != 91 {
			t.Errorf("tenant %s has %d buckets, want the 91 of its window", id, len(b))
		}
	}
}

func gauge(reg *prometheus.Registry, name string) prometheus.Collector {
	return collectorFunc(func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == name && len(mf.GetMetric()) > 0 {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return 0
	})
}

// Issue 5: a 429 backs its tenant off for the vendor's Retry-After, and
// the other tenants of the same partition go on meanwhile.
func TestRateLimitBacksOffOnlyThatTenant(t *testing.T) {
	clk := &clock{t: simNow}
	sim := openaisim.New(openaisim.Config{Seed: 5, Users: 20, Now: func() time.Time { return simNow }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c := topictest.New(t)
	kr, _ := sealtest.Keyring(t)
	// Two tenants on one partition: one worker polls both, in name order.
	var ids []string
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("t%d", i)
		if c.Layout.Partition(id) == c.Layout.Partition("t0") {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		sealed, _ := kr.Seal(seal.NewSecret(sim.Key(openaisim.KeyFull)), id, openai.Vendor, 1)
		if err := control.Publish(t.Context(), c.Dial, kr,
			control.TenantRecord(c.Layout, control.Tenant{ID: id, Name: id, Residency: control.ResidencyUS}),
			control.IntegrationRecord(c.Layout, control.Integration{Tenant: id, Vendor: openai.Vendor, Generation: 1,
				Sealed: sealed, SealedAt: simNow, ConnectedAt: simNow, Status: control.StatusOK})); err != nil {
			t.Fatal(err)
		}
	}
	sim.Fail(429) // the first call, the first tenant's
	client, _ := openai.NewClient(openai.ClientConfig{BaseURL: srv.URL})
	conn, err := poll.New(poll.Config{Tick: 5 * time.Millisecond, SessionTimeout: 6 * time.Second},
		poll.Deps{Dial: c.Dial, Layout: c.Layout, Keyring: kr, Now: clk.Now,
			Vendors: map[string][]poll.Scheduled{openai.Vendor: usageOnly(client)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { conn.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	today := simNow.Truncate(24 * time.Hour).Unix()
	backfilled := func(id string) bool {
		for _, r := range rawOf(t, c.Records(t, topic.Raw), "usage.completions") {
			if r.Tenant == id && r.Bucket.Start == today {
				return true
			}
		}
		return false
	}
	wait.Until(t, "the second tenant backfilled while the first is backed off", func() bool { return backfilled(ids[1]) })
	if backfilled(ids[0]) {
		t.Fatal("the rate-limited tenant was polled again before its Retry-After")
	}
	clk.Add(2 * time.Second) // past Retry-After: 1
	wait.Until(t, "the first tenant backfilled after its backoff", func() bool { return backfilled(ids[0]) })
}

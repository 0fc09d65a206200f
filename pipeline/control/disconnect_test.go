package control_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/seal/sealtest"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

// Issue 13: a disconnected key's envelope is gone from ogma.control once
// compacted — read the topic, it is nowhere — and the next key takes a
// generation never used before, so the old envelope, replayed, would not
// open as current.
func TestDisconnectDestroysTheKeyAndKeepsItsGeneration(t *testing.T) {
	c := topictest.New(t)
	kr, _ := sealtest.Keyring(t)
	k := control.VendorKey{Tenant: "acme", Vendor: control.OpenAI}
	load := func() *control.State {
		st, err := control.Load(t.Context(), c.Dial, c.Layout, kr)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	connect := func(key string) control.Integration {
		integ, _ := load().Integration(k)
		integ = integ.Next("acme", control.OpenAI, control.KeyHint(key), time.Now())
		var err error
		if integ.Sealed, err = kr.Seal(seal.NewSecret(key), "acme", control.OpenAI, integ.Generation); err != nil {
			t.Fatal(err)
		}
		if err := control.Publish(t.Context(), c.Dial, kr, control.TenantRecord(c.Layout, control.Tenant{ID: "acme", Name: "Acme",
			Residency: control.ResidencyUS}), control.IntegrationRecord(c.Layout, integ)); err != nil {
			t.Fatal(err)
		}
		return integ
	}

	first := connect("sk-admin-first-key-0001")
	if err := control.Publish(t.Context(), c.Dial, kr, control.DisconnectRecords(c.Layout, first)...); err != nil {
		t.Fatal(err)
	}
	c.Broker.Cluster().Compact()
	for _, r := range c.Records(t, topic.Control) {
		if bytes.Contains(r.Value, first.Sealed.Ciphertext) || bytes.Contains(r.Value, first.Sealed.WrappedDEK) {
			t.Fatalf("after compaction, %s still holds the disconnected key's envelope", r.Key)
		}
	}
	if _, ok := load().Integrations[k]; ok {
		t.Fatal("the integration survived its disconnect")
	}

	second := connect("sk-admin-second-key-002")
	if second.Generation != first.Generation+1 {
		t.Errorf("the key after a disconnect took generation %d, want %d", second.Generation, first.Generation+1)
	}
	if _, err := kr.Open(first.Sealed, "acme", control.OpenAI, second.Generation); err == nil {
		t.Error("the old envelope opens as the current generation")
	}
}

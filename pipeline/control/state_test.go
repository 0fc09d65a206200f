package control_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

var l = topic.Layout{Partitions: 6}

func TestStateKeepsLatestAndDeletesOnTombstone(t *testing.T) {
	var s control.State
	apply := applier(t, &s)
	apply(control.TenantRecord(l, control.Tenant{ID: "acme", Name: "Acme", Residency: control.ResidencyUS}))
	apply(control.TenantRecord(l, control.Tenant{ID: "acme", Name: "Acme Corp", Residency: control.ResidencyEU}))
	apply(control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: control.OpenAI, Generation: 1}))
	apply(control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: control.OpenAI, Generation: 2}))
	tok, hash := control.NewToken()
	apply(control.TokenRecord(l, control.Token{Hash: hash, Tenant: "acme"}))
	apply(control.ObservedRecord(l, control.Observed{Tenant: "acme", Vendor: control.OpenAI, Admin: true, Generation: 2}))

	if got := s.Tenants["acme"]; got.Name != "Acme Corp" || got.Residency != control.ResidencyEU {
		t.Errorf("tenant = %+v, want the latest record", got)
	}
	k := control.VendorKey{Tenant: "acme", Vendor: control.OpenAI}
	if s.Integrations[k].Generation != 2 || !s.Observed[k].Admin {
		t.Errorf("integration %+v, observed %+v", s.Integrations[k], s.Observed[k])
	}
	if s.Tokens[control.HashToken(tok)].Tenant != "acme" {
		t.Error("token not found by the hash of its value")
	}

	tomb := control.TokenRecord(l, control.Token{Hash: hash, Tenant: "acme"})
	tomb.Value = nil
	apply(tomb)
	if _, ok := s.Tokens[hash]; ok {
		t.Error("a tombstone did not delete the token")
	}
	if err := s.Apply(&kgo.Record{Key: []byte("tenant/x"), Value: []byte("{")}); err == nil {
		t.Error("a record that does not parse was accepted")
	}
}

func TestTenantValidate(t *testing.T) {
	cases := []struct {
		t  control.Tenant
		ok bool
	}{
		{control.Tenant{ID: "acme-1", Name: "Acme", Residency: "us"}, true},
		{control.Tenant{ID: "Acme", Name: "Acme", Residency: "us"}, false},
		{control.Tenant{ID: "acme", Name: " ", Residency: "us"}, false},
		{control.Tenant{ID: "acme", Name: "Acme", Residency: "mars"}, false},
		{control.Tenant{ID: "", Name: "Acme", Residency: "eu"}, false},
	}
	for _, tc := range cases {
		if err := tc.t.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.t, err, tc.ok)
		}
	}
}

// Records of one tenant all land on the tenant's partition.
func TestRecordsPlacedByTenant(t *testing.T) {
	want := topic.Partition("acme", 6)
	for _, r := range []*kgo.Record{
		control.TenantRecord(l, control.Tenant{ID: "acme"}),
		control.TokenRecord(l, control.Token{Tenant: "acme", Hash: "ff"}),
		control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: "openai"}),
	} {
		if r.Partition != want {
			t.Errorf("%s on partition %d, want %d", r.Key, r.Partition, want)
		}
	}
}

// The vendor's rejection of a key is the connector's observation of that
// generation, never a rewrite of the integration: a late rejection of an
// old generation neither rolls back a new key nor brings back a
// disconnected one.
func TestKeyInvalidIsOfOneGeneration(t *testing.T) {
	var s control.State
	apply := applier(t, &s)
	k := control.VendorKey{Tenant: "acme", Vendor: control.OpenAI}
	rejected := func(gen int) *kgo.Record {
		return control.ObservedRecord(l, control.Observed{Tenant: "acme", Vendor: control.OpenAI, Generation: gen, KeyInvalid: true})
	}
	apply(control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: control.OpenAI, Generation: 1}))
	apply(rejected(1))
	if !s.KeyInvalid(k) {
		t.Error("generation 1 rejected: not key_invalid")
	}
	apply(control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: control.OpenAI, Generation: 2}))
	if s.KeyInvalid(k) || s.Integrations[k].Generation != 2 {
		t.Errorf("a new key: key_invalid %v, generation %d; want a working generation 2", s.KeyInvalid(k), s.Integrations[k].Generation)
	}
	apply(rejected(1)) // a late 401 of the old key
	if s.KeyInvalid(k) || s.Integrations[k].Generation != 2 {
		t.Errorf("after a late rejection of generation 1: key_invalid %v, generation %d", s.KeyInvalid(k), s.Integrations[k].Generation)
	}
	tomb := control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: control.OpenAI})
	tomb.Value = nil
	apply(tomb)
	apply(rejected(2)) // a late 401 after DELETE
	if _, ok := s.Integrations[k]; ok || s.KeyInvalid(k) {
		t.Error("a late rejection brought back a disconnected integration")
	}
}

// applier returns a function that applies a record to s, failing the test
// on an error.
func applier(t *testing.T, s *control.State) func(*kgo.Record) {
	return func(r *kgo.Record) {
		t.Helper()
		if err := s.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
}

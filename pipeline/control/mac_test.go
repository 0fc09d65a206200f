package control_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/control"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/seal/sealtest"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
)

func signed(kr *seal.Keyring, r *kgo.Record) *kgo.Record {
	control.Sign(kr, r)
	return r
}

// marker turns signing on for tenant's partition.
func marker(kr *seal.Keyring, tenant string) *kgo.Record {
	return signed(kr, &kgo.Record{Topic: topic.Control, Partition: l.Partition(tenant), Key: []byte(control.SignedKey), Value: []byte(`{"v":1}`)})
}

// Where signing is on, a record that grants access counts only with a tag
// made under the installation's master key for exactly that key and value:
// whoever can merely produce to ogma.control mints no token, swaps no
// integration and deletes nothing.
func TestAccessRecordsCountOnlySigned(t *testing.T) {
	kr, _ := sealtest.Keyring(t)
	other, _ := sealtest.Keyring(t)
	tok, hash := control.NewToken()
	token := func(hash string) *kgo.Record {
		return control.TokenRecord(l, control.Token{Hash: hash, Tenant: "acme", Name: "cli"})
	}
	_, otherHash := control.NewToken()

	moved := signed(kr, token(hash))
	moved.Key = token(otherHash).Key // a signed value under another key
	altered := signed(kr, control.TenantRecord(l, control.Tenant{ID: "acme", Name: "Acme", Residency: control.ResidencyUS}))
	altered.Value = []byte(`{"id":"acme","name":"Acme","residency":"eu"}`)
	cases := []struct {
		name string
		r    *kgo.Record
		err  error
	}{
		{"an unsigned token", token(otherHash), control.ErrUnsigned},
		{"a token signed by another installation", signed(other, token(otherHash)), seal.ErrMAC},
		{"a signed token moved to another hash", moved, seal.ErrMAC},
		{"a signed tenant with its value altered", altered, seal.ErrMAC},
		{"an unsigned delete of a token", control.Tombstone(token(hash)), control.ErrUnsigned},
		{"an unsigned integration", control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: control.OpenAI, Generation: 9}), control.ErrUnsigned},
		{"an unsigned marker", &kgo.Record{Partition: l.Partition("acme"), Key: []byte(control.SignedKey), Value: []byte(`{}`)}, control.ErrUnsigned},
	}

	s := control.State{Keys: kr}
	apply := applier(t, &s)
	apply(marker(kr, "acme"))
	apply(signed(kr, control.TenantRecord(l, control.Tenant{ID: "acme", Name: "Acme", Residency: control.ResidencyUS})))
	apply(signed(kr, token(hash)))
	apply(signed(kr, control.IntegrationRecord(l, control.Integration{Tenant: "acme", Vendor: control.OpenAI, Generation: 1})))
	for _, tc := range cases {
		if err := s.Apply(tc.r); !errors.Is(err, tc.err) {
			t.Errorf("%s: Apply = %v, want %v", tc.name, err, tc.err)
		}
	}
	if _, ok := s.Tokens[otherHash]; ok {
		t.Error("a token that was never signed grants access")
	}
	if s.Tokens[control.HashToken(tok)].Tenant != "acme" || s.Tenants["acme"].Residency != control.ResidencyUS ||
		s.Integrations[control.VendorKey{Tenant: "acme", Vendor: control.OpenAI}].Generation != 1 {
		t.Errorf("the signed records changed: %+v", s)
	}

	// What a connector writes grants nothing and is not signed.
	apply(control.ObservedRecord(l, control.Observed{Tenant: "acme", Vendor: control.OpenAI, Generation: 1, Admin: true}))
	// A signed delete deletes.
	apply(signed(kr, control.Tombstone(token(hash))))
	if _, ok := s.Tokens[hash]; ok {
		t.Error("a signed delete did not delete the token")
	}
}

// Before its marker a partition is read as installations before signing
// wrote it: unsigned records count. The marker drops every one of them that
// was not signed since.
func TestMarkerDropsWhatCameUnsigned(t *testing.T) {
	kr, _ := sealtest.Keyring(t)
	s := control.State{Keys: kr}
	apply := applier(t, &s)
	_, resigned := control.NewToken()
	_, injected := control.NewToken()
	token := func(hash string) *kgo.Record {
		return control.TokenRecord(l, control.Token{Hash: hash, Tenant: "acme"})
	}
	apply(token(resigned))
	apply(token(injected))
	if len(s.Tokens) != 2 {
		t.Fatalf("before the marker: %d tokens, want the 2 unsigned", len(s.Tokens))
	}
	apply(signed(kr, token(resigned)))
	apply(marker(kr, "acme"))
	if _, ok := s.Tokens[resigned]; !ok {
		t.Error("the marker dropped a token signed before it")
	}
	if _, ok := s.Tokens[injected]; ok {
		t.Error("an unsigned token outlived the marker")
	}
	// Without Keys (a reader that has no master key) everything counts.
	var open control.State
	applier(t, &open)(token(injected))
	applier(t, &open)(marker(kr, "acme"))
	if _, ok := open.Tokens[injected]; !ok {
		t.Error("a State without Keys checked a tag")
	}
}

// Protect turns signing on for an installation from before it: what is
// there is signed once and then marked, so it keeps working; a record
// injected afterwards does not count; a second call writes nothing; and a
// master key that did not sign ogma.control is refused by name.
func TestProtectSignsWhatIsThereOnce(t *testing.T) {
	c := topictest.New(t)
	kr, _ := sealtest.Keyring(t)
	var legacy []*kgo.Record
	var hashes []string
	for _, id := range []string{"acme", "globex", "initech"} {
		_, hash := control.NewToken()
		hashes = append(hashes, hash)
		legacy = append(legacy, control.TenantRecord(c.Layout, control.Tenant{ID: id, Name: id, Residency: control.ResidencyUS}),
			control.TokenRecord(c.Layout, control.Token{Hash: hash, Tenant: id}))
	}
	c.Produce(t, legacy...) // as versions before signing wrote them

	if err := control.Protect(t.Context(), c.Dial, c.Layout, kr); err != nil {
		t.Fatal(err)
	}
	written := len(c.Records(t, topic.Control))
	_, injected := control.NewToken()
	c.Produce(t, control.TokenRecord(c.Layout, control.Token{Hash: injected, Tenant: "acme"}))
	if err := control.Protect(t.Context(), c.Dial, c.Layout, kr); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Records(t, topic.Control)); n != written+1 {
		t.Errorf("a second Protect wrote %d records, want none", n-written-1)
	}

	st, err := control.Load(t.Context(), c.Dial, c.Layout, kr)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hashes {
		if _, ok := st.Tokens[h]; !ok {
			t.Errorf("token %s… from before signing no longer counts", h[:8])
		}
	}
	if len(st.Tenants) != 3 {
		t.Errorf("%d tenants count, want 3", len(st.Tenants))
	}
	if _, ok := st.Tokens[injected]; ok || st.Skipped != 1 {
		t.Errorf("the token injected after Protect: counts %v, skipped %d; want refused and counted", ok, st.Skipped)
	}
	markers := 0
	for _, r := range c.Records(t, topic.Control) {
		if string(r.Key) == control.SignedKey {
			markers++
		}
	}
	if markers != int(c.Layout.Partitions) {
		t.Errorf("%d markers, want one per partition (%d)", markers, c.Layout.Partitions)
	}

	lost, _ := sealtest.Keyring(t)
	err = control.Protect(t.Context(), c.Dial, c.Layout, lost)
	if err == nil || !strings.Contains(err.Error(), "restore the master key file") {
		t.Errorf("Protect under another master key = %v, want a refusal saying to restore the key", err)
	}
}

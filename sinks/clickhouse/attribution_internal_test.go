package clickhouse

import "testing"

// TestPeopleFollowTheRules gives each kind of subject the directory and
// links can describe and checks the person and attribution the rules in
// attribution.go give it.
func TestPeopleFollowTheRules(t *testing.T) {
	user := func(id, directory, linked string) subjectRow {
		return subjectRow{Subject: Subject{Vendor: "openai", Kind: "user", ID: id}, directory: directory, linked: linked}
	}
	key := func(id, ownerKind, ownerID, inline, linked string) subjectRow {
		return subjectRow{Subject: Subject{Vendor: "openai", Kind: "api_key", ID: id, OwnerKind: ownerKind, OwnerID: ownerID},
			directory: inline, linked: linked}
	}
	rows := []subjectRow{
		user("u-ann", "ann@example.com", ""),
		user("u-bob", "bob@example.com", "robert@example.com"),
		user("u-nomail", "", ""),
		key("k-ann", "user", "u-ann", "", ""),                                                                    // holder found among the users
		key("k-bob", "user", "u-bob", "", ""),                                                                    // the holder's link decides their email
		key("k-inline", "user", "u-gone", "cat@example.com", ""),                                                 // the holder's email given inline
		key("k-svc", "service_account", "svc-1", "", ""),                                                         // no person holds it
		key("k-svc-linked", "service_account", "svc-1", "", "dan@example.com"),                                   // a link names who does
		key("k-unknown", "user", "u-unknown", "", ""),                                                            // a holder the directory does not know
		key("k-nomail", "user", "u-nomail", "", ""),                                                              // a holder without an email
		{Subject: Subject{Vendor: "openai", Kind: "project", ID: "p-1"}},                                         // not a user or key: left out
		{Subject: Subject{Vendor: "anthropic", Kind: "api_key", ID: "k-x", OwnerKind: "user", OwnerID: "u-ann"}}, // another vendor's u-ann
	}
	want := map[string][2]string{
		"u-ann":        {"ann@example.com", "user"},
		"u-bob":        {"robert@example.com", "user"},
		"u-nomail":     {"", "unmapped"},
		"k-ann":        {"ann@example.com", "key_owner"},
		"k-bob":        {"robert@example.com", "key_owner"},
		"k-inline":     {"cat@example.com", "key_owner"},
		"k-svc":        {"", "unmapped"},
		"k-svc-linked": {"dan@example.com", "user"},
		"k-unknown":    {"", "unmapped"},
		"k-nomail":     {"", "unmapped"},
		"k-x":          {"", "unmapped"},
	}
	got := people(rows)
	if len(got) != len(want) {
		t.Fatalf("%d subjects, want %d: %+v", len(got), len(want), got)
	}
	for _, s := range got {
		w, ok := want[s.ID]
		if !ok {
			t.Errorf("%s: not a subject of the rules", s.ID)
			continue
		}
		if s.Person != w[0] || s.Attribution != w[1] {
			t.Errorf("%s: person %q, attribution %s; want %q, %s", s.ID, s.Person, s.Attribution, w[0], w[1])
		}
		if s.Linked != (s.ID == "u-bob" || s.ID == "k-svc-linked") {
			t.Errorf("%s: linked %v", s.ID, s.Linked)
		}
	}
}

package clickhouse

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"

	"github.com/ogma-dev/ogma/pipeline/normalize"
)

// Attribution: who a vendor subject (a user, an API key) and each usage
// row belong to, resolved when read, so that a late directory update or a
// link changes the past without touching the chain. The rules live here
// alone — a subject's in people, a usage row's (its user's, else its
// key's) in attribute — and the API's people, the usage queries and the
// unmapped panel all read them through these. In order:
//
//   - the vendor named the user: their link, else their directory email → user
//   - a link on the API key → user (an operator confirmed who holds it)
//   - the key's holder is a user with an email (inline, or through the
//     users list) → key_owner (inferred; to confirm)
//   - anything else (service account, unknown key or user) → unmapped
//
// What each subject is now — its directory entry (directoryOf) and its
// latest link (linksOf) — is SQL, filtered by tenant before it aggregates,
// two queries of one level each (on ClickHouse 18.16 a level of subquery
// costs more than these reads); the rules are Go.

// query is SQL with its arguments, in order.
type query struct {
	text string
	args []any
}

// directoryOf returns the query of each subject of tenant as the
// directory knows it now: vendor, subject_kind, subject_id, its last known
// email (for a key, its holder's when given inline), its holder
// (owner_kind, owner_id; a deleted key keeps the holder its history
// names), its name, and whether the directory has it (absent) — judged on
// organization objects only, since leaving a project or a workspace is not
// leaving the organization.
func directoryOf(tenant string) query {
	return query{`SELECT vendor, subject_kind, subject_id,
			argMaxIf(email, seq, email != '') AS d_email,
			argMaxIf(owner_kind, seq, absent = 0) AS d_owner_kind,
			argMaxIf(owner_id, seq, absent = 0) AS d_owner_id,
			argMaxIf(name, seq, name != '') AS d_name,
			argMaxIf(absent, seq, object NOT IN ('project_user', 'workspace_member')) AS d_absent
		FROM identities WHERE tenant = ?
		GROUP BY vendor, subject_kind, subject_id`, []any{tenant}}
}

// linksOf returns the query of each subject of tenant that was ever
// linked: vendor, subject_kind, subject_id, and its latest link's email
// ("" once unlinked).
func linksOf(tenant string) query {
	return query{`SELECT subject_vendor, subject_kind, subject_id, argMax(email, seq)
		FROM links WHERE tenant = ?
		GROUP BY subject_vendor, subject_kind, subject_id`, []any{tenant}}
}

// subjectRow is a subject as directoryOf and linksOf have it, before the
// rules give it a person.
type subjectRow struct {
	Subject
	linked, directory string // the latest link's email, the directory's
}

// people gives each user and API key its person and attribution: the
// subject's rule. A key's holder is found among the users of its vendor.
func people(rows []subjectRow) []Subject {
	owners := map[[2]string]string{} // a user's email: linked, else the directory's
	for _, r := range rows {
		if r.Kind == normalize.SubjectUser {
			owners[[2]string{r.Vendor, r.ID}] = cmp.Or(r.linked, r.directory)
		}
	}
	out := make([]Subject, 0, len(rows))
	for _, r := range rows {
		if r.Kind != normalize.SubjectUser && r.Kind != normalize.SubjectAPIKey {
			continue
		}
		var holder string
		switch {
		case r.Kind == normalize.SubjectUser:
			holder = r.directory
		case r.OwnerKind != normalize.SubjectUser:
		case r.directory != "": // the holder's email, given inline
			holder = r.directory
		default:
			holder = owners[[2]string{r.Vendor, r.OwnerID}]
		}
		sub := r.Subject
		sub.Person, sub.Linked = cmp.Or(r.linked, holder), r.linked != ""
		switch {
		case r.linked != "":
			sub.Attribution = "user"
		case holder == "":
			sub.Attribution = "unmapped"
		case r.Kind == normalize.SubjectUser:
			sub.Attribution = "user"
		default:
			sub.Attribution = "key_owner"
		}
		out = append(out, sub)
	}
	return out
}

// subjects are a tenant's users and API keys by vendor, kind and id.
type subjects map[[3]string]Subject

func subjectsByID(subs []Subject) subjects {
	m := make(subjects, len(subs))
	for _, s := range subs {
		m[[3]string{s.Vendor, s.Kind, s.ID}] = s
	}
	return m
}

// attribute returns the person and attribution of a usage row of vendor
// naming user and key (either may be ""): the user's when the rules
// attribute the user, else the key's; unmapped when neither is known.
func (m subjects) attribute(vendor, user, key string) (person, attribution string) {
	if u := m[[3]string{vendor, normalize.SubjectUser, user}]; user != "" && u.Attribution == "user" {
		return u.Person, "user"
	}
	if k := m[[3]string{vendor, normalize.SubjectAPIKey, key}]; key != "" && k.Attribution != "" {
		return k.Person, k.Attribution
	}
	return "", "unmapped"
}

// PersonID returns the opaque id of a person (a lower-cased email) within
// a tenant: stable, and not the email, so that paths and logs do not carry
// addresses. It is a digest, not a secret: whoever knows an email and the
// tenant can compute it.
func PersonID(tenant, email string) string {
	h := sha256.Sum256([]byte("ogma-person/v1\x00" + tenant + "\x00" + email))
	return "p_" + hex.EncodeToString(h[:12])
}

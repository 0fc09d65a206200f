package clickhouse

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/ogma-dev/ogma/pipeline/normalize"
)

// Attribution: who a vendor subject (a user, an API key) and each usage
// row belong to, resolved when read, so that a late directory update or a
// link changes the past without touching the chain. The rules live here
// alone — a subject's in peopleOf, a usage row's (its user's, else its
// key's) in attribute — and the API's people, the usage queries and the
// unmapped panel all read them through these. In order:
//
//   - the vendor named the user: their link, else their directory email → user
//   - a link on the API key → user (an operator confirmed who holds it)
//   - the key's holder is a user with an email (inline, or through the
//     users list) → key_owner (inferred; to confirm)
//   - anything else (service account, unknown key or user) → unmapped
//
// Every query filters by tenant before it aggregates or joins. 18.16 has
// one JOIN per SELECT, hence the nesting.

// query is SQL with its arguments, in order.
type query struct {
	text string
	args []any
}

// subjectsOf returns the query of each subject of tenant as known now:
// vendor, subject_kind, subject_id, its latest link (linked_email), its
// last known directory email (for a key, its holder's when given inline),
// its holder (owner_kind, owner_id; a deleted key keeps the holder its
// history names), its name, and whether the directory has it (absent) —
// judged on organization objects only, since leaving a project or a
// workspace is not leaving the organization.
func subjectsOf(tenant string) query {
	return query{`SELECT vendor, subject_kind, subject_id,
				argMaxIf(email, seq, src = 'link') AS linked_email,
				argMaxIf(email, seq, src = 'directory' AND email != '') AS directory_email,
				argMaxIf(owner_kind, seq, src = 'directory' AND gone = 0) AS owner_kind,
				argMaxIf(owner_id, seq, src = 'directory' AND gone = 0) AS owner_id,
				argMaxIf(name, seq, src = 'directory' AND name != '') AS name,
				argMaxIf(gone, seq, src = 'directory' AND object NOT IN ('project_user', 'workspace_member')) AS absent
			FROM (
				SELECT vendor, object, subject_kind, subject_id, email, owner_kind, owner_id, name, absent AS gone, seq, 'directory' AS src
				FROM identities WHERE tenant = ?
				UNION ALL
				SELECT subject_vendor AS vendor, '' AS object, subject_kind, subject_id, email, '' AS owner_kind, '' AS owner_id,
					'' AS name, toUInt8(0) AS gone, seq, 'link' AS src
				FROM links WHERE tenant = ?
			)
			GROUP BY vendor, subject_kind, subject_id`, []any{tenant, tenant}}
}

// peopleOf returns the query of each user and API key of tenant with the
// person (a lower-cased email, "" for none) and attribution the rules give
// it, beside subjectsOf's columns: vendor, subject_kind, subject_id,
// person, attribution, linked_email, owner_kind, owner_id, name, absent.
func peopleOf(tenant string) query {
	subjects, users := subjectsOf(tenant), subjectsOf(tenant)
	return query{`SELECT vendor, subject_kind, subject_id,
				if(linked_email != '', linked_email, holder_email) AS person,
				multiIf(linked_email != '', 'user', holder_email != '', if(subject_kind = 'user', 'user', 'key_owner'), 'unmapped') AS attribution,
				linked_email, owner_kind, owner_id, name, absent
			FROM (
				SELECT vendor, subject_kind, subject_id, linked_email, owner_kind, owner_id, name, absent,
					multiIf(subject_kind = 'user', directory_email,
						owner_kind != 'user', '',
						directory_email != '', directory_email, owner_email) AS holder_email
				FROM (SELECT * FROM (` + subjects.text + `) WHERE subject_kind IN ('user', 'api_key'))
				ANY LEFT JOIN (
					SELECT vendor, subject_id AS owner_id, if(linked_email != '', linked_email, directory_email) AS owner_email
					FROM (` + users.text + `) WHERE subject_kind = 'user'
				) USING (vendor, owner_id)
			)`, append(subjects.args, users.args...)}
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

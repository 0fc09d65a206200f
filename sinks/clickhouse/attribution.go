package clickhouse

// Attribution: who a vendor subject (a user, an API key) and each usage
// row belong to, resolved when read, so that a late directory update or a
// link changes the past without touching the chain. The rules live here
// alone — the API's people, the usage queries and the unmapped panel all
// read them through these queries. In order:
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

// attributedUsage returns the query of the rows of rows (a query over a
// usage table that names vendor, user_id and api_key_id among cols, and
// filters by the tenant first) with cols plus each row's person and
// attribution: the user's when the vendor named a user the rules
// attribute, else the key's.
func attributedUsage(tenant string, rows query, cols string) query {
	users, keys := peopleOf(tenant), peopleOf(tenant)
	args := append(append(append([]any{}, rows.args...), users.args...), keys.args...)
	return query{`SELECT ` + cols + `,
				if(user_attribution = 'user', user_person, key_person) AS person,
				if(user_attribution = 'user', 'user', if(key_attribution = '', 'unmapped', key_attribution)) AS attribution
			FROM (
				SELECT ` + cols + `, user_person, user_attribution
				FROM (` + rows.text + `)
				ANY LEFT JOIN (
					SELECT vendor, subject_id AS user_id, person AS user_person, attribution AS user_attribution
					FROM (` + users.text + `) WHERE subject_kind = 'user'
				) USING (vendor, user_id)
			)
			ANY LEFT JOIN (
				SELECT vendor, subject_id AS api_key_id, person AS key_person, attribution AS key_attribution
				FROM (` + keys.text + `) WHERE subject_kind = 'api_key'
			) USING (vendor, api_key_id)`, args}
}

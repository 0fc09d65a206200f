package clickhouse

// Migrations is the schema, oldest first. Append only: a released migration
// is never edited, since databases already hold its result.
var Migrations = []Migration{
	{
		Version: 1,
		Name:    "ledger",
		Statements: []string{
			// The ledger: one row per chained event, exactly as hashed. It is the
			// public contract verifiers and dashboards read. Identical
			// redeliveries collapse on (tenant, seq, hash); a fork stays
			// visible as two rows of one seq.
			`CREATE TABLE IF NOT EXISTS events (
				tenant String,
				seq UInt64,
				prev String,
				hash String,
				kind String,
				vendor String,
				stream String,
				key String,
				rev UInt32,
				observed_at DateTime('UTC'),
				data_digest String,
				canonical String,
				data String,
				salt String,
				source_partition Int32,
				source_offset Int64
			) ENGINE = ReplacingMergeTree
			PARTITION BY toYYYYMM(observed_at)
			ORDER BY (tenant, seq, hash)`,
		},
	},
	{
		Version: 2,
		Name:    "usage projections",
		Statements: []string{
			// Settled usage facts, one row per fact key; the latest revision
			// (highest seq) wins on merge and under FINAL.
			`CREATE TABLE IF NOT EXISTS usage (
				tenant String,
				vendor String,
				stream String,
				key String,
				primary_set UInt8,
				day Date,
				bucket_start DateTime('UTC'),
				model String,
				user_id String,
				project_id String,
				api_key_id String,
				batch String,
				service_tier String,
				input_tokens Int64,
				input_cached_tokens Int64,
				output_tokens Int64,
				num_model_requests Int64,
				rev UInt32,
				seq UInt64
			) ENGINE = ReplacingMergeTree(seq)
			ORDER BY (tenant, vendor, stream, key)`,
			// Open buckets as last fetched. Each ogma.provisional record is one
			// version (its offset) of a bucket: kind 0 a row, 1 the bucket
			// settled (its rows are facts now), 2 the bucket was empty, 3 a
			// row that totals do not count (a breakdown of usage another row
			// counts; stream.Spec.Counts). Reads take each bucket's highest
			// version.
			`CREATE TABLE IF NOT EXISTS usage_provisional (
				tenant String,
				vendor String,
				stream String,
				bucket_start DateTime('UTC'),
				version Int64,
				kind UInt8,
				row UInt32,
				day Date,
				model String,
				user_id String,
				project_id String,
				api_key_id String,
				batch String,
				service_tier String,
				input_tokens Int64,
				input_cached_tokens Int64,
				output_tokens Int64,
				num_model_requests Int64,
				fetched_at DateTime('UTC')
			) ENGINE = ReplacingMergeTree
			ORDER BY (tenant, vendor, stream, bucket_start, version, row)`,
		},
	},
	{
		Version: 3,
		Name:    "costs projection",
		Statements: []string{
			// Billed cost facts, one row per fact key, the latest revision
			// winning. Money is exact: parsed from the vendor's JSON text.
			`CREATE TABLE IF NOT EXISTS costs (
				tenant String,
				vendor String,
				stream String,
				key String,
				day Date,
				bucket_start DateTime('UTC'),
				project_id String,
				line_item String,
				amount Decimal(18, 9),
				currency String,
				rev UInt32,
				seq UInt64
			) ENGINE = ReplacingMergeTree(seq)
			ORDER BY (tenant, vendor, stream, key)`,
		},
	},
	{
		Version: 4,
		Name:    "identities, links and attribution",
		Statements: []string{
			// Every revision of every directory object, reduced to who it
			// names. Revisions are kept (seq is in the sort key) so that a
			// deleted user — an absent revision — keeps the email of their
			// history.
			`CREATE TABLE IF NOT EXISTS identities (
				tenant String,
				vendor String,
				object String,
				id String,
				subject_kind String,
				subject_id String,
				email String,
				owner_kind String,
				owner_id String,
				project_id String,
				absent UInt8,
				seq UInt64
			) ENGINE = ReplacingMergeTree
			ORDER BY (tenant, vendor, subject_kind, subject_id, seq)`,
			// Every manual link event; an empty email removes a link.
			`CREATE TABLE IF NOT EXISTS links (
				tenant String,
				subject_vendor String,
				subject_kind String,
				subject_id String,
				email String,
				linked_by String,
				linked_at DateTime('UTC'),
				seq UInt64
			) ENGINE = ReplacingMergeTree
			ORDER BY (tenant, subject_vendor, subject_kind, subject_id, seq)`,
			// Each vendor subject (user, api_key, service_account, …) as known
			// now: its latest link, its last known directory email (for a key,
			// its owner's), its owner kind, and whether the directory has it
			// (leaving a project is not leaving the organization).
			subjectsView("object != 'project_user'", false),
			attributedView("usage_attributed", "usage FINAL", "rev, seq", inlineKeyOwners),
			attributedView("usage_provisional_attributed", "usage_provisional", "version, kind, row, fetched_at", inlineKeyOwners),
		},
	},
	{
		Version: 5,
		Name:    "installation and refusals",
		Statements: []string{
			// Which installation's ledger this database holds: a database
			// that outlived its installation's Kafka would otherwise refuse
			// every tenant, silently.
			`CREATE TABLE IF NOT EXISTS installation (
				id String,
				claimed_at DateTime('UTC')
			) ENGINE = TinyLog`,
			// Tenants the sink refuses to write, and why: the API does not
			// acknowledge writes that cannot reach the ledger.
			`CREATE TABLE IF NOT EXISTS refusals (
				tenant String,
				reason String,
				refused_at DateTime('UTC')
			) ENGINE = ReplacingMergeTree(refused_at)
			ORDER BY tenant`,
		},
	},
	{
		Version: 6,
		Name:    "anchors",
		Statements: []string{
			// One row per tenant leaf of each statement the log took: the
			// tenant's whole receipt (export and verification read it here).
			`CREATE TABLE IF NOT EXISTS anchors (
				tenant String,
				anchor_index UInt64,
				seq UInt64,
				hash String,
				leaf_index UInt32,
				tree_size UInt32,
				leaf_path String,
				root String,
				statement String,
				statement_digest String,
				signature String,
				log_url String,
				log_uuid String,
				log_index Int64,
				integrated_time DateTime('UTC'),
				entry String
			) ENGINE = ReplacingMergeTree(anchor_index)
			ORDER BY (tenant, anchor_index)`,
		},
	},
	{
		Version: 7,
		Name:    "key holders found through the users list",
		Statements: []string{
			// Anthropic names a key's holder by user id only: the holder's
			// email comes from the users list, when read, as a user's does.
			`DROP TABLE IF EXISTS usage_attributed`,
			`DROP TABLE IF EXISTS usage_provisional_attributed`,
			// Leaving an Anthropic workspace is not leaving the organization
			// either; and a deleted key keeps the holder its history names.
			`DROP TABLE IF EXISTS subjects`,
			subjectsView("object NOT IN ('project_user', 'workspace_member')", true),
			attributedView("usage_attributed", "usage FINAL", "rev, seq", keyOwnersThroughUsers),
			attributedView("usage_provisional_attributed", "usage_provisional", "version, kind, row, fetched_at", keyOwnersThroughUsers),
		},
	},
	{
		Version: 8,
		Name:    "cache writes, list-price estimates, exact billed amounts",
		Statements: []string{
			// The canonical columns gain the cache writes, and each row its
			// estimate at list price (pipeline/price): dollars, whether the
			// table priced its model, and the table's version. Rows projected
			// before read as unpriced.
			// One statement a table: 18.16 has no ADD COLUMN IF NOT EXISTS.
			`ALTER TABLE usage ADD COLUMN input_cache_write_5m Int64, ADD COLUMN input_cache_write_1h Int64,
				ADD COLUMN estimated_usd Decimal(18, 9), ADD COLUMN priced UInt8, ADD COLUMN price_version String`,
			`ALTER TABLE usage_provisional ADD COLUMN input_cache_write_5m Int64, ADD COLUMN input_cache_write_1h Int64,
				ADD COLUMN estimated_usd Decimal(18, 9), ADD COLUMN priced UInt8, ADD COLUMN price_version String`,
			// Billed amounts keep every digit the vendor sent: OpenAI's are
			// JSON numbers of up to 17 significant digits, which nine
			// decimals cut.
			`ALTER TABLE costs MODIFY COLUMN amount Decimal(38, 18)`,
			`DROP TABLE IF EXISTS usage_attributed`,
			`DROP TABLE IF EXISTS usage_provisional_attributed`,
			attributedView("usage_attributed", "usage FINAL", estimateColumns+", rev, seq", keyOwnersThroughUsers),
			attributedView("usage_provisional_attributed", "usage_provisional", estimateColumns+", version, kind, row, fetched_at", keyOwnersThroughUsers),
		},
	},
	{
		Version: 9,
		Name:    "units other than tokens",
		Statements: []string{
			// Images, TTS characters, transcribed seconds, stored bytes,
			// sessions and search calls (normalize.Usage); rows projected
			// before read as 0 of each.
			`ALTER TABLE usage ADD COLUMN images Int64, ADD COLUMN characters Int64, ADD COLUMN seconds Int64,
				ADD COLUMN bytes Int64, ADD COLUMN sessions Int64, ADD COLUMN calls Int64`,
			`ALTER TABLE usage_provisional ADD COLUMN images Int64, ADD COLUMN characters Int64, ADD COLUMN seconds Int64,
				ADD COLUMN bytes Int64, ADD COLUMN sessions Int64, ADD COLUMN calls Int64`,
			`DROP TABLE IF EXISTS usage_attributed`,
			`DROP TABLE IF EXISTS usage_provisional_attributed`,
			attributedView("usage_attributed", "usage FINAL", estimateColumns+", "+unitColumns+", rev, seq", keyOwnersThroughUsers),
			attributedView("usage_provisional_attributed", "usage_provisional", estimateColumns+", "+unitColumns+", version, kind, row, fetched_at", keyOwnersThroughUsers),
		},
	},
	{
		Version: 10,
		Name:    "attribution read per tenant; names of subjects",
		Statements: []string{
			// The attribution rules now live in one place, the queries of
			// attribution.go, which filter by tenant before they join: the
			// views that joined every tenant's rows go.
			`DROP TABLE IF EXISTS usage_attributed`,
			`DROP TABLE IF EXISTS usage_provisional_attributed`,
			`DROP TABLE IF EXISTS subjects`,
			// A key's, user's, project's or workspace's name, as the
			// directory gives it ('' before).
			`ALTER TABLE identities ADD COLUMN name String`,
		},
	},
	{
		Version: 11,
		Name:    "audit log",
		Statements: []string{
			// Each audit event as the latest revision of it says
			// (normalize.Audit); the ledger keeps the whole event.
			`CREATE TABLE IF NOT EXISTS audit_logs (
				tenant String,
				vendor String,
				id String,
				type String,
				effective_at DateTime('UTC'),
				actor_type String,
				actor_id String,
				actor_email String,
				project_id String,
				project_name String,
				resource_id String,
				seq UInt64
			) ENGINE = ReplacingMergeTree(seq)
			ORDER BY (tenant, vendor, id)`,
		},
	},
	{
		Version: 12,
		Name:    "usage sorted by day and a digest of the fact key",
		Statements: []string{
			// Reads take the latest revision of each fact (FINAL), which
			// reads the sort key whole: the fact key's JSON made that cost
			// seconds over a 1,000-user quarter. Sorted by day and two
			// 64-bit digests of (vendor, stream, key) — no two facts of a
			// tenant's day share both — it costs tens of milliseconds, and
			// a window reads only its months.
			`CREATE TABLE IF NOT EXISTS usage_v12 (
				tenant String,
				vendor String,
				stream String,
				key String,
				primary_set UInt8,
				day Date,
				bucket_start DateTime('UTC'),
				model String,
				user_id String,
				project_id String,
				api_key_id String,
				batch String,
				service_tier String,
				input_tokens Int64,
				input_cached_tokens Int64,
				output_tokens Int64,
				num_model_requests Int64,
				rev UInt32,
				seq UInt64,
				input_cache_write_5m Int64,
				input_cache_write_1h Int64,
				estimated_usd Decimal(18, 9),
				priced UInt8,
				price_version String,
				images Int64,
				characters Int64,
				seconds Int64,
				bytes Int64,
				sessions Int64,
				calls Int64,
				fact_hash UInt64 MATERIALIZED cityHash64(vendor, stream, key),
				fact_hash2 UInt64 MATERIALIZED sipHash64(vendor, stream, key)
			) ENGINE = ReplacingMergeTree(seq)
			PARTITION BY toYYYYMM(day)
			ORDER BY (tenant, day, fact_hash, fact_hash2)`,
			`INSERT INTO usage_v12 (tenant, vendor, stream, key, primary_set, day, bucket_start, model, user_id, project_id, api_key_id, batch, service_tier,
				input_tokens, input_cached_tokens, output_tokens, num_model_requests, rev, seq, input_cache_write_5m, input_cache_write_1h,
				estimated_usd, priced, price_version, images, characters, seconds, bytes, sessions, calls)
				SELECT tenant, vendor, stream, key, primary_set, day, bucket_start, model, user_id, project_id, api_key_id, batch, service_tier,
				input_tokens, input_cached_tokens, output_tokens, num_model_requests, rev, seq, input_cache_write_5m, input_cache_write_1h,
				estimated_usd, priced, price_version, images, characters, seconds, bytes, sessions, calls FROM usage`,
			`RENAME TABLE usage TO usage_v11, usage_v12 TO usage`,
			`DROP TABLE usage_v11`,
		},
	},
	{
		Version: 13,
		Name:    "usage rollup",
		Statements: []string{
			// When ClickHouse received each usage row (rows from before:
			// the epoch), so that a rollup can be built exactly once of the
			// rows written before a cutoff, and the rest read beside it
			// (rollup.go). Migration 12's table, written out again: a
			// migration's text never changes once it has run somewhere.
			`CREATE TABLE IF NOT EXISTS usage_v13 (
				tenant String,
				vendor String,
				stream String,
				key String,
				primary_set UInt8,
				day Date,
				bucket_start DateTime('UTC'),
				model String,
				user_id String,
				project_id String,
				api_key_id String,
				batch String,
				service_tier String,
				input_tokens Int64,
				input_cached_tokens Int64,
				output_tokens Int64,
				num_model_requests Int64,
				rev UInt32,
				seq UInt64,
				input_cache_write_5m Int64,
				input_cache_write_1h Int64,
				estimated_usd Decimal(18, 9),
				priced UInt8,
				price_version String,
				images Int64,
				characters Int64,
				seconds Int64,
				bytes Int64,
				sessions Int64,
				calls Int64,
				written_at DateTime DEFAULT now(),
				fact_hash UInt64 MATERIALIZED cityHash64(vendor, stream, key),
				fact_hash2 UInt64 MATERIALIZED sipHash64(vendor, stream, key)
			) ENGINE = ReplacingMergeTree(seq)
			PARTITION BY toYYYYMM(day)
			ORDER BY (tenant, day, fact_hash, fact_hash2)`,
			`INSERT INTO usage_v13 (tenant, vendor, stream, key, primary_set, day, bucket_start, model, user_id, project_id, api_key_id, batch, service_tier,
				input_tokens, input_cached_tokens, output_tokens, num_model_requests, rev, seq, input_cache_write_5m, input_cache_write_1h,
				estimated_usd, priced, price_version, images, characters, seconds, bytes, sessions, calls, written_at)
				SELECT tenant, vendor, stream, key, primary_set, day, bucket_start, model, user_id, project_id, api_key_id, batch, service_tier,
				input_tokens, input_cached_tokens, output_tokens, num_model_requests, rev, seq, input_cache_write_5m, input_cache_write_1h,
				estimated_usd, priced, price_version, images, characters, seconds, bytes, sessions, calls, toDateTime(0) FROM usage`,
			`RENAME TABLE usage TO usage_v12, usage_v13 TO usage`,
			`DROP TABLE usage_v12`,
			// Settled usage summed by day, by month and by tenth of a month
			// (grain 0, 1, 2), per tenant and build: a build is a partition,
			// so that an old one is dropped whole, without a mutation that
			// would rewrite every tenant's rows.
			`CREATE TABLE IF NOT EXISTS usage_rollup (
				tenant String,
				build UInt64,
				grain UInt8,
				day Date,
				vendor String,
				stream String,
				model String,
				user_id String,
				project_id String,
				api_key_id String,
				input_tokens Int64,
				input_cached_tokens Int64,
				input_cache_write_5m Int64,
				input_cache_write_1h Int64,
				output_tokens Int64,
				num_model_requests Int64,
				images Int64,
				characters Int64,
				seconds Int64,
				bytes Int64,
				sessions Int64,
				calls Int64,
				estimated_usd Decimal(18, 9),
				unpriced UInt64,
				price_version String,
				n UInt64,
				first_day Date,
				last_day Date
			) ENGINE = MergeTree
			PARTITION BY build
			ORDER BY (tenant, grain, day)`,
			// Each tenant's builds: recorded when begun (done 0), so that a
			// build cut short is still dropped, and again once its rows are
			// all in (done 1); reads take the latest done, counting the rows
			// written before through.
			`CREATE TABLE IF NOT EXISTS usage_rollup_builds (
				tenant String,
				build UInt64,
				through DateTime,
				done UInt8
			) ENGINE = MergeTree
			ORDER BY (tenant, build)`,
		},
	},
	{
		Version: 14,
		Name:    "manifests",
		Statements: []string{
			// Each settled bucket of each report stream (a manifest event),
			// so that how complete a tenant's reports are is read from its
			// own rows, not found among every event of the ledger, where
			// manifests are one row in many (~15 ms of each usage read at
			// 300k events, growing with the ledger). Filled from the
			// ledger once; a repeat of a row collapses on its key.
			`CREATE TABLE IF NOT EXISTS manifests (
				tenant String,
				vendor String,
				stream String,
				bucket_start String,
				seq UInt64
			) ENGINE = ReplacingMergeTree(seq)
			ORDER BY (tenant, vendor, stream, bucket_start)`,
			`INSERT INTO manifests (tenant, vendor, stream, bucket_start, seq)
				SELECT tenant, vendor, stream, visitParamExtractString(key, 'bucket_start'), seq FROM events WHERE kind = 'manifest'`,
		},
	},
	{
		Version: 15,
		Name:    "provisional versions",
		Statements: []string{
			// Each version of each open bucket, so that a read finds each
			// bucket's highest here instead of among every row of every
			// version usage_provisional keeps (a day's bucket is fetched
			// ~100 times: at 30 days of 3,000-row buckets, 8.6M rows).
			// Filled from usage_provisional once.
			`CREATE TABLE IF NOT EXISTS provisional_versions (
				tenant String,
				vendor String,
				stream String,
				bucket_start DateTime('UTC'),
				version Int64
			) ENGINE = ReplacingMergeTree(version)
			ORDER BY (tenant, vendor, stream, bucket_start)`,
			`INSERT INTO provisional_versions (tenant, vendor, stream, bucket_start, version)
				SELECT tenant, vendor, stream, bucket_start, max(version) FROM usage_provisional GROUP BY tenant, vendor, stream, bucket_start`,
		},
	},
}

// estimateColumns are the columns migration 8 adds to the usage tables;
// unitColumns those migration 9 adds.
const (
	estimateColumns = "input_cache_write_5m, input_cache_write_1h, estimated_usd, priced, price_version"
	unitColumns     = "images, characters, seconds, bytes, sessions, calls"
)

// subjectsView returns the DDL of the view of each vendor subject (user,
// api_key, service_account, …) as known now: its latest link, its last
// known directory email (for a key, its owner's), its owner, and whether
// the directory has it — judged only on objects notMembership admits, since
// leaving a project is not leaving the organization. With ownerOfPresent, a
// key's owner is read from its rows but absent revisions (which name no
// owner), so a deleted key keeps the holder of its history.
func subjectsView(notMembership string, ownerOfPresent bool) string {
	owned, gone, linkGone := "src = 'directory'", "", ""
	if ownerOfPresent {
		// A column of its own: "absent" is the output's name, which 18.16
		// would read as the aggregate.
		owned, gone, linkGone = "src = 'directory' AND gone = 0", " absent AS gone,", " toUInt8(0) AS gone,"
	}
	return `CREATE VIEW IF NOT EXISTS subjects AS
			SELECT tenant, vendor, subject_kind, subject_id,
				argMaxIf(email, seq, src = 'link') AS linked_email,
				argMaxIf(email, seq, src = 'directory' AND email != '') AS directory_email,
				argMaxIf(owner_kind, seq, ` + owned + `) AS owner_kind,
				argMaxIf(owner_id, seq, ` + owned + `) AS owner_id,
				argMaxIf(absent, seq, src = 'directory' AND ` + notMembership + `) AS absent,
				max(seq) AS last_seq
			FROM (
				SELECT tenant, vendor, object, subject_kind, subject_id, email, owner_kind, owner_id, absent,` + gone + ` seq, 'directory' AS src
				FROM identities
				UNION ALL
				SELECT tenant, subject_vendor AS vendor, '' AS object, subject_kind, subject_id, email, '' AS owner_kind, '' AS owner_id,
					toUInt8(0) AS absent,` + linkGone + ` seq, 'link' AS src
				FROM links
			)
			GROUP BY tenant, vendor, subject_kind, subject_id`
}

// The API keys an attributed view joins, each with its link and its
// holder's email: as the key's own directory row gives it (OpenAI names
// the owner's email inline), or else through the holder's user row.
const (
	inlineKeyOwners = `SELECT tenant, vendor, subject_id AS api_key_id, linked_email AS key_linked,
					if(owner_kind = 'user', directory_email, '') AS key_email
				FROM subjects WHERE subject_kind = 'api_key'`
	keyOwnersThroughUsers = `SELECT tenant, vendor, api_key_id, key_linked,
					if(owner_kind = 'user', if(key_directory_email != '', key_directory_email, owner_email), '') AS key_email
				FROM (
					SELECT tenant, vendor, subject_id AS api_key_id, linked_email AS key_linked,
						directory_email AS key_directory_email, owner_kind, owner_id
					FROM subjects WHERE subject_kind = 'api_key'
				)
				ANY LEFT JOIN (
					SELECT tenant, vendor, subject_id AS owner_id, if(linked_email != '', linked_email, directory_email) AS owner_email
					FROM subjects WHERE subject_kind = 'user'
				) USING (tenant, vendor, owner_id)`
)

// attributedView returns the DDL of a view over a usage table that gives
// each row a person (a lower-cased email, empty when none) and an attribution
// state, resolved when read: a late directory update or a link changes the
// past without touching the chain. In order:
//
//   - the vendor named the user: their link, else their directory email → user
//   - a link on the API key → user (an operator confirmed who holds it)
//   - the key's owner is a user → key_owner (inferred; to confirm)
//   - anything else (service account, unknown key or user) → unmapped
//
// 18.16 has one JOIN per SELECT, hence the nesting.
func attributedView(name, from, extra, keys string) string {
	cols := "tenant, vendor, stream, day, bucket_start, model, user_id, project_id, api_key_id, batch, service_tier, " +
		"input_tokens, input_cached_tokens, output_tokens, num_model_requests, " + extra
	if from == "usage FINAL" {
		cols = "key, primary_set, " + cols
	}
	return `CREATE VIEW IF NOT EXISTS ` + name + ` AS
			SELECT ` + cols + `,
				multiIf(user_linked != '', user_linked, user_email != '', user_email, key_linked != '', key_linked, key_email) AS person,
				multiIf(user_linked != '' OR user_email != '' OR key_linked != '', 'user', key_email != '', 'key_owner', 'unmapped') AS attribution
			FROM (
				SELECT ` + cols + `, user_linked, user_email
				FROM (SELECT ` + cols + ` FROM ` + from + `)
				ANY LEFT JOIN (
					SELECT tenant, vendor, subject_id AS user_id, linked_email AS user_linked, directory_email AS user_email
					FROM subjects WHERE subject_kind = 'user'
				) USING (tenant, vendor, user_id)
			)
			ANY LEFT JOIN (
				` + keys + `
			) USING (tenant, vendor, api_key_id)`
}

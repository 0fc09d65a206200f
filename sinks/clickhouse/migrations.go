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
			// settled (its rows are facts now), 2 the bucket was empty. Reads
			// take each bucket's highest version.
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
}

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
}

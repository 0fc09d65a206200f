package clickhouse

import "context"

// MigrateTo applies a given migration list, for tests.
func MigrateTo(ctx context.Context, s *Store, ms []Migration) ([]int, error) {
	return s.migrate(ctx, ms)
}

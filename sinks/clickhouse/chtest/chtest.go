// Package chtest gives each test a fresh database on a real ClickHouse
// server: the one at $OGMA_TEST_CLICKHOUSE, default 127.0.0.1:9000, which
// `make test` starts (deploy/clickhouse-local.sh).
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ogma-dev/ogma/sinks/clickhouse"
)

// Addr returns the test server's native-protocol address.
func Addr() string {
	if a := os.Getenv("OGMA_TEST_CLICKHOUSE"); a != "" {
		return a
	}
	return "127.0.0.1:9000"
}

// NewDB returns the config of a new, empty database, dropped when the test
// ends. It fails the test when no server answers.
func NewDB(t testing.TB) clickhouse.Config {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	cfg := clickhouse.Config{Addr: Addr(), Database: "ogma_test_" + hex.EncodeToString(b), Timeout: 30 * time.Second}
	conn, err := ch.Open(&ch.Options{Addr: []string{cfg.Addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("clickhouse at %s: %v (run `make clickhouse` or set OGMA_TEST_CLICKHOUSE)", cfg.Addr, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		t.Fatalf("clickhouse at %s does not answer: %v (run `make clickhouse` or set OGMA_TEST_CLICKHOUSE)", cfg.Addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Errorf("drop test database %s: %v", cfg.Database, err)
		}
		conn.Close()
	})
	return cfg
}

// NewStore opens a store on a new database (see [NewDB]), migrated to the
// current schema, and closes it when the test ends.
func NewStore(t testing.TB) (*clickhouse.Store, clickhouse.Config) {
	t.Helper()
	cfg := NewDB(t)
	store, err := clickhouse.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return store, cfg
}

// Conn opens a connection of its own to cfg's database, for what a test
// reads or writes beside the store, and closes it when the test ends.
func Conn(t testing.TB, cfg clickhouse.Config) ch.Conn {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{cfg.Addr}, Auth: ch.Auth{Database: cfg.Database}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// UsersDir returns the users.d directory of the test server, where a file
// adds a login (ClickHouse 18.16 takes users from files only): the one at
// $OGMA_TEST_CLICKHOUSE_USERS_D, default .ogma/clickhouse/users.d of this
// repository, which deploy/clickhouse-local.sh makes the server read.
func UsersDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("OGMA_TEST_CLICKHOUSE_USERS_D")
	if dir == "" {
		wd, _ := os.Getwd()
		for ; wd != filepath.Dir(wd); wd = filepath.Dir(wd) {
			if _, err := os.Stat(filepath.Join(wd, "go.mod")); err == nil {
				break
			}
		}
		dir = filepath.Join(wd, ".ogma", "clickhouse", "users.d")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("no users.d of the test ClickHouse at %s: start it with `make clickhouse` (set OGMA_TEST_CLICKHOUSE_USERS_D for another)", dir)
	}
	return dir
}

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a role starts has an owner that waits for it: after the
// tests stopped every in-process `ogma dev`, none is left.
func TestMain(m *testing.M) {
	if code, ok := asOgma(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of http.DefaultClient.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// The data dir holds the master key, the token, Kafka's log and the
// processor's state: whatever made its files, a start leaves none of it
// readable by anyone else.
func TestPrivateDirTakesAwayOthersAccess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(filepath.Join(dir, "kafka", "partitions"), 0o755)
	os.WriteFile(filepath.Join(dir, "kafka", "partitions", "0.dat"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "token"), []byte("x"), 0o640)
	os.WriteFile(filepath.Join(dir, "run.sh"), []byte("x"), 0o755)
	if err := privateDir(dir); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		fi, _ := d.Info()
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is mode %04o: others keep access", path, fi.Mode().Perm())
		}
		if fi.Mode().Perm()&0o600 != 0o600 {
			t.Errorf("%s is mode %04o: the owner lost access", path, fi.Mode().Perm())
		}
		return nil
	})
}

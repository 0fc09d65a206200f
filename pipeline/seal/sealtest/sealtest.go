// Package sealtest makes installation master keys for tests.
package sealtest

import (
	"path/filepath"
	"testing"

	"github.com/ogma-dev/ogma/pipeline/seal"
)

// Keyring returns the keyring of a new master key written in a temporary
// directory of tb, and the key file's path.
func Keyring(tb testing.TB) (*seal.Keyring, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "master.key")
	if _, err := seal.CreateKeyFile(path); err != nil {
		tb.Fatal(err)
	}
	kr, err := seal.LoadKeyring(path)
	if err != nil {
		tb.Fatal(err)
	}
	return kr, path
}

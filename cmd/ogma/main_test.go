package main

import (
	"os"
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

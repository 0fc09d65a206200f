package process_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the processor starts has an owner that waits for it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// Package wait is for tests of concurrent systems: waiting, under a
// deadline, for a condition that other goroutines or processes make true.
package wait

import (
	"testing"
	"time"
)

// Deadline is how long Until waits.
const Deadline = 3 * time.Minute

// Until polls cond until it is true, failing t with what after [Deadline].
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition under a deadline
	}
}

package poll

import (
	"testing"
	"time"
)

// Cadence jitter is bounded, steady per stream, and spreads tenants.
func TestJitterIsBoundedSteadyAndSpread(t *testing.T) {
	c := &Connector{cfg: Config{Jitter: 0.1}}
	seen := map[time.Duration]bool{}
	for _, tenant := range []string{"a", "b", "c", "d", "e"} {
		key := tenant + "/openai/usage.completions"
		d := c.every(key, 15*time.Minute)
		if d < 15*time.Minute || d > 15*time.Minute+90*time.Second {
			t.Errorf("every(%s) = %v, want within [15m, 16m30s]", key, d)
		}
		if c.every(key, 15*time.Minute) != d {
			t.Errorf("every(%s) is not steady", key)
		}
		seen[d] = true
	}
	if len(seen) < 3 {
		t.Errorf("five tenants got %d distinct cadences; jitter does not spread them", len(seen))
	}
	if none := (&Connector{cfg: Config{Jitter: -1}}).every("a", time.Hour); none != time.Hour {
		t.Errorf("negative jitter gave %v, want none", none)
	}
}

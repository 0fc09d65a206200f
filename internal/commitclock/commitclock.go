// Package commitclock gives each role the figure an operator asks first
// when it is quiet: how long since it last committed its work.
package commitclock

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Clock remembers when a role last committed. It is safe for concurrent
// use.
type Clock struct {
	at atomic.Int64 // Unix nanoseconds
}

// New returns a clock started now, registering in reg (when not nil)
// ogma_<role>_seconds_since_commit, computed at each scrape so that it
// never goes stale, and ogma_<role>_last_commit_timestamp_seconds.
func New(role string, reg prometheus.Registerer) *Clock {
	c := &Clock{}
	c.at.Store(time.Now().UnixNano())
	if reg != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "ogma_" + role + "_seconds_since_commit",
				Help: "Seconds since the " + role + " last committed its work (since it started, before the first), as of the scrape.",
			}, func() float64 { return time.Since(c.Last()).Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "ogma_" + role + "_last_commit_timestamp_seconds",
				Help: "When the " + role + " last committed its work (Unix seconds; its start before the first).",
			}, func() float64 { return float64(c.Last().UnixNano()) / 1e9 }),
		)
	}
	return c
}

// Committed records a commit at now.
func (c *Clock) Committed(now time.Time) { c.at.Store(now.UnixNano()) }

// Last returns when the last commit was.
func (c *Clock) Last() time.Time { return time.Unix(0, c.at.Load()) }

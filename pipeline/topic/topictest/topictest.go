// Package topictest starts an embedded Kafka broker over real TCP with
// Ogma's topics created, for tests.
package topictest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/broker"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Partitions is the partition count of a test cluster.
const Partitions = 3

// Cluster is a running test broker with Ogma's topics.
type Cluster struct {
	Broker *broker.Broker
	Dial   topic.Dial
	Layout topic.Layout
}

// New starts a broker, creates every topic with [Partitions] partitions,
// and stops the broker when the test ends.
func New(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	b, err := broker.Start(broker.Config{Opts: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	dial := topic.Seeds(b.Addrs())
	l, err := topic.Ensure(t.Context(), dial, Partitions)
	if err != nil {
		t.Fatal(err)
	}
	return &Cluster{Broker: b, Dial: dial, Layout: l}
}

// Records returns every committed record of topic, all partitions, in
// partition then offset order.
func (c *Cluster) Records(t testing.TB, name string) []*kgo.Record {
	t.Helper()
	parts := topic.Partitions(c.Layout.Partitions)
	for _, s := range topic.All {
		if s.Name == name && !s.Partitioned {
			parts = []int32{0}
		}
	}
	var out []*kgo.Record
	err := topic.ReadToEnd(t.Context(), c.Dial, name, parts, func(r *kgo.Record) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

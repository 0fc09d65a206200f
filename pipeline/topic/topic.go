// Package topic names Ogma's Kafka topics, creates them with their policies,
// and places every record Ogma produces.
//
// Placement is the one rule every producer shares: a record goes to partition
// Partition(tenant, N), where N is the installation's partition count,
// recorded once in ogma.control and checked at every start. The record key is
// the record's own identity (what compaction keys on) and never decides
// placement. Changing N would move tenants between partitions and fork their
// chains, so it is a documented migration, never an accident.
package topic

import (
	"hash/fnv"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The topics of DESIGN.md.
const (
	Raw         = "ogma.raw"
	Cursors     = "ogma.cursors"
	Events      = "ogma.events"
	Provisional = "ogma.provisional"
	Anchors     = "ogma.anchors"
	Control     = "ogma.control"
	Deadletter  = "ogma.deadletter"
	Keys        = "ogma.keys"
)

// Spec is a topic and the policy it is created with.
type Spec struct {
	Name string
	// Partitioned topics have the installation's N partitions; the others
	// have one (anchors are installation-wide and totally ordered).
	Partitioned bool
	Configs     map[string]string
}

// day is a day in milliseconds, the unit of Kafka's retention.ms.
const day = 24 * 60 * 60 * 1000

func ms(n int64) string { return strconv.FormatInt(n, 10) }

// All lists every topic with its policy, in creation order.
var All = []Spec{
	{Name: Raw, Partitioned: true, Configs: map[string]string{
		"cleanup.policy": "delete", "retention.ms": ms(14 * day)}},
	{Name: Cursors, Partitioned: true, Configs: map[string]string{
		"cleanup.policy": "compact"}},
	{Name: Events, Partitioned: true, Configs: map[string]string{
		"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}},
	// Open buckets carry rows in the clear: an erased tenant's are
	// tombstoned, and compacted away within a day or so, as in ogma.control.
	{Name: Provisional, Partitioned: true, Configs: map[string]string{
		"cleanup.policy": "compact", "segment.ms": ms(day), "min.cleanable.dirty.ratio": "0.01",
		"delete.retention.ms": ms(day)}},
	{Name: Anchors, Partitioned: false, Configs: map[string]string{
		"cleanup.policy": "compact"}},
	// A disconnected key's envelope is tombstoned: segments roll hourly and
	// any dirt is cleaned, so that compaction removes the envelope soon
	// (then the tombstone, after a day).
	{Name: Control, Partitioned: true, Configs: map[string]string{
		"cleanup.policy": "compact", "segment.ms": ms(day / 24), "min.cleanable.dirty.ratio": "0.01",
		"min.compaction.lag.ms": "0", "delete.retention.ms": ms(day)}},
	{Name: Deadletter, Partitioned: true, Configs: map[string]string{
		"cleanup.policy": "delete", "retention.ms": ms(365 * day)}},
	// The tenants' data keys, written in the processor's transactions (a
	// topic of their own: a transaction holds back every read-committed
	// reader of a partition, and ogma.control's must not wait on it). An
	// erased tenant's key is tombstoned and compacted away soon.
	{Name: Keys, Partitioned: true, Configs: map[string]string{
		"cleanup.policy": "compact", "segment.ms": ms(day / 24), "min.cleanable.dirty.ratio": "0.01",
		"min.compaction.lag.ms": "0", "delete.retention.ms": ms(day)}},
}

// Partition returns the partition of tenant among n partitions: FNV-1a 32 of
// the tenant id, mod n. It is part of the installation's data layout and
// must never change.
func Partition(tenant string, n int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	return int32(h.Sum32() % uint32(n))
}

// Layout places records: it knows the installation's partition count.
// The zero value is not usable; get one from [Ensure].
type Layout struct {
	// Partitions is N, the partition count of every partitioned topic.
	Partitions int32
}

// Record returns a record for topic, keyed by key, on tenant's partition.
// Producers must use [ProducerOpt] so that the partition set here is kept.
func (l Layout) Record(topic, tenant string, key, value []byte) *kgo.Record {
	return &kgo.Record{
		Topic:     topic,
		Partition: l.Partition(tenant),
		Key:       key,
		Value:     value,
	}
}

// Partition returns tenant's partition in this layout.
func (l Layout) Partition(tenant string) int32 {
	return Partition(tenant, l.Partitions)
}

// ProducerOpt makes a kgo client keep the partition set by [Layout.Record].
func ProducerOpt() kgo.Opt {
	return kgo.RecordPartitioner(kgo.ManualPartitioner())
}

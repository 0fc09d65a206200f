package topic

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Dial opens a new client to the installation's cluster, adding opts to the
// connection options every role shares (seed brokers, logger, metrics).
type Dial func(opts ...kgo.Opt) (*kgo.Client, error)

// Seeds returns a Dial for the given seed brokers and base options.
func Seeds(brokers []string, base ...kgo.Opt) Dial {
	return func(opts ...kgo.Opt) (*kgo.Client, error) {
		cl, err := kgo.NewClient(append(Opts(brokers, base...), opts...)...)
		if err != nil {
			return nil, fmt.Errorf("kafka client: %w", err)
		}
		return cl, nil
	}
}

// Opts returns the client options of the given seed brokers and base
// options, for clients that must be built by kgo itself (a
// GroupTransactSession).
func Opts(brokers []string, base ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, base...)
}

// ReadToEnd calls fn, in offset order per partition, for every committed
// record of the given partitions of topic, from the log start up to the last
// stable offset as of the call. Records of aborted transactions are skipped.
// An error from fn stops the read and is returned.
func ReadToEnd(ctx context.Context, dial Dial, topic string, partitions []int32, fn func(*kgo.Record) error) error {
	return follow(ctx, dial, topic, startOf(partitions), fn, nil, false)
}

// ReadFrom is ReadToEnd from the given offset of each partition on.
func ReadFrom(ctx context.Context, dial Dial, topic string, from map[int32]int64, fn func(*kgo.Record) error) error {
	return follow(ctx, dial, topic, from, fn, nil, false)
}

// startOf maps each partition to the log start.
func startOf(partitions []int32) map[int32]int64 {
	m := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		m[p] = 0
	}
	return m
}

// Follow is ReadToEnd that keeps going: it calls caughtUp once, after every
// record up to the last stable offset as of the call has been handed to fn,
// then goes on calling fn for new records until ctx ends, when it returns
// ctx.Err().
func Follow(ctx context.Context, dial Dial, topic string, partitions []int32, fn func(*kgo.Record) error, caughtUp func()) error {
	return follow(ctx, dial, topic, startOf(partitions), fn, caughtUp, true)
}

func follow(ctx context.Context, dial Dial, topic string, from map[int32]int64, fn func(*kgo.Record) error, caughtUp func(), forever bool) error {
	adm, err := dial()
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, adminTimeout)
	ends, err := kadm.NewClient(adm).ListCommittedOffsets(actx, topic)
	cancel()
	adm.Close()
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}

	want := make(map[int32]int64, len(from)) // partition → end offset still to reach
	offsets := make(map[int32]kgo.Offset, len(from))
	for p, start := range from {
		o, ok := ends.Lookup(topic, p)
		if !ok {
			return fmt.Errorf("read %s: no partition %d", topic, p)
		}
		if o.Offset > start {
			want[p] = o.Offset
		}
		offsets[p] = kgo.NewOffset().AtStart()
		if start > 0 {
			offsets[p] = kgo.NewOffset().At(start)
		}
	}
	done := func() bool {
		if len(want) > 0 {
			return false
		}
		if caughtUp != nil {
			caughtUp()
			caughtUp = nil
		}
		return !forever
	}
	if done() {
		return nil
	}

	cl, err := dial(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers are kept so that a partition whose last entries
		// are markers is still seen to reach its end offset.
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if fetches.IsClientClosed() {
			return errors.New("read " + topic + ": client closed")
		}
		for _, fe := range fetches.Errors() {
			return fmt.Errorf("read %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		var ferr error
		fetches.EachRecord(func(r *kgo.Record) {
			if ferr != nil {
				return
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			ferr = fn(r)
		})
		if ferr != nil {
			return ferr
		}
		if done() {
			return nil
		}
	}
}

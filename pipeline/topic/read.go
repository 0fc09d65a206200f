package topic

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// FollowFrom is Follow from the given offset of each partition on.
func FollowFrom(ctx context.Context, dial Dial, topic string, from map[int32]int64, fn func(*kgo.Record) error, caughtUp func()) error {
	return follow(ctx, dial, topic, from, fn, caughtUp, true)
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
	next := maps.Clone(from) // partition → offset after the last record seen
	for {
		// A bounded read polls with a deadline: when nothing comes, what is
		// left before the end may be only aborted records, which the
		// consumer skips without saying so.
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if len(want) > 0 {
			pctx, cancel = context.WithTimeout(ctx, stallProbe)
		}
		fetches := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if fetches.IsClientClosed() {
			return errors.New("read " + topic + ": client closed")
		}
		if pctx.Err() != nil && fetches.Empty() {
			for p, end := range want {
				live, err := committedBetween(ctx, cl, topic, p, next[p], end)
				if err != nil {
					return err
				}
				if !live {
					delete(want, p)
				}
			}
			if done() {
				return nil
			}
			continue
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			return fmt.Errorf("read %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		var ferr error
		fetches.EachRecord(func(r *kgo.Record) {
			if ferr != nil {
				return
			}
			next[r.Partition] = r.Offset + 1
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

// stallProbe is how long a bounded read waits for records before it looks
// at what is left before the end.
const stallProbe = 2 * time.Second

// committedBetween reports whether partition p of topic holds a committed
// record in [from, end). A transaction a broker crash left open is aborted
// without a marker (kfake), so a read waiting for a record at end-1 would
// wait forever; this fetches the range itself and lets kgo say what is
// visible and how far that got.
func committedBetween(ctx context.Context, cl *kgo.Client, topic string, p int32, from, end int64) (bool, error) {
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("read %s: metadata: %w", topic, err)
	}
	leader := int32(-1)
	t, ok := md.Topics[topic]
	if ok {
		if pd, ok := t.Partitions[p]; ok {
			leader = pd.Leader
		}
	}
	if leader < 0 {
		return true, nil // no leader now: keep waiting
	}
	for from < end {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes, req.IsolationLevel = -1, 4<<20, 1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, t.ID // by name or by id, as the version says
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, from, 4<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := cl.Broker(int(leader)).RetriableRequest(ctx, req)
		if err != nil {
			return false, fmt.Errorf("read %s partition %d: fetch: %w", topic, p, err)
		}
		fr := resp.(*kmsg.FetchResponse)
		if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
			return true, nil
		}
		fp, after := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: from, IsolationLevel: kgo.ReadCommitted(),
			Topic: topic, Partition: p}, &fr.Topics[0].Partitions[0], kgo.DefaultDecompressor(), nil)
		switch {
		case fp.Err != nil:
			return true, nil // let the consumer deal with it
		case len(fp.Records) > 0 && fp.Records[0].Offset < end:
			return true, nil
		case after <= from:
			return true, nil // no progress: keep waiting
		}
		from = after
	}
	return false, nil
}

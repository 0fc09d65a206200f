package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RepairReport says what [Repair] found and did.
type RepairReport struct {
	// Scanned is the number of records (data and control) read.
	Scanned int
	// Aborted is the number of (producer, partition) transactions a crash
	// left open that were closed with an ABORT marker.
	Aborted int
	// RolledForward is the number closed with a COMMIT marker instead: the
	// crash fell between the markers of a transaction ending in commit,
	// which another partition already shows committed.
	RolledForward int
	// Fenced is the number of producers whose epoch was bumped durably, so
	// a client that outlived the broker cannot go on with the old epoch.
	Fenced int
	// IndexesRebuilt is the number of segment indexes rebuilt from their
	// segments, because the crash fell between the two writes of a batch.
	IndexesRebuilt int
	// Orphans counts older transactions of a producer left open under a
	// newer one: damage from an earlier crash that was never repaired.
	Orphans int
	// Duration is how long the repair took.
	Duration time.Duration
}

// Repair closes, in the data dir of a kfake broker that did not shut down
// cleanly, every transaction the crash left open, with a real control
// record, as a Kafka transaction coordinator does after a failover. It must
// run while no other broker uses dir.
//
// kfake aborts such a transaction at load in memory only; without a marker
// a later commit of the same producer id makes it committed at the next
// restart, and read-committed readers skip the producer's committed records
// until then (shared/notes/kfake-crash-durability.md, R and C2). Repair
// therefore:
//
//  1. deletes the partitions' snapshot.json, so kfake replays the log and
//     tracks every open transaction (S), and rebuilds any segment index
//     that lacks an entry for a batch, so a transactional batch is not
//     loaded as a plain one (I);
//  2. loads dir into a broker on a private loopback port no client knows,
//     reads every partition read-uncommitted with control records, and
//     writes one marker per transaction left open: COMMIT when the same
//     producer and epoch committed in another partition (an EndTxn the
//     crash cut between markers), ABORT otherwise;
//  3. bumps each such producer's epoch through InitProducerID, which kfake
//     logs, so the fence survives the next restart too (Z);
//  4. closes that broker and deletes the snapshots it wrote, so the serving
//     broker replays a log in which the markers close every range.
//
// Staged transactional offsets lost in the crash (M2) cannot be recovered:
// consumers that commit in transactions must be idempotent on re-reads.
func Repair(ctx context.Context, dir string, opts ...kfake.Opt) (RepairReport, error) {
	start := time.Now()
	var rep RepairReport
	if err := dropSnapshots(dir); err != nil {
		return rep, err
	}
	n, err := rebuildIndexes(dir)
	rep.IndexesRebuilt = n
	if err != nil {
		return rep, err
	}
	c, err := kfake.NewCluster(clusterOpts(dir, func(network, _ string) (net.Listener, error) {
		return net.Listen(network, "127.0.0.1:0")
	}, opts)...)
	if err != nil {
		return rep, fmt.Errorf("load: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		c.Close()
		return rep, err
	}
	err = repair(ctx, cl, &rep)
	cl.Close()
	c.Close()
	if err != nil {
		return rep, err
	}
	// This broker's clean close wrote snapshots that keep its in-memory
	// crash-abort ranges; a replay of the log, where the markers now close
	// them, starts the serving broker clean.
	if err := dropSnapshots(dir); err != nil {
		return rep, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

type partition struct {
	topic string
	p     int32
}

type producerEpoch struct {
	id    int64
	epoch int16
}

// scan is what a read of the whole log finds.
type scan struct {
	// open holds, by partition and producer, the epoch of the producer's
	// transactional data that no marker of its has closed yet.
	open      map[partition]map[int64]int16
	committed map[producerEpoch]bool
	// reused holds producers that wrote two markers with one epoch in one
	// partition: not one epoch per transaction (KIP-890), so a COMMIT
	// elsewhere says nothing about an open range of theirs.
	reused  map[int64]bool
	markers map[partition]map[producerEpoch]bool
	records int
	orphans int
}

func repair(ctx context.Context, cl *kgo.Client, rep *RepairReport) error {
	sc, err := scanLog(ctx, cl)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	rep.Scanned, rep.Orphans = sc.records, sc.orphans

	req := kmsg.NewPtrWriteTxnMarkersRequest()
	type marker struct {
		producerEpoch
		commit bool
	}
	index := map[marker]int{}
	fence := map[int64]int16{} // producer → the highest epoch of its open data
	for part, txns := range sc.open {
		for id, epoch := range txns {
			pe := producerEpoch{id, epoch}
			m := marker{pe, sc.committed[pe] && !sc.reused[id]}
			i, ok := index[m]
			if !ok {
				km := kmsg.NewWriteTxnMarkersRequestMarker()
				km.ProducerID, km.ProducerEpoch, km.Committed = id, epoch, m.commit
				req.Markers = append(req.Markers, km)
				i = len(req.Markers) - 1
				index[m] = i
			}
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic, t.Partitions = part.topic, []int32{part.p}
			req.Markers[i].Topics = append(req.Markers[i].Topics, t)
			if m.commit {
				rep.RolledForward++
			} else {
				rep.Aborted++
			}
			if e, ok := fence[id]; !ok || epoch > e {
				fence[id] = epoch
			}
		}
	}
	if len(req.Markers) == 0 {
		return nil
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("write markers: %w", err)
	}
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fmt.Errorf("write marker of producer %d on %s/%d: %w", m.ProducerID, t.Topic, p.Partition, err)
				}
			}
		}
	}
	n, err := bumpEpochs(ctx, cl, fence)
	rep.Fenced = n
	return err
}

// scanLog reads every partition of every topic from its start to its high
// watermark, read-uncommitted, control records included.
func scanLog(ctx context.Context, cl *kgo.Client) (*scan, error) {
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	sc := &scan{open: map[partition]map[int64]int16{}, committed: map[producerEpoch]bool{},
		reused: map[int64]bool{}, markers: map[partition]map[producerEpoch]bool{}}
	if len(topics.Names()) == 0 {
		return sc, nil
	}
	starts, err := adm.ListStartOffsets(ctx, topics.Names()...)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topics.Names()...)
	if err != nil {
		return nil, err
	}
	from := map[string]map[int32]kgo.Offset{}
	end := map[partition]int64{}
	var listErr error
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(e.Topic, e.Partition)
		listErr = errors.Join(listErr, e.Err, s.Err)
		if e.Err != nil || s.Err != nil || e.Offset <= s.Offset {
			return
		}
		if from[e.Topic] == nil {
			from[e.Topic] = map[int32]kgo.Offset{}
		}
		from[e.Topic][e.Partition] = kgo.NewOffset().At(s.Offset)
		end[partition{e.Topic, e.Partition}] = e.Offset
	})
	if listErr != nil {
		return nil, listErr
	}
	if len(end) == 0 {
		return sc, nil
	}
	rd, err := kgo.NewClient(append(cl.Opts(), kgo.ConsumePartitions(from), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		// Fetch the log fast: nothing is waited for, everything is there.
		kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchMaxBytes(64<<20))...)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	for len(end) > 0 {
		// A compacted tail can end a partition below its high watermark:
		// a poll that brings nothing for a while means the log was read.
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := rd.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if fs.Empty() {
			break
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("read %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			sc.add(r)
			k := partition{r.Topic, r.Partition}
			if r.Offset >= end[k]-1 {
				delete(end, k)
			}
		})
	}
	return sc, nil
}

// add takes in the next record of its partition.
func (sc *scan) add(r *kgo.Record) {
	sc.records++
	k := partition{r.Topic, r.Partition}
	if sc.open[k] == nil {
		sc.open[k] = map[int64]int16{}
	}
	switch {
	case r.Attrs.IsControl():
		// The key is int16 version, int16 type: 0 abort, 1 commit.
		pe := producerEpoch{r.ProducerID, r.ProducerEpoch}
		if sc.markers[k] == nil {
			sc.markers[k] = map[producerEpoch]bool{}
		}
		if sc.markers[k][pe] {
			sc.reused[r.ProducerID] = true
		}
		sc.markers[k][pe] = true
		if len(r.Key) >= 4 && r.Key[3] == 1 {
			sc.committed[pe] = true
		}
		delete(sc.open[k], r.ProducerID)
	case r.Attrs.IsTransactional():
		if epoch, ok := sc.open[k][r.ProducerID]; ok && epoch != r.ProducerEpoch {
			sc.orphans++
		}
		sc.open[k][r.ProducerID] = r.ProducerEpoch
	}
}

// bumpEpochs makes kfake's in-memory fence of each producer durable: an
// InitProducerID in its KIP-360 form (the producer's id and epoch) bumps
// the epoch and logs it.
func bumpEpochs(ctx context.Context, cl *kgo.Client, fence map[int64]int16) (int, error) {
	lt := kmsg.NewPtrListTransactionsRequest()
	for id := range fence {
		lt.ProducerIDFilters = append(lt.ProducerIDFilters, id)
	}
	ltr, err := lt.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("list transactions: %w", err)
	}
	n := 0
	for _, s := range ltr.TransactionStates {
		epoch, ok := fence[s.ProducerID]
		if !ok {
			continue
		}
		txid := s.TransactionalID
		ip := kmsg.NewPtrInitProducerIDRequest()
		ip.TransactionalID, ip.TransactionTimeoutMillis = &txid, 60000
		ip.ProducerID, ip.ProducerEpoch = s.ProducerID, epoch
		resp, err := ip.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			return n, fmt.Errorf("fence producer %q: %w", txid, err)
		}
		n++
	}
	return n, nil
}

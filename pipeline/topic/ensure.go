package topic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultPartitions is N for a new installation when none is asked for.
const DefaultPartitions = 6

// PartitionsKey is the ogma.control key of the record holding N. It lives in
// partition 0 of ogma.control, the one partition that exists whatever N is.
const PartitionsKey = "installation/partitions"

// adminTimeout bounds each admin request: a broker that does not answer in
// this long is down, not slow.
const adminTimeout = 30 * time.Second

// PartitionMismatchError reports that the partition count asked for, or a
// topic's actual partition count, differs from the installation's recorded N.
type PartitionMismatchError struct {
	Topic    string // the topic whose count differs, or "" for the request
	Recorded int32  // N as recorded in ogma.control
	Got      int32  // what was asked for, or the topic's actual count
}

func (e *PartitionMismatchError) Error() string {
	if e.Topic == "" {
		return fmt.Sprintf("partition count mismatch: ogma.control records %d partitions but %d were asked for (--kafka-partitions); "+
			"changing the partition count moves tenants between partitions and forks their chains, see the README, "+
			"\"Changing the partition count\"", e.Recorded, e.Got)
	}
	return fmt.Sprintf("partition count mismatch: topic %s has %d partitions but ogma.control records %d; "+
		"refusing to start, see the README, \"Changing the partition count\"", e.Topic, e.Got, e.Recorded)
}

type partitionsRecord struct {
	Partitions int32 `json:"partitions"`
}

// Ensure creates every missing topic of [All] with its policy, records the
// installation's partition count in ogma.control the first time, and checks
// it at every later start. want is the partition count asked for; 0 means
// "the recorded one", or [DefaultPartitions] for a new installation. A count
// that differs from the recorded one, or a topic whose partition count differs
// from it, is a [*PartitionMismatchError].
func Ensure(ctx context.Context, dial Dial, want int32) (Layout, error) {
	cl, err := dial()
	if err != nil {
		return Layout{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	actx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	details, err := adm.ListTopics(actx)
	if err != nil {
		return Layout{}, fmt.Errorf("list topics: %w", err)
	}

	var recorded int32
	if _, ok := details[Control]; ok {
		recorded, err = readPartitions(ctx, dial)
		if err != nil {
			return Layout{}, err
		}
	}
	n := want
	switch {
	case recorded != 0 && want != 0 && recorded != want:
		return Layout{}, &PartitionMismatchError{Recorded: recorded, Got: want}
	case recorded != 0:
		n = recorded
	case n == 0:
		if d, ok := details[Control]; ok {
			n = int32(len(d.Partitions)) // topics made before the record was written
		} else {
			n = DefaultPartitions
		}
	}

	for _, s := range All {
		parts := int32(1)
		if s.Partitioned {
			parts = n
		}
		if d, ok := details[s.Name]; ok {
			if got := int32(len(d.Partitions)); got != parts {
				return Layout{}, &PartitionMismatchError{Topic: s.Name, Recorded: parts, Got: got}
			}
			continue
		}
		configs := make(map[string]*string, len(s.Configs))
		for k, v := range s.Configs {
			configs[k] = &v
		}
		resp, err := adm.CreateTopic(actx, parts, -1, configs, s.Name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return Layout{}, fmt.Errorf("create topic %s: %w", s.Name, err)
		}
		if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			return Layout{}, fmt.Errorf("create topic %s: %w", s.Name, resp.Err)
		}
	}

	if recorded == 0 {
		v, _ := json.Marshal(partitionsRecord{Partitions: n})
		r := &kgo.Record{Topic: Control, Partition: 0, Key: []byte(PartitionsKey), Value: v}
		pcl, err := dial(ProducerOpt())
		if err != nil {
			return Layout{}, err
		}
		defer pcl.Close()
		if err := pcl.ProduceSync(actx, r).FirstErr(); err != nil {
			return Layout{}, fmt.Errorf("record partition count: %w", err)
		}
	}
	return Layout{Partitions: n}, nil
}

// ReadLayout returns the installation's layout as ogma.control records it,
// for a role that does not create topics.
func ReadLayout(ctx context.Context, dial Dial) (Layout, error) {
	n, err := readPartitions(ctx, dial)
	if err == nil && n == 0 {
		err = errors.New("ogma.control records no partition count: the topics are not set up")
	}
	if err != nil {
		return Layout{}, fmt.Errorf("read layout: %w", err)
	}
	return Layout{Partitions: n}, nil
}

// readPartitions returns N as recorded in ogma.control, or 0 if unrecorded.
func readPartitions(ctx context.Context, dial Dial) (int32, error) {
	var n int32
	err := ReadToEnd(ctx, dial, Control, []int32{0}, func(r *kgo.Record) error {
		if string(r.Key) != PartitionsKey {
			return nil
		}
		var p partitionsRecord
		if err := json.Unmarshal(r.Value, &p); err == nil && p.Partitions > 0 {
			n = p.Partitions
		}
		return nil // a record that does not parse is skipped: the last good one holds
	})
	return n, err
}

// Partitions returns 0..n-1.
func Partitions(n int32) []int32 {
	ps := make([]int32, n)
	for i := range ps {
		ps[i] = int32(i)
	}
	return ps
}

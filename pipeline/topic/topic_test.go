package topic_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/ogma-dev/ogma/pipeline/broker"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// Placement is part of the data layout: these values must never change.
func TestPartitionIsStable(t *testing.T) {
	cases := []struct {
		tenant string
		n      int32
		want   int32
	}{
		{"demo", 6, 0},
		{"acme", 3, 1},
		{"acme", 6, 1},
		{"globex", 6, 4},
		{"", 6, 1},
	}
	for _, tc := range cases {
		if got := topic.Partition(tc.tenant, tc.n); got != tc.want {
			t.Errorf("Partition(%q, %d) = %d, want %d", tc.tenant, tc.n, got, tc.want)
		}
	}
}

func start(t *testing.T) topic.Dial {
	t.Helper()
	b, err := broker.Start(t.Context(), broker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return topic.Seeds(b.Addrs())
}

func TestEnsureCreatesTopicsWithPolicies(t *testing.T) {
	dial := start(t)
	l, err := topic.Ensure(t.Context(), dial, 4)
	if err != nil {
		t.Fatal(err)
	}
	if l.Partitions != 4 {
		t.Fatalf("layout partitions = %d, want 4", l.Partitions)
	}
	cl, _ := dial()
	defer cl.Close()
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range topic.All {
		names = append(names, s.Name)
		want := 4
		if !s.Partitioned {
			want = 1
		}
		if got := len(details[s.Name].Partitions); got != want {
			t.Errorf("%s has %d partitions, want %d", s.Name, got, want)
		}
	}
	cfgs, err := adm.DescribeTopicConfigs(t.Context(), names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range topic.All {
		rc, err := cfgs.On(s.Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range s.Configs {
			var got string
			for _, c := range rc.Configs {
				if c.Key == k {
					got = c.MaybeValue()
				}
			}
			if got != want {
				t.Errorf("%s %s = %q, want %q", s.Name, k, got, want)
			}
		}
	}
}

// Issue 2: one partition count N, recorded in ogma.control and checked at
// every start.
func TestEnsureChecksRecordedPartitionCount(t *testing.T) {
	dial := start(t)
	if _, err := topic.Ensure(t.Context(), dial, 3); err != nil {
		t.Fatal(err)
	}
	if l, err := topic.Ensure(t.Context(), dial, 0); err != nil || l.Partitions != 3 {
		t.Errorf("Ensure(0) = %v, %v; want the recorded 3", l, err)
	}
	if l, err := topic.Ensure(t.Context(), dial, 3); err != nil || l.Partitions != 3 {
		t.Errorf("Ensure(3) again = %v, %v", l, err)
	}
	_, err := topic.Ensure(t.Context(), dial, 5)
	var mm *topic.PartitionMismatchError
	if !errors.As(err, &mm) || mm.Recorded != 3 || mm.Got != 5 {
		t.Errorf("Ensure(5) = %v, want a mismatch of 3 recorded vs 5", err)
	}
}

// A topic whose partition count differs from N (made by hand, or by an
// accident) stops the start.
func TestEnsureRefusesTopicWithOtherPartitionCount(t *testing.T) {
	dial := start(t)
	cl, _ := dial()
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 2, -1, nil, topic.Events); err != nil {
		t.Fatal(err)
	}
	_, err := topic.Ensure(t.Context(), dial, 3)
	var mm *topic.PartitionMismatchError
	if !errors.As(err, &mm) || mm.Topic != topic.Events {
		t.Errorf("Ensure = %v, want a mismatch naming %s", err, topic.Events)
	}
}

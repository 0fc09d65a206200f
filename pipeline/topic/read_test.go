package topic_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/broker"
	"github.com/ogma-dev/ogma/pipeline/topic"
)

// A broker that dies with a transaction open aborts it on restart without
// writing a marker: a partition can end in records no read-committed
// reader will ever see. Reading to the end must still end.
func TestReadToEndPastACrashAbortedTail(t *testing.T) {
	dir := t.TempDir()
	b, err := broker.Start(t.Context(), broker.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	dial := topic.Seeds(b.Addrs())
	if _, err := topic.Ensure(t.Context(), dial, 1); err != nil {
		t.Fatal(err)
	}
	l := topic.Layout{Partitions: 1}
	cl, err := dial(topic.ProducerOpt(), kgo.TransactionalID("crash-tail"), kgo.TransactionTimeout(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	txn := func(value string, commit bool) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), l.Record(topic.Events, "acme", nil, []byte(value))).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := cl.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
	}
	txn("committed", true)
	txn("left open", false)
	// The broker's files as a kill -9 leaves them: copied while it runs.
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, err = broker.Start(t.Context(), broker.Config{DataDir: crashed})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dial = topic.Seeds(b.Addrs())

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var got []string
	err = topic.ReadToEnd(ctx, dial, topic.Events, []int32{0}, func(r *kgo.Record) error {
		got = append(got, string(r.Value))
		return nil
	})
	if err != nil || len(got) != 1 || got[0] != "committed" {
		t.Fatalf("ReadToEnd = %q, %v; want only the committed record", got, err)
	}
}

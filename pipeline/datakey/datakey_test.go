package datakey_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/datakey"
	"github.com/ogma-dev/ogma/pipeline/event"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Issue 13: a tenant's data key is made once, pending until its first
// transaction commits (the same key, and record, however often the
// transaction is retried), then read by every reader of ogma.keys; an
// erasure takes it away from each — a reader following the topic within
// moments, a reader starting afresh at once — and no key is made again.
func TestKeysLiveUntilTheTenantIsErased(t *testing.T) {
	c := topictest.New(t)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	maker := datakey.New(c.Dial, c.Layout)
	aead, pending, err := maker.Key("acme", now)
	if err != nil || pending == nil {
		t.Fatalf("a new tenant's key: %v, pending record %v", err, pending)
	}
	again, retried, _ := maker.Key("acme", now)
	if again != aead || retried == nil || string(retried.Value) != string(pending.Value) || string(retried.Key) != "datakey/acme" {
		t.Fatal("a retried transaction got another key, or another record of it")
	}
	c.Produce(t, pending)
	maker.Commit("acme")
	if _, pending, _ := maker.Key("acme", now); pending != nil {
		t.Error("a committed key is published again")
	}

	data, salt := []byte(`{"model":"m"}`), strings.Repeat("ab", 32)
	digest, _ := event.DataDigest(salt, data)
	sealed, err := event.SealData(aead, "acme", digest, data, salt)
	if err != nil {
		t.Fatal(err)
	}
	rec := event.Record{Event: event.Event{Tenant: "acme", DataDigest: digest}, Sealed: sealed}
	follower := datakey.New(c.Dial, topic.Layout{}) // the layout read from ogma.control
	follower.Patience = time.Millisecond
	go follower.Follow(t.Context(), nil)
	reader, err := follower.Lookup(t.Context(), "acme")
	if err == nil {
		err = rec.Open(reader)
	}
	if err != nil || string(rec.Data) != string(data) {
		t.Fatalf("a reader opens %s, %v", rec.Data, err)
	}
	if _, err := follower.Lookup(t.Context(), "globex"); !errors.Is(err, datakey.ErrNoKey) {
		t.Errorf("a tenant without a key or an erasure after a read to the end: %v, want ErrNoKey", err)
	}

	if err := datakey.Erase(t.Context(), c.Dial, c.Layout, "acme", now); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, "the follower to see the erasure", func() bool {
		_, err := follower.Get("acme")
		return errors.Is(err, datakey.ErrErased)
	})
	if _, err := datakey.New(c.Dial, c.Layout).Lookup(t.Context(), "acme"); !errors.Is(err, datakey.ErrErased) {
		t.Errorf("a fresh reader after the erasure: %v, want ErrErased", err)
	}
	go maker.Follow(t.Context(), nil)
	wait.Until(t, "the maker to see the erasure", func() bool {
		_, _, err := maker.Key("acme", now)
		return errors.Is(err, datakey.ErrErased)
	})
	if ok, _ := maker.Pend(datakey.Key{Tenant: "acme", Key: make([]byte, event.DataKeySize)}); ok {
		t.Error("a kept key was taken back for an erased tenant")
	}
}

// A follower whose read fails — the broker away for a moment — reads
// again, and still sees the erasures that come after.
func TestFollowReadsAgainAfterAFailure(t *testing.T) {
	c := topictest.New(t)
	var calls atomic.Int32
	dial := func(opts ...kgo.Opt) (*kgo.Client, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("broker away")
		}
		return c.Dial(opts...)
	}
	follower := datakey.New(dial, c.Layout)
	go follower.Follow(t.Context(), nil)
	if err := datakey.Erase(t.Context(), c.Dial, c.Layout, "acme", time.Now()); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, "the follower to see the erasure after its failed read", func() bool {
		_, err := follower.Get("acme")
		return errors.Is(err, datakey.ErrErased)
	})
	if calls.Load() < 2 {
		t.Errorf("%d dials: the failed read was not tried again", calls.Load())
	}
}

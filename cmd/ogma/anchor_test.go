package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ogma-dev/ogma/internal/wait"
	"github.com/ogma-dev/ogma/pipeline/anchor"
	"github.com/ogma-dev/ogma/pipeline/event/eventtest"
	"github.com/ogma-dev/ogma/pipeline/seal"
	"github.com/ogma-dev/ogma/pipeline/topic"
	"github.com/ogma-dev/ogma/pipeline/topic/topictest"
	"github.com/ogma-dev/ogma/sinks/rekor"
	"github.com/ogma-dev/ogma/sinks/rekor/rekortest"
)

// kill -9 of `ogma sink rekor` between persisting a statement and
// uploading it: the next start uploads that very statement — same index,
// same bytes, same signature — and the log holds it once.
func TestSinkRekorKilledBetweenPersistAndUpload(t *testing.T) {
	url := rekortest.URL(t)
	c := topictest.New(t)
	c.ProduceEvents(t, eventtest.Chain(t, "acme", "a", nil, 5)...)
	masterKey := filepath.Join(t.TempDir(), "master.key")
	if _, err := seal.CreateKeyFile(masterKey); err != nil {
		t.Fatal(err)
	}
	sink := func(env ...string) *exec.Cmd {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "sink", "rekor", "--kafka-brokers", c.Broker.Addrs()[0],
			"--rekor-url", url, "--anchor-interval", "1s", "--master-key-file", masterKey)
		cmd.Env = append(append(os.Environ(), envAsOgma+"=1"), env...)
		return cmd
	}
	anchors := func() (as []anchor.Anchor, rs map[uint64]anchor.Receipt) {
		rs = map[uint64]anchor.Receipt{}
		for _, r := range c.Records(t, topic.Anchors) {
			d, err := anchor.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			if d.Anchor != nil {
				as = append(as, *d.Anchor)
			}
			if d.Receipt != nil {
				rs[d.Receipt.Anchor.Index] = *d.Receipt
			}
		}
		return as, rs
	}

	err := sink(envKillAfterPersist + "=1").Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the first sink ended with %v, want a kill -9 of its own", err)
	}
	as, rs := anchors()
	if len(as) != 1 || as[0].Index != 1 || len(rs) != 0 {
		t.Fatalf("after the kill: %d statements, %d receipts; want statement 1 alone", len(as), len(rs))
	}

	second := sink()
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, "receipt 1", func() bool { _, rs := anchors(); _, ok := rs[1]; return ok })
	second.Process.Signal(syscall.SIGTERM)
	second.Wait()
	as, rs = anchors()
	rc := rs[1]
	if rc.Anchor.Statement != as[0].Statement || string(rc.Anchor.Signature) != string(as[0].Signature) {
		t.Error("receipt 1 is of another statement than the one persisted before the kill")
	}
	ones := 0
	for _, a := range as {
		if a.Index == 1 {
			ones++
		}
	}
	if ones != 1 {
		t.Errorf("statement 1 persisted %d times", ones)
	}
	kr, err := seal.LoadKeyring(masterKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := anchor.LoadKey(t.Context(), c.Dial, kr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rekor.VerifyReceipt(t.Context(), rc, rekor.TrustRoots{LogKey: rekortest.LogKey(t, url), AnchorKey: key.Fingerprint()}); err != nil {
		t.Error(err)
	}
}

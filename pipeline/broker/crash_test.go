package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/ogma-dev/ogma/pipeline/broker"
)

// The crash tests run each broker lifetime in a child process (this test
// binary, re-executed) that ends in SIGKILL, as a kill -9 of `ogma dev`
// does; the test itself is the client, which may outlive a broker. The
// scenarios are those of shared/notes/kfake-crash-durability.md.

const childDirEnv = "OGMA_BROKER_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		runChild(dir, os.Getenv("OGMA_BROKER_CHILD_LISTEN"))
		return
	}
	goleak.VerifyTestMain(m)
}

// runChild serves a broker on dir until it is killed, after printing its
// address and what the start repaired.
func runChild(dir, listen string) {
	b, err := broker.Start(context.Background(), broker.Config{DataDir: dir, Listen: listen})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	r := b.Repaired
	fmt.Printf("repaired aborted=%d rolled=%d fenced=%d indexes=%d orphans=%d\n",
		r.Aborted, r.RolledForward, r.Fenced, r.IndexesRebuilt, r.Orphans)
	fmt.Println("addr", b.Addrs()[0])
	select {}
}

// child is a broker lifetime in a child process.
type child struct {
	cmd      *exec.Cmd
	addr     string
	repaired string
}

// startBroker starts a broker on dir in a child process, listening on
// listen (a free port when empty), and kills it at the end of the test if
// the test did not.
func startBroker(t *testing.T, dir, listen string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, "OGMA_BROKER_CHILD_LISTEN="+listen)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(c.kill)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "repaired "):
			c.repaired = strings.TrimPrefix(line, "repaired ")
		case strings.HasPrefix(line, "addr "):
			c.addr = strings.TrimPrefix(line, "addr ")
			go func() {
				for sc.Scan() {
				}
			}()
			return c
		default:
			t.Fatalf("broker child: %s", line)
		}
	}
	t.Fatalf("broker child exited before serving: %v", sc.Err())
	return nil
}

// kill sends SIGKILL and reaps the child; it is idempotent.
func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

const testTopic = "events"

// startBrokerWithTopic is startBroker, then the test topic created.
func startBrokerWithTopic(t *testing.T, dir, listen string) *child {
	t.Helper()
	c := startBroker(t, dir, listen)
	createTopic(t, c.addr)
	return c
}

// needStrace skips a test that places its kill with strace where there is none.
func needStrace(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace is not installed (make deps installs it): it places the kill exactly")
	}
}

func createTopic(t *testing.T, addr string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 2, 1, nil, testTopic); err != nil {
		t.Fatal(err)
	}
}

func producer(t *testing.T, addr, txid string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(txid), kgo.DefaultProduceTopic(testTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(time.Minute),
		// A broker restart is part of every test: give up fast and clearly.
		kgo.RecordDeliveryTimeout(20*time.Second), kgo.RetryTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes values to both partitions in an open transaction and
// waits for every acknowledgment.
func produce(t *testing.T, cl *kgo.Client, values ...string) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, v := range values {
		for p := range int32(2) {
			recs = append(recs, &kgo.Record{Partition: p, Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func commit(t *testing.T, cl *kgo.Client) {
	t.Helper()
	if err := cl.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

// readCommitted returns the values a read-committed reader sees from offset
// 0 of each partition up to the last stable offset, "p:value" in order.
func readCommitted(t *testing.T, addr string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	from := map[int32]kgo.Offset{}
	var got []string
	for p := range int32(2) {
		from[p] = kgo.NewOffset().At(0)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{testTopic: from}), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	for len(left) > 0 {
		// kfake alone never delivers a crash-aborted tail that has no
		// marker: a reader waiting for it would wait forever.
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := rd.PollFetches(pctx)
		cancel()
		if fs.Empty() {
			break
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("read committed: %v (still to read: %v; so far %q)", err, left, got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				got = append(got, fmt.Sprintf("%d:%s", r.Partition, r.Value))
			}
			if r.Offset >= left[r.Partition]-1 {
				delete(left, r.Partition)
			}
		})
	}
	slices.Sort(got)
	return got
}

// each returns "p:value" for both partitions and every value, sorted.
func each(values ...string) []string {
	var out []string
	for _, v := range values {
		out = append(out, "0:"+v, "1:"+v)
	}
	slices.Sort(out)
	return out
}

func checkRead(t *testing.T, when, addr string, want []string) {
	t.Helper()
	if got := readCommitted(t, addr); !slices.Equal(got, want) {
		t.Fatalf("%s: read committed = %q, want %q", when, got, want)
	}
}

// R and C2: a transaction open at a kill -9 stays aborted after the
// producer commits again and the broker restarts (R: kfake alone makes it
// committed, second copies), and the producer's later commit is visible to
// a reader starting before the aborted range in the same broker lifetime
// (C2: kfake alone hides it).
func TestCrashAbortedTransactionStaysAbortedAndHidesNothing(t *testing.T) {
	dir := t.TempDir()

	b1 := startBrokerWithTopic(t, dir, "")
	p := producer(t, b1.addr, "proc")
	produce(t, p, "a-0", "a-1")
	commit(t, p)
	produce(t, p, "b-0", "b-1") // T1, acknowledged, never ended
	b1.kill()

	b2 := startBroker(t, dir, "")
	if !strings.Contains(b2.repaired, "aborted=2 ") {
		t.Errorf("repair after the kill: %s, want 2 ranges aborted (T1 on each partition)", b2.repaired)
	}
	checkRead(t, "after the crash", b2.addr, each("a-0", "a-1"))
	p = producer(t, b2.addr, "proc")
	produce(t, p, "b-0", "b-1") // T2: the same records again, as a processor would
	commit(t, p)
	checkRead(t, "after the new commit, same broker lifetime (C2)", b2.addr, each("a-0", "a-1", "b-0", "b-1"))
	b2.kill()

	b3 := startBroker(t, dir, "")
	checkRead(t, "after the second restart (R)", b3.addr, each("a-0", "a-1", "b-0", "b-1"))
	b3.kill()

	b4 := startBroker(t, dir, "")
	if !strings.Contains(b4.repaired, "aborted=0 rolled=0") {
		t.Errorf("repair with nothing left open: %s", b4.repaired)
	}
	checkRead(t, "after a third restart", b4.addr, each("a-0", "a-1", "b-0", "b-1"))
}

// Z: a client that outlives two quick broker restarts cannot go on with
// the transaction the first crash aborted: the fence survives restarts.
func TestClientOutlivingTheBrokerIsFenced(t *testing.T) {
	dir := t.TempDir()
	listen := freePort(t)

	b1 := startBrokerWithTopic(t, dir, listen)
	p := producer(t, listen, "proc")
	produce(t, p, "a-0")
	commit(t, p)
	produce(t, p, "b-0") // T1's first half
	b1.kill()

	b2 := startBroker(t, dir, listen)
	b2.kill()
	b3 := startBroker(t, dir, listen)

	// The surviving client tries to finish T1: its second half, then commit.
	err := p.ProduceSync(t.Context(), &kgo.Record{Partition: 0, Value: []byte("b-1")}).FirstErr()
	if err == nil {
		err = p.EndTransaction(t.Context(), kgo.TryCommit)
	}
	if err == nil {
		t.Errorf("the surviving client committed a transaction the crash aborted")
	}
	checkRead(t, "after the surviving client's attempt", b3.addr, each("a-0"))

	q := producer(t, listen, "proc")
	produce(t, q, "b-0", "b-1")
	commit(t, q)
	b3.kill()
	b4 := startBroker(t, dir, listen)
	checkRead(t, "after a new client's commit and a restart", b4.addr, each("a-0", "b-0", "b-1"))
}

// A clean Close leaves nothing to repair, and a second broker cannot open
// a data dir in use.
func TestCleanCloseNeedsNoRepairAndTheDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	b, err := broker.Start(t.Context(), broker.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Start(t.Context(), broker.Config{DataDir: dir}); err == nil {
		t.Errorf("a second broker started on a data dir in use")
	}
	b.Close()
	b, err = broker.Start(t.Context(), broker.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Repaired != (broker.RepairReport{}) {
		t.Errorf("after a clean close: repaired %+v, want nothing", b.Repaired)
	}
}

// I: a kill between the two writes of a batch (segment, then index) leaves
// an open transaction's last batch without an index entry, which kfake
// loads as a plain, visible batch. The repair rebuilds the index first.
func TestBatchWithoutIndexEntryStaysInItsTransaction(t *testing.T) {
	dir := t.TempDir()
	b1 := startBrokerWithTopic(t, dir, "")
	p := producer(t, b1.addr, "proc")
	produce(t, p, "a-0")
	commit(t, p)
	produce(t, p, "b-0") // T1, open
	b1.kill()
	for part := range 2 {
		idx := filepath.Join(dir, "partitions", fmt.Sprintf("%s-%d", testTopic, part), "0.idx")
		fi, err := os.Stat(idx)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(idx, fi.Size()-15); err != nil { // T1's entry
			t.Fatal(err)
		}
	}

	b2 := startBroker(t, dir, "")
	if !strings.Contains(b2.repaired, "indexes=2 ") {
		t.Errorf("repair: %s, want both indexes rebuilt", b2.repaired)
	}
	checkRead(t, "after the crash", b2.addr, each("a-0"))
}

// M2b: a kill between the COMMIT markers of one transaction's partitions
// leaves it committed in one and open in the other. The restart rolls the
// open part forward: the transaction is whole, as its commit had begun.
func TestTransactionCutBetweenItsMarkersIsWhole(t *testing.T) {
	needStrace(t)
	dir := t.TempDir()
	b1 := startBrokerWithTopic(t, dir, "")
	p := producer(t, b1.addr, "proc")
	produce(t, p, "a-0")
	commit(t, p)
	produce(t, p, "b-0")
	// SIGKILL the broker as it enters its second write to a segment from
	// here on: the second partition's COMMIT marker.
	var segs []string
	for part := range 2 {
		segs = append(segs, filepath.Join(dir, "partitions", fmt.Sprintf("%s-%d", testTopic, part), "0.dat"))
	}
	stopTrace := killAtWrite(t, b1, 2, segs...)
	p.EndTransaction(t.Context(), kgo.TryCommit) // fails: the broker dies in it
	stopTrace()
	b1.kill()

	b2 := startBroker(t, dir, "")
	if !strings.Contains(b2.repaired, "aborted=0 rolled=1 ") {
		t.Errorf("repair: %s, want one partition rolled forward", b2.repaired)
	}
	checkRead(t, "after the crash", b2.addr, each("a-0", "b-0"))
	b2.kill()
	b3 := startBroker(t, dir, "")
	checkRead(t, "after another restart", b3.addr, each("a-0", "b-0"))
}

// M2: a kill between a transaction's markers and its staged offsets keeps
// the output committed, once, and loses the offsets (kfake holds them in
// memory until then; nothing on disk can bring them back). The consumer
// reads its input again, so it must recognise what it already made: the
// processor does (TestOffsetsLostAfterCommitRepeatNothing, pipeline/process).
func TestOffsetsLostWithTheirCommitLeaveTheOutputOnce(t *testing.T) {
	needStrace(t)
	dir := t.TempDir()
	b1 := startBrokerWithTopic(t, dir, "")
	in := producer(t, b1.addr, "source")
	produce(t, in, "r-0", "r-1")
	commit(t, in)
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(b1.addr), kgo.TransactionalID("proc"),
		kgo.ConsumerGroup("g"), kgo.ConsumeTopics(testTopic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequestRetries(0), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var got int
	for got < 4 {
		fs := sess.PollFetches(t.Context())
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := sess.Begin(); err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	for p := range int32(2) {
		out = append(out, &kgo.Record{Topic: testTopic, Partition: p, Value: []byte("made-of-r")})
	}
	if err := sess.Client().ProduceSync(t.Context(), out...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The first write to groups.log from here on is the staged offsets'.
	stopTrace := killAtWrite(t, b1, 1, filepath.Join(dir, "groups.log"))
	sess.End(t.Context(), kgo.TryCommit) // fails: the broker dies in it
	stopTrace()
	b1.kill()

	b2 := startBroker(t, dir, "")
	checkRead(t, "after the crash", b2.addr, each("r-0", "r-1", "made-of-r"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(b2.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(t.Context(), "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(testTopic, 0); ok && o.At > 0 {
		t.Logf("the group's offset survived (%d): kfake now persists staged offsets with the commit", o.At)
	}
}

// killAtWrite attaches strace to the broker so that it is killed as it
// enters its nth write to any of paths; the returned func stops strace.
func killAtWrite(t *testing.T, c *child, nth int, paths ...string) func() {
	t.Helper()
	args := []string{"-f", "-qq", "-p", strconv.Itoa(c.cmd.Process.Pid), "-o", "/dev/null", "-e", "trace=write,writev,pwrite64",
		"-e", "inject=write,writev,pwrite64:signal=SIGKILL:when=" + strconv.Itoa(nth)}
	for _, p := range paths {
		args = append(args, "-P", p)
	}
	cmd := exec.Command("strace", args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// strace attaches to every thread before the broker goes on; give it
	// the time by waiting until it is tracing the process.
	deadline := time.Now().Add(10 * time.Second)
	for !tracing(c.cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("strace did not attach")
		}
		time.Sleep(10 * time.Millisecond)
	}
	go io.Copy(io.Discard, stderr)
	return func() { cmd.Process.Kill(); cmd.Wait() }
}

// tracing reports whether a tracer is attached to every thread of pid.
func tracing(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			return false
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "TracerPid:"); ok && strings.TrimSpace(v) == "0" {
				return false
			}
		}
	}
	return true
}

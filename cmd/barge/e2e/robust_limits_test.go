package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// limitsBudget is the --queued-max-request-bytes of TestSlowLargeRequestsBoundMemory.
const limitsBudget = 200 << 20

// Fifty connections each announce a 100 MiB request and send it slowly.
// The request budget lets only two of them be read at a time (the rest wait
// unread in the kernel), so the broker's RSS stays under the budget plus a
// fixed overhead, where it would otherwise grow with every byte they send;
// and a normal client's produce and consume are served meanwhile.
func TestSlowLargeRequestsBoundMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("sends several hundred MiB")
	}
	b := harness.CompatStartBroker(t, harness.Options{ExtraArgs: []string{
		"--queued-max-request-bytes", strconv.Itoa(limitsBudget),
	}})
	idle, err := vmRSS(b.Pid())
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const conns, announced, sendEach = 50, 100 << 20, 60 << 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for i := range conns {
		c, err := net.Dial("tcp", b.KafkaAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func(c net.Conn, corr int32) {
			defer wg.Done()
			// A Produce v9 header, then filler: the broker reads the
			// size, then waits for room before it reads the body.
			frame := robustFrame(0, 9, corr, true, nil)
			binary.BigEndian.PutUint32(frame, announced)
			chunk := make([]byte, 1<<20)
			written := 0
			for written < sendEach && ctx.Err() == nil {
				c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
				p := chunk
				if written == 0 {
					p = append(frame, chunk[len(frame):]...)
				}
				n, err := c.Write(p)
				written += n
				if err != nil {
					// Back-pressure: the broker is not reading this one.
					// Try again later, until the test is over.
					time.Sleep(50 * time.Millisecond)
					continue
				}
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			sent += written
			mu.Unlock()
		}(c, int32(i))
	}

	// A normal client meanwhile.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr), kgo.DefaultProduceTopic("limits"), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("limits"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	for i := range 100 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("normal client's produce %d while the large requests wait: %v", i, err)
		}
	}
	got := 0
	for got < 100 && ctx.Err() == nil {
		got += cl.PollFetches(ctx).NumRecords()
	}
	if got < 100 {
		t.Fatalf("normal client consumed %d of 100", got)
	}
	t.Logf("normal client: 100 produced and consumed in %v while %d connections push 100 MiB requests", time.Since(start).Round(time.Millisecond), conns)

	// Let the senders push for a few more seconds, then stop them.
	time.Sleep(3 * time.Second)
	cancel()
	wg.Wait()
	peak, err := b.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	stalls, _ := b.Metric("barge_request_bytes_stalls_total")
	t.Logf("idle RSS %d MiB, peak RSS %d MiB with a %d MiB budget; senders pushed %d MiB in all; %v budget waits",
		idle>>20, peak>>20, limitsBudget>>20, sent>>20, stalls)
	const overhead = 96 << 20
	if peak > limitsBudget+overhead+idle {
		t.Fatalf("peak RSS %d MiB exceeds the %d MiB budget plus %d MiB overhead plus %d MiB idle", peak>>20, limitsBudget>>20, overhead>>20, idle>>20)
	}
	if stalls == 0 {
		t.Fatal("no connection ever waited for the budget: the test did not exercise it")
	}
}

// vmRSS is a process's resident set size now.
func vmRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// A client that fetches a large partition and never reads is disconnected
// within --send-timeout, while another client's produce and consume keep
// their latency (within 2x of a run without the stalled reader), and the
// broker's file descriptors and goroutines return to where they were.
func TestStalledReaderIsDisconnected(t *testing.T) {
	const (
		topic       = "limits-stall"
		sendTimeout = 2 * time.Second
	)
	b := harness.CompatStartBroker(t, harness.Options{ExtraArgs: []string{"--send-timeout", sendTimeout.String()}})
	ctx := harness.Context(t, 2*time.Minute)
	robustCreateTopic(t, ctx, b.KafkaAddr, topic, 1, nil)
	cl := robustClient(t, b.KafkaAddr, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	defer cl.Close()
	value := make([]byte, 64<<10)
	for range 512 { // 32 MiB, far more than socket buffers hold
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// roundTrips is the normal client: produce one small record and read
	// it back through a new consumer, n times; it returns the slowest.
	probe := robustClient(t, b.KafkaAddr, kgo.DefaultProduceTopic("limits-probe"), kgo.AllowAutoTopicCreation())
	defer probe.Close()
	roundTrips := func(n int) time.Duration {
		var worst time.Duration
		for i := range n {
			start := time.Now()
			r := &kgo.Record{Value: []byte(fmt.Sprint(i))}
			if err := probe.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("probe produce: %v", err)
			}
			probe.AddConsumePartitions(map[string]map[int32]kgo.Offset{"limits-probe": {0: kgo.NewOffset().At(r.Offset)}})
			for got := false; !got && ctx.Err() == nil; {
				probe.PollFetches(ctx).EachRecord(func(rec *kgo.Record) { got = got || rec.Offset == r.Offset })
			}
			probe.RemoveConsumePartitions(map[string][]int32{"limits-probe": {0}})
			worst = max(worst, time.Since(start))
		}
		return worst
	}
	roundTrips(3) // warm up: topic creation, connections
	baseline := roundTrips(20)
	// The test's own HTTP connections to the broker (metrics, pprof) come
	// and go with keep-alive and the server's idle timeout: none is left
	// open across a count, so only the Kafka connections are compared.
	http.DefaultClient.CloseIdleConnections()
	fdsBefore, goroutinesBefore := processFDs(t, b), goroutines(t, b)

	// The stalled reader: a tiny receive buffer, a fetch of the whole
	// partition, and no read.
	raw, err := net.Dial("tcp", b.KafkaAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetReadBuffer(4 << 10)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version, fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MaxBytes = 11, -1, 100, 64<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = 64<<20, -1, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	if _, err := raw.Write(robustEncode(fetch, 1)); err != nil {
		t.Fatal(err)
	}
	stalledAt := time.Now()
	during := roundTrips(20)
	b.WaitFor(sendTimeout+10*time.Second, "the stalled reader disconnected", func() bool {
		n, err := b.Metric("barge_connections_send_timeout_total")
		return err == nil && n == 1
	})
	took := time.Since(stalledAt)
	t.Logf("stalled reader disconnected after %v (send timeout %v); probe round trip worst %v before, %v during",
		took.Round(time.Millisecond), sendTimeout, baseline.Round(time.Microsecond), during.Round(time.Microsecond))
	if took > sendTimeout+5*time.Second {
		t.Errorf("disconnected after %v with a %v send timeout", took, sendTimeout)
	}
	if during > 2*baseline && during-baseline > 50*time.Millisecond { // slack for one GC or scheduling hiccup
		t.Errorf("probe latency %v with a stalled reader, %v without: more than 2x", during, baseline)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		http.DefaultClient.CloseIdleConnections()
		fds, gs := processFDs(t, b), goroutines(t, b)
		if fds <= fdsBefore && gs <= goroutinesBefore {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the disconnect: %d file descriptors (%d before), %d goroutines (%d before)", fds, fdsBefore, gs, goroutinesBefore)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processFDs counts the broker's open file descriptors.
func processFDs(t *testing.T, b *harness.Broker) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", b.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// goroutines reads the broker's goroutine count from /debug/pprof. It
// reads the whole answer and asks for the connection to be closed after
// it, so the broker is done with it by the time this returns (a body left
// unread keeps the broker's side writing into a closed connection).
func goroutines(t *testing.T, b *harness.Broker) int {
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + b.HTTPAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(body), "\n")
	// "goroutine profile: total 42"
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total")))
	if err != nil {
		t.Fatalf("goroutine profile header %q: %v", line, err)
	}
	return n
}

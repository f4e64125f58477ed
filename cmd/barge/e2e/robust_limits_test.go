package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kgo"
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

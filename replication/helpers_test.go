package replication

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batch builds one RecordBatch v2 of n records whose values start with tag,
// so batches written by different leaders differ.
func batch(n int, tag string) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: recs,
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// testNode is one broker's replica of the test partition, with a real log.
type testNode struct {
	id  int32
	dir string
	log *storage.Log
	r   *Replica
}

func openNode(t *testing.T, m *Manager, id int32, dir string) *testNode {
	t.Helper()
	l, err := storage.Open(dir, storage.DefaultConfig(), storage.Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n := &testNode{id: id, dir: dir, log: l}
	if m != nil {
		n.r = m.NewReplica("t", [16]byte{1}, 0, l, nil)
	} else {
		n.r = newReplica(id, "t", 0, l, 0, nil)
	}
	return n
}

func newNode(t *testing.T, id int32) *testNode {
	return openNode(t, nil, id, t.TempDir())
}

// state is a partition state of three replicas 0, 1, 2.
func state(leader, epoch, partitionEpoch int32, isr ...int32) State {
	return State{Leader: leader, LeaderEpoch: epoch, PartitionEpoch: partitionEpoch, Replicas: []int32{0, 1, 2}, ISR: isr, MinISR: 2}
}

func mustUpdate(t *testing.T, n *testNode, st State) {
	t.Helper()
	if _, err := n.r.update(st, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func mustAppend(t *testing.T, n *testNode, b []byte) storage.AppendResult {
	t.Helper()
	res, err := n.r.AppendAsLeader(b, false)
	if err != nil {
		t.Fatalf("append on %d: %v", n.id, err)
	}
	return res
}

// fetchOnce runs one follower fetch round from f to leader in process, as
// the fetcher and the broker's fetch handler do over the network, and
// returns the leader's error code.
func fetchOnce(t *testing.T, leader, f *testNode, now time.Time) int16 {
	t.Helper()
	f.r.mu.Lock()
	epoch := f.r.epoch
	f.r.mu.Unlock()
	off, lastEpoch, logStart, ok := f.r.fetchPosition(epoch)
	if !ok {
		t.Fatalf("broker %d does not follow at epoch %d", f.id, epoch)
	}
	res := leader.r.HandleFollowerFetch(FollowerFetch{ReplicaID: f.id, FetchOffset: off, LastFetchedEpoch: lastEpoch,
		CurrentLeaderEpoch: epoch, LogStartOffset: logStart}, now)
	fp := FetchedPartition{ErrorCode: res.ErrorCode, HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset, Diverging: res.Diverging}
	if res.ErrorCode == 0 && res.Diverging == nil {
		recs, err := leader.log.ReadBatches(off, 1<<20, res.ReadUpTo)
		if err != nil {
			t.Fatalf("leader %d read at %d: %v", leader.id, off, err)
		}
		fp.Records = recs
	}
	if _, _, err := f.r.applyFetched(epoch, off, fp); err != nil {
		t.Fatalf("follower %d apply: %v", f.id, err)
	}
	return res.ErrorCode
}

// catchUp fetches until f's log end equals the leader's (and once more, so
// the leader sees it there).
func catchUp(t *testing.T, leader, f *testNode) {
	t.Helper()
	for i := 0; i < 20; i++ {
		fetchOnce(t, leader, f, time.Now())
		if f.log.LogEndOffset() == leader.log.LogEndOffset() {
			fetchOnce(t, leader, f, time.Now())
			return
		}
	}
	t.Fatalf("follower %d stuck at %d, leader %d at %d", f.id, f.log.LogEndOffset(), leader.id, leader.log.LogEndOffset())
}

// segmentBytes concatenates the partition's segment files in name order.
func segmentBytes(t *testing.T, n *testNode) []byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(n.dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var out []byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// values lists the record values of a log, in offset order.
func values(t *testing.T, n *testNode) []string {
	t.Helper()
	buf, err := n.log.ReadBatches(n.log.LogStartOffset(), 1<<30, n.log.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for len(buf) > 0 {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
		size := 12 + int(rb.Length)
		recs := rb.Records
		for i := int32(0); i < rb.NumRecords; i++ {
			var r kmsg.Record
			if err := r.ReadFrom(recs); err != nil {
				t.Fatal(err)
			}
			out = append(out, string(r.Value))
			recs = recs[varintLen(recs)+int(r.Length):]
		}
		buf = buf[size:]
	}
	return out
}

func varintLen(b []byte) int {
	_, n := binary.Varint(b)
	return n
}

func join(s []string) string { return strings.Join(s, " ") }

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Client-side helpers of the robustness tests: real franz-go clients, a
// ledger of acknowledged records, and reads that check it.

// robustSeed returns the seed of a test's randomness: BARGE_SEED if
// set, else the clock. It is logged at once and again, with a one-line
// repro command, if the test fails.
func robustSeed(t *testing.T) int64 {
	t.Helper()
	return testutil.Seed(t)
}

// robustClient is a franz-go client of addr; the caller closes it, so that
// no connection outlives the step that needed it.
func robustClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// robustCreateTopic creates a topic with one replica per partition.
func robustCreateTopic(t testing.TB, ctx context.Context, addr, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	cl := robustClient(t, addr)
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// robustEndOffset is the partition's log end offset (ListOffsets latest).
// Retriable partition errors are waited out: right after a restart a broker
// can report ready before it hosts every partition again.
func robustEndOffset(t testing.TB, ctx context.Context, addr, topic string, partition int32) int64 {
	t.Helper()
	cl := robustClient(t, addr)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		offsets, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatalf("list end offsets of %s: %v", topic, err)
		}
		o, ok := offsets.Lookup(topic, partition)
		switch {
		case ok && o.Err == nil:
			return o.Offset
		case ok && kerr.IsRetriable(o.Err) && ctx.Err() == nil:
			time.Sleep(20 * time.Millisecond)
		default:
			t.Fatalf("end offset of %s/%d: listed %v, err %v", topic, partition, ok, o.Err)
		}
	}
}

// robustConsume reads topic/partition from offset from up to (not
// including) end with a fresh consumer, calling fn for each record in
// offset order. A fetch error fails the test.
func robustConsume(t testing.TB, ctx context.Context, addr, topic string, partition int32, from, end int64, fn func(*kgo.Record), opts ...kgo.Opt) {
	t.Helper()
	if from >= end {
		return
	}
	cl := robustClient(t, addr, append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
	}, opts...)...)
	defer cl.Close()
	next := from
	for next < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s/%d: read up to offset %d of [%d, %d): %v", topic, partition, next, from, end, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end {
				return
			}
			if r.Offset != next {
				t.Fatalf("%s/%d: record at offset %d, expected %d", topic, partition, r.Offset, next)
			}
			fn(r)
			next++
		})
	}
}

// robustTP names one partition.
type robustTP struct {
	topic     string
	partition int32
}

// robustRec is an acknowledged record's content.
type robustRec struct{ key, value string }

// robustLedger holds every record a broker acknowledged, by partition and
// offset. Safe for concurrent use (produce promises).
type robustLedger struct {
	mu   sync.Mutex
	recs map[robustTP]map[int64]robustRec
}

func newRobustLedger() *robustLedger {
	return &robustLedger{recs: map[robustTP]map[int64]robustRec{}}
}

// add records that r was acknowledged at r.Offset.
func (l *robustLedger) add(r *kgo.Record) {
	l.addAt(r.Topic, r.Partition, r.Offset, string(r.Key), string(r.Value))
}

func (l *robustLedger) addAt(topic string, partition int32, offset int64, key, value string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tp := robustTP{topic, partition}
	if l.recs[tp] == nil {
		l.recs[tp] = map[int64]robustRec{}
	}
	l.recs[tp][offset] = robustRec{key, value}
}

// count is the number of acknowledged records.
func (l *robustLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.recs {
		n += len(m)
	}
	return n
}

// check reads each partition of the ledger from its first acknowledged
// offset to the log end and fails if an acknowledged record is missing or
// differs. It returns the records read per partition.
func (l *robustLedger) check(t testing.TB, ctx context.Context, addr string) map[robustTP][]*kgo.Record {
	t.Helper()
	l.mu.Lock()
	recs := make(map[robustTP]map[int64]robustRec, len(l.recs))
	for tp, m := range l.recs {
		recs[tp] = m
	}
	l.mu.Unlock()
	tps := make([]robustTP, 0, len(recs))
	for tp := range recs {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b robustTP) int {
		if a.topic != b.topic {
			if a.topic < b.topic {
				return -1
			}
			return 1
		}
		return int(a.partition - b.partition)
	})
	read := map[robustTP][]*kgo.Record{}
	for _, tp := range tps {
		want := recs[tp]
		first, last := int64(-1), int64(-1)
		for off := range want {
			if first < 0 || off < first {
				first = off
			}
			last = max(last, off)
		}
		end := robustEndOffset(t, ctx, addr, tp.topic, tp.partition)
		if end <= last {
			t.Fatalf("%s/%d: log end offset %d, but offset %d was acknowledged", tp.topic, tp.partition, end, last)
		}
		found := 0
		robustConsume(t, ctx, addr, tp.topic, tp.partition, first, end, func(r *kgo.Record) {
			read[tp] = append(read[tp], r)
			w, ok := want[r.Offset]
			if !ok {
				return
			}
			if string(r.Key) != w.key || string(r.Value) != w.value {
				t.Fatalf("%s/%d offset %d: key %q value %.40q, acknowledged key %q value %.40q",
					tp.topic, tp.partition, r.Offset, r.Key, r.Value, w.key, w.value)
			}
			found++
		})
		if found != len(want) {
			t.Fatalf("%s/%d: found %d of %d acknowledged records", tp.topic, tp.partition, found, len(want))
		}
	}
	return read
}

// robustProduceSync produces one record per value with acks=all to
// topic/partition 0 and enters each in the ledger.
func robustProduceSync(t testing.TB, ctx context.Context, addr, topic string, ledger *robustLedger, kvs ...robustRec) []*kgo.Record {
	t.Helper()
	cl := robustClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	recs := make([]*kgo.Record, len(kvs))
	for i, kv := range kvs {
		recs[i] = &kgo.Record{Key: []byte(kv.key), Value: []byte(kv.value)}
	}
	for _, res := range cl.ProduceSync(ctx, recs...) {
		if res.Err != nil {
			t.Fatalf("produce to %s: %v", topic, res.Err)
		}
		ledger.add(res.Record)
	}
	return recs
}

// robustKnown is the content of the i-th record of a known set: values of
// varying length, so a record read at the wrong offset cannot match.
func robustKnown(prefix string, i int) robustRec {
	return robustRec{key: fmt.Sprintf("%s-key-%d", prefix, i), value: fmt.Sprintf("%s-value-%d-%s", prefix, i, strings.Repeat("x", i%97))}
}

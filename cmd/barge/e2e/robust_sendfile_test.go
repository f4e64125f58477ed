package e2e

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kgo"
)

// robustMaxPeakRSS is a generous bound on a broker's peak RSS in these
// tests (the goal is under 200 MiB: record bytes live in the page cache, not
// the heap); crossing it means something buffers or leaks.
const robustMaxPeakRSS = 512 << 20

// robustLogPeakRSS logs the peak RSS of the broker's current process
// (a restart starts a new peak) and fails above robustMaxPeakRSS.
func robustLogPeakRSS(t *testing.T, b *harness.Broker, during string) {
	t.Helper()
	rss, err := b.PeakRSS()
	if err != nil {
		t.Fatalf("peak RSS: %v", err)
	}
	t.Logf("broker peak RSS (VmHWM) %s: %.1f MiB", during, float64(rss)/(1<<20))
	if rss > robustMaxPeakRSS {
		t.Errorf("broker peak RSS %s: %.1f MiB, above the %d MiB bound", during, float64(rss)/(1<<20), robustMaxPeakRSS>>20)
	}
}

// robustMetric reads an unlabelled counter or gauge from /metrics.
func robustMetric(t *testing.T, b *harness.Broker, name string) float64 {
	t.Helper()
	v, err := b.Metric(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRobustFetchUsesSendfile (issue 5, acceptance 2 and 5): a consumer
// reading ~210 MB raises barge_fetch_sendfile_bytes_total by at least
// 200 MB, and by at least the record bytes appended, while
// barge_fetch_copied_bytes_total grows by less than 1% of that; the broker's
// peak RSS stays bounded although it served all of it.
func TestRobustFetchUsesSendfile(t *testing.T) {
	const (
		topic      = "robust-sendfile"
		valueBytes = 1024
		records    = 205_000 // 1 KiB values: ~210 MB of batches on disk
		minSent    = 200e6
	)
	b := harness.StartBroker(t, harness.Options{})
	ctx := harness.Context(t, 3*time.Minute)
	robustCreateTopic(t, ctx, b.KafkaAddr, topic, 1, nil)

	// value i: i as 8 bytes, then a pattern derived from i, so every byte
	// read back can be checked without keeping the values.
	fill := func(v []byte, i int) {
		binary.BigEndian.PutUint64(v, uint64(i))
		for j := 8; j < len(v); j++ {
			v[j] = byte(i*31 + j)
		}
	}
	producedBefore := robustMetric(t, b, "barge_produce_bytes_total")
	start := time.Now()
	cl := robustClient(t, b.KafkaAddr,
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()), // bytes on disk = bytes fetched
		kgo.ProducerLinger(5*time.Millisecond),
	)
	defer cl.Close()
	var (
		mu     sync.Mutex
		failed error
	)
	for i := range records {
		v := make([]byte, valueBytes)
		fill(v, i)
		cl.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && failed == nil {
				failed = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	mu.Lock()
	err := failed
	mu.Unlock()
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	produced := robustMetric(t, b, "barge_produce_bytes_total") - producedBefore
	t.Logf("produced %d records, %.1f MB of batches, in %v", records, produced/1e6, time.Since(start).Round(time.Millisecond))

	sendfileBefore := robustMetric(t, b, "barge_fetch_sendfile_bytes_total")
	copiedBefore := robustMetric(t, b, "barge_fetch_copied_bytes_total")
	start = time.Now()
	want := make([]byte, valueBytes)
	robustConsume(t, ctx, b.KafkaAddr, topic, 0, 0, records, func(r *kgo.Record) {
		fill(want, int(r.Offset))
		if string(r.Value) != string(want) {
			t.Fatalf("offset %d: value differs from what was produced", r.Offset)
		}
	}, kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	sendfile := robustMetric(t, b, "barge_fetch_sendfile_bytes_total") - sendfileBefore
	copied := robustMetric(t, b, "barge_fetch_copied_bytes_total") - copiedBefore
	t.Logf("consumed %d records in %v: sendfile +%.0f bytes (%.1f MB), copied +%.0f bytes (%.4f%% of sendfile)",
		records, time.Since(start).Round(time.Millisecond), sendfile, sendfile/1e6, copied, 100*copied/max(sendfile, 1))

	if sendfile < minSent {
		t.Errorf("sendfile bytes grew by %.0f, want at least %.0f", sendfile, float64(minSent))
	}
	// Every appended batch went out whole at least once.
	if sendfile < produced {
		t.Errorf("sendfile bytes grew by %.0f, less than the %.0f record batch bytes appended", sendfile, produced)
	}
	if copied >= 0.01*sendfile {
		t.Errorf("copied bytes grew by %.0f, not under 1%% of the %.0f sent with sendfile", copied, sendfile)
	}
	robustLogPeakRSS(t, b, "after producing and consuming 210 MB")
}

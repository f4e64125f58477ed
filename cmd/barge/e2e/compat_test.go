package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The compatibility suite (issue 5, acceptance points 1 and 3): each client
// scenario produces compatRecords records to a fresh topic of
// compatPartitions partitions on a real `barge serve`, reads them all back,
// and compatCheck verifies the result: every record once, in the order it
// was produced within its partition. The same table runs against one broker
// and against a three-broker cluster.

const (
	compatRecords    = 100_000
	compatPartitions = 6
	// compatKeys keys spread the records over the partitions by each
	// client's own key hash; all records of one key land in one partition.
	compatKeys = 60
	// compatValueLen is the size of each value: small, so the suite stays
	// quick, but not trivially small.
	compatValueLen = 64
	// compatScenarioTimeout bounds one client's produce and read-back.
	compatScenarioTimeout = 4 * time.Minute
)

// compatScenario produces compatRecords records to topic, which already
// exists with compatPartitions partitions, reads them back and checks them.
type compatScenario func(t *testing.T, seeds []string, topic string)

var compatScenarios = []struct {
	name string
	run  compatScenario
}{
	{"kgo", compatKgo},
	{"sarama", compatSarama},
	{"kcat", compatKcat},
	{"kafka-python", compatKafkaPython},
}

// TestCompatSingleBroker runs the suite against one `barge serve` process.
func TestCompatSingleBroker(t *testing.T) {
	b := harness.CompatStartBroker(t, harness.Options{})
	compatRunSuite(t, []*harness.Broker{b})
	// The records live in the page cache, not the broker's heap: its peak
	// RSS over the whole suite stays small.
	rss, err := b.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("broker peak RSS over the compatibility suite: %.1f MiB", float64(rss)/(1<<20))
	if rss > 512<<20 {
		t.Fatalf("broker peak RSS %d MiB over the suite; the goal is under 200 MiB", rss>>20)
	}
}

// TestCompatThreeBrokers runs the suite against three processes that form
// one cluster with --bootstrap-expect 3; each topic's partitions must be led
// by all three brokers.
func TestCompatThreeBrokers(t *testing.T) {
	start := time.Now()
	brokers := harness.CompatStartCluster(t, 3, harness.Options{})
	t.Logf("3-broker cluster ready in %v", time.Since(start).Round(time.Millisecond))
	compatRunSuite(t, brokers)
}

func compatRunSuite(t *testing.T, brokers []*harness.Broker) {
	seeds := harness.Seeds(brokers...)
	for _, sc := range compatScenarios {
		t.Run(sc.name, func(t *testing.T) {
			topic := "compat-" + sc.name
			ctx := harness.Context(t, time.Minute)
			leaders := compatCreateTopic(t, ctx, seeds, topic, compatPartitions)
			if len(brokers) > 1 {
				compatCheckLeaderSpread(t, leaders, len(brokers))
			}
			logMarks := make([]int, len(brokers))
			for i, b := range brokers {
				logMarks[i] = len(b.Log())
			}
			cpu := compatBrokersCPU(brokers)
			start := time.Now()
			sc.run(t, seeds, topic)
			t.Logf("%s: %d records over %d partitions produced and read back in %v; broker CPU time %v",
				sc.name, compatRecords, compatPartitions, time.Since(start).Round(time.Millisecond), compatBrokersCPU(brokers)-cpu)
			compatCheckBrokerLogs(t, brokers, logMarks)
		})
	}
}

// compatBrokersCPU is the CPU time the brokers have used, summed (0 if it
// cannot be read).
func compatBrokersCPU(brokers []*harness.Broker) time.Duration {
	var sum time.Duration
	for _, b := range brokers {
		if d, err := b.CompatCPUTime(); err == nil {
			sum += d
		}
	}
	return sum
}

// compatCheckBrokerLogs fails the test on each line logged at level ERROR
// by a broker since logMarks (byte offsets into each broker's log), and
// shows the WARN lines: a client working against Barge should not make it
// log an error. The Raft and gossip libraries' own errors are only shown:
// with the second-scale loopback timeouts of --fast-failure-detection, a
// fully loaded 2-core machine can delay heartbeats enough for a Raft leader
// to step down, which the cluster survives and is not a client's doing.
func compatCheckBrokerLogs(t *testing.T, brokers []*harness.Broker, logMarks []int) {
	t.Helper()
	for i, b := range brokers {
		log := b.Log()
		if logMarks[i] > len(log) {
			continue // restarted: a new log file
		}
		for _, line := range strings.Split(log[logMarks[i]:], "\n") {
			switch {
			case strings.Contains(line, "level=ERROR") &&
				!strings.Contains(line, "component=raft") && !strings.Contains(line, "component=gossip"):
				t.Errorf("broker %d logged: %s", b.ID, line)
			case strings.Contains(line, "level=ERROR"):
				t.Logf("broker %d logged: %s", b.ID, line)
			case strings.Contains(line, "level=WARN"):
				t.Logf("broker %d logged: %s", b.ID, line)
			}
		}
	}
}

// compatAdmin returns a kadm client on seeds, closed with the test.
func compatAdmin(t *testing.T, seeds []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// compatCreateTopic creates topic with replication factor 1, waits until
// every broker's metadata shows all its partitions with a leader, and
// returns the leader of each partition.
func compatCreateTopic(t *testing.T, ctx context.Context, seeds []string, topic string, partitions int32) map[int32]int32 {
	t.Helper()
	adm := compatAdmin(t, seeds)
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, resp.Err, resp.ErrMessage)
	}
	return compatWaitTopic(t, ctx, seeds, topic, int(partitions))
}

// compatWaitTopic waits until the metadata of each broker in seeds (asked
// one by one, not through a shared client's cache) lists topic with
// partitions partitions, each with a leader, and all agree. It returns the
// partition leaders.
func compatWaitTopic(t *testing.T, ctx context.Context, seeds []string, topic string, partitions int) map[int32]int32 {
	t.Helper()
	var leaders map[int32]int32
	var last string
	for {
		agreed := true
		leaders = nil
		for _, seed := range seeds {
			got, err := compatLeadersFrom(ctx, seed, topic)
			if err != nil || len(got) != partitions || (leaders != nil && !compatSameLeaders(got, leaders)) {
				agreed = false
				last = fmt.Sprintf("broker %s: leaders %v, err %v", seed, got, err)
				break
			}
			leaders = got
		}
		if agreed {
			// The metadata can name a leader a moment before that broker
			// hosts the partition; clients then retry after their own
			// backoff (5 s for kgo), which would only blur the timings.
			err := compatLeadersServe(ctx, seeds, topic, partitions)
			if err == nil {
				return leaders
			}
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s never showed %d partitions with leaders on every broker; last: %s", topic, partitions, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func compatLeadersFrom(ctx context.Context, seed, topic string) (map[int32]int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := md.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("topic missing")
	}
	if td.Err != nil {
		return nil, td.Err
	}
	out := map[int32]int32{}
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return nil, fmt.Errorf("partition %d: leader %d, err %v", p.Partition, p.Leader, p.Err)
		}
		out[p.Partition] = p.Leader
	}
	return out, nil
}

// compatLeadersServe checks that each partition's leader answers
// ListOffsets for it without error.
func compatLeadersServe(ctx context.Context, seeds []string, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	if got := len(offs[topic]); got != partitions {
		return fmt.Errorf("end offsets of %d partitions listed, want %d", got, partitions)
	}
	for _, o := range offs[topic] {
		if o.Err != nil {
			return fmt.Errorf("end offset of partition %d: %w", o.Partition, o.Err)
		}
	}
	return nil
}

func compatSameLeaders(a, b map[int32]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for p, l := range a {
		if b[p] != l {
			return false
		}
	}
	return true
}

// compatCheckLeaderSpread fails the test unless the partitions are led by
// as many distinct brokers as there are brokers.
func compatCheckLeaderSpread(t *testing.T, leaders map[int32]int32, brokers int) {
	t.Helper()
	distinct := map[int32]bool{}
	for _, l := range leaders {
		distinct[l] = true
	}
	if len(distinct) != brokers {
		t.Fatalf("partition leaders %v use %d of the %d brokers", leaders, len(distinct), brokers)
	}
}

// compatEndOffsets returns the high watermark of each partition of topic.
func compatEndOffsets(t *testing.T, ctx context.Context, seeds []string, topic string) map[int32]int64 {
	t.Helper()
	offs, err := compatAdmin(t, seeds).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// compatKey is the key of record seq.
func compatKey(seq int) string { return fmt.Sprintf("key-%02d", seq%compatKeys) }

// compatValue is the value of record seq written by producer: the producer
// name and the sequence, padded to compatValueLen bytes. It holds no spaces
// or newlines (kcat reads and prints it as one token).
func compatValue(producer string, seq int) string {
	v := producer + "." + strconv.Itoa(seq) + "."
	return v + strings.Repeat("x", max(0, compatValueLen-len(v)))
}

func compatParseValue(v string) (producer string, seq int, ok bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) != 3 || strings.Trim(parts[2], "x") != "" {
		return "", 0, false
	}
	seq, err := strconv.Atoi(parts[1])
	return parts[0], seq, err == nil
}

// compatRecord is a record as a consumer read it.
type compatRecord struct {
	Partition  int32
	Offset     int64
	Key, Value string
}

// compatAck is where a producer was told record seq went; Offset -1 when
// the client does not say (kcat).
type compatAck struct {
	Partition int32
	Offset    int64
}

// compatCheck verifies what a consumer read (in the order it delivered each
// partition's records) against compatRecords records with sequences
// 0..compatRecords-1, written in sequence order by each producer named in
// the values:
//   - every sequence was read exactly once, with its key and a value of the
//     form compatValue wrote;
//   - each partition's offsets run 0, 1, 2, … without gaps (the log holds
//     only these records) and end at the partition's high watermark;
//   - within a partition, each producer's sequences increase (produce
//     order kept);
//   - all records of a key are in one partition, and every partition got
//     records;
//   - where acks is not nil, each record is at the partition and offset its
//     producer was told.
func compatCheck(t *testing.T, consumed []compatRecord, acks []compatAck, endOffsets map[int32]int64) {
	t.Helper()
	if problems := compatProblems(compatRecords, consumed, acks, endOffsets); len(problems) > 0 {
		t.Errorf("%d records read; problems:\n  %s", len(consumed), strings.Join(problems, "\n  "))
		return
	}
	perPartition := map[int32]int{}
	for _, r := range consumed {
		perPartition[r.Partition]++
	}
	counts := make([]string, 0, len(perPartition))
	for p := int32(0); p < compatPartitions; p++ {
		counts = append(counts, fmt.Sprintf("%d:%d", p, perPartition[p]))
	}
	t.Logf("verified %d records, per partition %s", len(consumed), strings.Join(counts, " "))
}

// compatProblems is compatCheck's verdict on n records: the first problems
// found, or none.
func compatProblems(n int, consumed []compatRecord, acks []compatAck, endOffsets map[int32]int64) []string {
	var problems []string
	fail := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else if len(problems) == 20 {
			problems = append(problems, "… (further problems not shown)")
		}
	}
	seen := make([]int, n)
	nextOffset := map[int32]int64{}
	type partitionProducer struct {
		partition int32
		producer  string
	}
	lastSeq := map[partitionProducer]int{}
	keyPartition := map[string]int32{}
	perPartition := map[int32]int{}
	for _, r := range consumed {
		perPartition[r.Partition]++
		if want := nextOffset[r.Partition]; r.Offset != want {
			fail("partition %d: offset %d read where %d was next", r.Partition, r.Offset, want)
		}
		nextOffset[r.Partition] = r.Offset + 1
		producer, seq, ok := compatParseValue(r.Value)
		if !ok || seq < 0 || seq >= n {
			fail("partition %d offset %d: malformed value %q", r.Partition, r.Offset, r.Value)
			continue
		}
		seen[seq]++
		if seen[seq] == 2 {
			fail("sequence %d read twice (again at partition %d offset %d)", seq, r.Partition, r.Offset)
		}
		if r.Key != compatKey(seq) {
			fail("sequence %d has key %q, want %q", seq, r.Key, compatKey(seq))
		}
		if p, ok := keyPartition[r.Key]; ok && p != r.Partition {
			fail("key %q in partitions %d and %d", r.Key, p, r.Partition)
		}
		keyPartition[r.Key] = r.Partition
		pk := partitionProducer{r.Partition, producer}
		if last, ok := lastSeq[pk]; ok && seq <= last {
			fail("partition %d: %s sequence %d at offset %d after sequence %d (out of produce order)", r.Partition, producer, seq, r.Offset, last)
		}
		lastSeq[pk] = seq
		if acks != nil {
			if a := acks[seq]; a.Partition != r.Partition || (a.Offset >= 0 && a.Offset != r.Offset) {
				fail("sequence %d read at partition %d offset %d, producer was told partition %d offset %d", seq, r.Partition, r.Offset, a.Partition, a.Offset)
			}
		}
	}
	missing := 0
	for seq, n := range seen {
		if n == 0 {
			if missing < 5 {
				fail("sequence %d never read", seq)
			}
			missing++
		}
	}
	if missing > 0 {
		fail("%d of %d sequences never read", missing, n)
	}
	for p := int32(0); p < compatPartitions; p++ {
		if perPartition[p] == 0 {
			fail("partition %d got no records (keys not spread)", p)
		}
		if end, ok := endOffsets[p]; ok && nextOffset[p] != end {
			fail("partition %d: read up to offset %d, high watermark is %d", p, nextOffset[p], end)
		}
	}
	if len(consumed) != n {
		fail("read %d records, produced %d", len(consumed), n)
	}
	return problems
}

// TestCompatCheckFindsProblems: the suite's verdict catches each way a
// broker can get records wrong, and passes a correct read.
func TestCompatCheckFindsProblems(t *testing.T) {
	const n = 6000
	good := func() ([]compatRecord, []compatAck, map[int32]int64) {
		var byPartition [compatPartitions][]compatRecord
		acks := make([]compatAck, n)
		for seq := range n {
			p := int32(seq % compatKeys % compatPartitions)
			off := int64(len(byPartition[p]))
			byPartition[p] = append(byPartition[p], compatRecord{p, off, compatKey(seq), compatValue("test", seq)})
			acks[seq] = compatAck{p, off}
		}
		var rs []compatRecord
		ends := map[int32]int64{}
		for p, prs := range byPartition {
			rs = append(rs, prs...)
			ends[int32(p)] = int64(len(prs))
		}
		return rs, acks, ends
	}
	for _, tc := range []struct {
		name   string
		mutate func(rs []compatRecord, acks []compatAck, ends map[int32]int64) ([]compatRecord, []compatAck)
		ok     bool
	}{
		{"correct", func(rs []compatRecord, acks []compatAck, _ map[int32]int64) ([]compatRecord, []compatAck) {
			return rs, acks
		}, true},
		{"correct without acks", func(rs []compatRecord, _ []compatAck, _ map[int32]int64) ([]compatRecord, []compatAck) {
			return rs, nil
		}, true},
		{"last record of a partition lost", func(rs []compatRecord, acks []compatAck, ends map[int32]int64) ([]compatRecord, []compatAck) {
			return rs[:len(rs)-1], acks
		}, false},
		{"last record lost and high watermark agrees", func(rs []compatRecord, acks []compatAck, ends map[int32]int64) ([]compatRecord, []compatAck) {
			ends[rs[len(rs)-1].Partition]--
			return rs[:len(rs)-1], acks
		}, false},
		{"record lost mid-partition", func(rs []compatRecord, acks []compatAck, _ map[int32]int64) ([]compatRecord, []compatAck) {
			return append(rs[:10:10], rs[11:]...), acks
		}, false},
		{"record duplicated at the next offset", func(rs []compatRecord, acks []compatAck, ends map[int32]int64) ([]compatRecord, []compatAck) {
			dup := rs[len(rs)-1]
			dup.Offset++
			ends[dup.Partition]++
			return append(rs, dup), acks
		}, false},
		{"two records of a partition swapped", func(rs []compatRecord, acks []compatAck, _ map[int32]int64) ([]compatRecord, []compatAck) {
			rs[5].Value, rs[6].Value = rs[6].Value, rs[5].Value
			rs[5].Key, rs[6].Key = rs[6].Key, rs[5].Key
			return rs, nil
		}, false},
		{"offsets delivered out of order", func(rs []compatRecord, acks []compatAck, _ map[int32]int64) ([]compatRecord, []compatAck) {
			rs[5], rs[6] = rs[6], rs[5]
			return rs, acks
		}, false},
		{"record at another offset than acknowledged", func(rs []compatRecord, acks []compatAck, _ map[int32]int64) ([]compatRecord, []compatAck) {
			acks[0].Offset++
			return rs, acks
		}, false},
		{"value corrupted", func(rs []compatRecord, acks []compatAck, _ map[int32]int64) ([]compatRecord, []compatAck) {
			rs[3].Value = rs[3].Value[:len(rs[3].Value)-1] + "y"
			return rs, acks
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, acks, ends := good()
			rs, acks = tc.mutate(rs, acks, ends)
			problems := compatProblems(n, rs, acks, ends)
			if tc.ok && len(problems) > 0 {
				t.Errorf("a correct read was refused:\n%s", strings.Join(problems, "\n"))
			}
			if !tc.ok && len(problems) == 0 {
				t.Errorf("not caught")
			}
		})
	}
}

package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCompatAdmin drives topic administration with franz-go's kadm against
// one broker and against a three-broker cluster: create (with configs),
// list and describe, describe configs, incremental and whole-state config
// changes, adding partitions, listing offsets by position and time,
// deleting records and deleting topics, with the error each refusal must
// carry. In the cluster, every config change must show on every broker.
func TestCompatAdmin(t *testing.T) {
	t.Run("single-broker", func(t *testing.T) {
		compatAdminScenario(t, []*harness.Broker{harness.CompatStartBroker(t, harness.Options{})})
	})
	t.Run("three-brokers", func(t *testing.T) {
		compatAdminScenario(t, harness.CompatStartCluster(t, 3, harness.Options{}))
	})
}

// compatEventuallyWithin bounds how long a change may take to show on every
// broker of a cluster on loopback.
const compatEventuallyWithin = 10 * time.Second

func compatAdminScenario(t *testing.T, brokers []*harness.Broker) {
	start := time.Now()
	ctx := harness.Context(t, 2*time.Minute)
	seeds := harness.Seeds(brokers...)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const (
		topicA = "compat-admin-a"
		topicB = "compat-admin-b"
	)
	str := func(s string) *string { return &s }

	// Create, with a topic config on A.
	created, err := adm.CreateTopics(ctx, 6, 1, map[string]*string{"retention.ms": str("3600000")}, topicA)
	if err != nil {
		t.Fatalf("create %s: %v", topicA, err)
	}
	ct := created[topicA]
	if ct.Err != nil || ct.NumPartitions != 6 || ct.ReplicationFactor != 1 || ct.ID == (kadm.TopicID{}) {
		t.Fatalf("create %s: %+v", topicA, ct)
	}
	if c := ct.Configs["retention.ms"]; c.Value == nil || *c.Value != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("create %s answered retention.ms %+v, want 3600000 from DYNAMIC_TOPIC_CONFIG", topicA, compatConfigString(c))
	}
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, topicB); err != nil {
		t.Fatalf("create %s: %v", topicB, err)
	}
	leaders := compatWaitTopic(t, ctx, seeds, topicA, 6)
	compatWaitTopic(t, ctx, seeds, topicB, 6)
	if len(brokers) > 1 {
		compatCheckLeaderSpread(t, leaders, len(brokers))
	}

	// Refusals, with Kafka's error codes, and nothing created by them.
	for _, tc := range []struct {
		topic   string
		rf      int16
		configs map[string]*string
		want    error
	}{
		{topicA, 1, nil, kerr.TopicAlreadyExists},
		{"compat-admin-rf4", 4, nil, kerr.InvalidReplicationFactor},
		{"compat-admin-badconfig", 1, map[string]*string{"no.such.config": str("1")}, kerr.InvalidConfig},
		{"compat-admin-badvalue", 1, map[string]*string{"retention.ms": str("soon")}, kerr.InvalidConfig},
	} {
		resp, err := adm.CreateTopic(ctx, 6, tc.rf, tc.configs, tc.topic)
		if !errors.Is(err, tc.want) || !errors.Is(resp.Err, tc.want) {
			t.Errorf("create %s (rf %d, configs %v): err %v, response %v (%s), want %v", tc.topic, tc.rf, compatConfigMap(tc.configs), err, resp.Err, resp.ErrMessage, tc.want)
		}
	}

	// List and describe: both topics, six partitions each, one replica
	// that leads and is the ISR, on a known broker.
	bds, err := adm.ListBrokers(ctx)
	if err != nil || len(bds) != len(brokers) {
		t.Fatalf("list brokers: %v, %v; want %d", bds, err, len(brokers))
	}
	ids := bds.NodeIDs()
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if got := slices.Sorted(maps.Keys(tds)); !slices.Equal(got, []string{topicA, topicB}) {
		t.Errorf("list topics: %v, want [%s %s] (refused creations must leave nothing)", got, topicA, topicB)
	}
	for _, name := range []string{topicA, topicB} {
		td := tds[name]
		if td.Err != nil || len(td.Partitions) != 6 {
			t.Errorf("topic %s: err %v, %d partitions", name, td.Err, len(td.Partitions))
		}
		for _, p := range td.Partitions.Sorted() {
			if p.Err != nil || !slices.Contains(ids, p.Leader) || !slices.Equal(p.Replicas, []int32{p.Leader}) || !slices.Equal(p.ISR, []int32{p.Leader}) {
				t.Errorf("topic %s partition %d: leader %d, replicas %v, isr %v, err %v (brokers %v)", name, p.Partition, p.Leader, p.Replicas, p.ISR, p.Err, ids)
			}
		}
	}

	// Describe configs: A's retention.ms is a dynamic topic config, the
	// rest come from the defaults; B has no override.
	compatWaitConfigs(t, ctx, cl, ids, topicA, map[string]string{"retention.ms": "3600000"}, "segment.bytes", "retention.bytes")
	compatWaitConfigs(t, ctx, cl, ids, topicB, nil, "retention.ms")

	// Incremental alter: set one, delete one; refusals for an unknown
	// config and a bad value leave the topic alone.
	if rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.bytes", Value: str("1048576")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, topicA); err != nil || compatAlterErr(rs) != nil {
		t.Fatalf("incremental alter %s: %v, %v", topicA, err, compatAlterErr(rs))
	}
	for _, bad := range []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "no.such.config", Value: str("1")},
		{Op: kadm.SetConfig, Name: "retention.bytes", Value: str("lots")},
	} {
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{bad}, topicA)
		if err != nil || !errors.Is(compatAlterErr(rs), kerr.InvalidConfig) {
			t.Errorf("incremental alter %s=%s: %v, %v; want INVALID_CONFIG", bad.Name, *bad.Value, err, compatAlterErr(rs))
		}
	}
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: str("1")}}, "compat-admin-missing")
	if err != nil || !errors.Is(compatAlterErr(rs), kerr.UnknownTopicOrPartition) {
		t.Errorf("incremental alter of a missing topic: %v, %v; want UNKNOWN_TOPIC_OR_PARTITION", err, compatAlterErr(rs))
	}
	compatWaitConfigs(t, ctx, cl, ids, topicA, map[string]string{"retention.bytes": "1048576"}, "retention.ms")

	// Whole-state alter (legacy AlterConfigs): what is not given goes back
	// to its default.
	if rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: str("2097152")}}, topicA); err != nil || compatAlterErr(rs) != nil {
		t.Fatalf("alter state %s: %v, %v", topicA, err, compatAlterErr(rs))
	}
	compatWaitConfigs(t, ctx, cl, ids, topicA, map[string]string{"max.message.bytes": "2097152"}, "retention.bytes", "retention.ms")

	// Grow A from 6 to 8 partitions; shrinking, and growing a missing
	// topic, are refused.
	if rs, err := adm.UpdatePartitions(ctx, 8, topicA); err != nil || rs[topicA].Err != nil {
		t.Fatalf("grow %s to 8 partitions: %v, %+v", topicA, err, rs[topicA])
	}
	if leaders := compatWaitTopic(t, ctx, seeds, topicA, 8); len(brokers) > 1 {
		compatCheckLeaderSpread(t, leaders, len(brokers))
	}
	if rs, err := adm.UpdatePartitions(ctx, 4, topicA); err != nil || !errors.Is(rs[topicA].Err, kerr.InvalidPartitions) {
		t.Errorf("shrink %s to 4 partitions: %v, %+v; want INVALID_PARTITIONS", topicA, err, rs[topicA])
	}
	if rs, err := adm.UpdatePartitions(ctx, 10, "compat-admin-missing"); err != nil || !errors.Is(rs["compat-admin-missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("grow a missing topic: %v, %+v; want UNKNOWN_TOPIC_OR_PARTITION", err, rs["compat-admin-missing"])
	}

	// 100 records in each of the 8 partitions, record i of each stamped
	// t0 + i seconds, for the offset listings: partitions 0-3 in
	// uncompressed batches, 4-7 in snappy batches (kgo's default).
	const perPartition = 100
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	sec := func(i int64) int64 { return ms(time.Duration(i) * time.Second) }
	compatProduceTimed(t, ctx, seeds, topicA, []int32{0, 1, 2, 3}, perPartition, t0, kgo.NoCompression())
	compatProduceTimed(t, ctx, seeds, topicA, []int32{4, 5, 6, 7}, perPartition, t0, kgo.SnappyCompression())
	// byTime is what Kafka answers for a time lookup that lands on record
	// i. Barge answers uncompressed batches exactly, but it does not open
	// compressed batches: there it answers the first offset of the batch
	// holding record i with the batch's max timestamp. That never skips a
	// record at or after the time, which is what is checked there.
	byTime := func(p int32, i int64) compatOffsetWant {
		return compatOffsetWant{offset: i, timestamp: sec(i), orEarlierInBatch: p >= 4}
	}
	exact := func(offset int64) compatOffsetWant { return compatOffsetWant{offset: offset, timestamp: -1} }
	compatWantOffsets(t, "end offsets", compatListed(adm.ListEndOffsets(ctx, topicA)), topicA, 8, func(int32) compatOffsetWant { return exact(perPartition) })
	compatWantOffsets(t, "start offsets", compatListed(adm.ListStartOffsets(ctx, topicA)), topicA, 8, func(int32) compatOffsetWant { return exact(0) })
	compatWantOffsets(t, "offsets after t0+50s", compatListed(adm.ListOffsetsAfterMilli(ctx, sec(50), topicA)), topicA, 8,
		func(p int32) compatOffsetWant { return byTime(p, 50) })
	compatWantOffsets(t, "offsets after t0+50.5s", compatListed(adm.ListOffsetsAfterMilli(ctx, ms(50500*time.Millisecond), topicA)), topicA, 8,
		func(p int32) compatOffsetWant { return byTime(p, 51) })
	compatWantOffsets(t, "offsets of the max timestamp", compatListed(adm.ListMaxTimestampOffsets(ctx, topicA)), topicA, 8,
		func(int32) compatOffsetWant {
			return compatOffsetWant{offset: perPartition - 1, timestamp: sec(perPartition - 1)}
		})
	// kadm answers a time after every record with the end offset (its
	// documented fallback when the broker says -1).
	compatWantOffsets(t, "offsets after the last record", compatListed(adm.ListOffsetsAfterMilli(ctx, ms(time.Hour), topicA)), topicA, 8,
		func(int32) compatOffsetWant { return exact(perPartition) })

	// Delete records: partition 0 below 40, partition 1 entirely,
	// partition 2 up to the high watermark (-1), partition 4 (snappy)
	// below 60; past the high watermark is refused.
	deleted := map[int32]int64{0: 40, 1: perPartition, 2: perPartition, 4: 60}
	var del kadm.Offsets
	del.AddOffset(topicA, 0, 40, -1)
	del.AddOffset(topicA, 1, perPartition, -1)
	del.AddOffset(topicA, 2, -1, -1)
	del.AddOffset(topicA, 4, 60, -1)
	drs, err := adm.DeleteRecords(ctx, del)
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	for p, want := range deleted {
		if r, ok := drs.Lookup(topicA, p); !ok || r.Err != nil || r.LowWatermark != want {
			t.Errorf("delete records of partition %d: %+v, want low watermark %d", p, r, want)
		}
	}
	var past kadm.Offsets
	past.AddOffset(topicA, 3, perPartition+1, -1)
	if drs, err := adm.DeleteRecords(ctx, past); err != nil {
		t.Errorf("delete records past the high watermark: %v", err)
	} else if r, _ := drs.Lookup(topicA, 3); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Errorf("delete records past the high watermark: %+v, want OFFSET_OUT_OF_RANGE", r)
	}
	compatWantOffsets(t, "start offsets after delete records", compatListed(adm.ListStartOffsets(ctx, topicA)), topicA, 8,
		func(p int32) compatOffsetWant { return exact(deleted[p]) })
	compatWantOffsets(t, "end offsets after delete records", compatListed(adm.ListEndOffsets(ctx, topicA)), topicA, 8,
		func(int32) compatOffsetWant { return exact(perPartition) })
	// A time before the deleted records finds the first record kept.
	compatWantOffsets(t, "offsets after t0+10s once records are deleted", compatListed(adm.ListOffsetsAfterMilli(ctx, sec(10), topicA)), topicA, 8,
		func(p int32) compatOffsetWant {
			switch start := deleted[p]; {
			case start == perPartition:
				return exact(perPartition) // nothing left: kadm's end-offset fallback
			case start > 10:
				w := byTime(p, start)
				w.atLeast = start
				return w
			default:
				return byTime(p, 10)
			}
		})
	for p, want := range map[int32]int64{0: 40, 3: 0, 4: 60} {
		if first := compatFirstOffset(t, ctx, seeds, topicA, p); first != want {
			t.Errorf("reading partition %d from the start after delete records began at offset %d, want %d", p, first, want)
		}
	}

	// Delete both topics: gone from every broker; deleting again and
	// describing are refused; the name can be created afresh, empty.
	dts, err := adm.DeleteTopics(ctx, topicA, topicB)
	if err != nil || dts.Error() != nil {
		t.Fatalf("delete topics: %v, %v", err, dts.Error())
	}
	for _, seed := range seeds {
		for _, name := range []string{topicA, topicB} {
			compatEventually(t, ctx, fmt.Sprintf("%s gone from broker %s", name, seed), func() error {
				_, err := compatLeadersFrom(ctx, seed, name)
				if errors.Is(err, kerr.UnknownTopicOrPartition) {
					return nil
				}
				return fmt.Errorf("metadata: %v", err)
			})
		}
	}
	if dts, err := adm.DeleteTopics(ctx, topicA); err != nil || !errors.Is(dts[topicA].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("delete a deleted topic: %v, %+v; want UNKNOWN_TOPIC_OR_PARTITION", err, dts[topicA])
	}
	if rcs, err := adm.DescribeTopicConfigs(ctx, topicA); err == nil && (len(rcs) != 1 || !errors.Is(rcs[0].Err, kerr.UnknownTopicOrPartition)) {
		t.Errorf("describe configs of a deleted topic: %+v; want UNKNOWN_TOPIC_OR_PARTITION", rcs)
	} else if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("describe configs of a deleted topic: %v; want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	compatRecreateAndProduce(t, ctx, seeds, topicA, 3)
	compatWaitConfigs(t, ctx, cl, ids, topicA, nil, "retention.ms", "max.message.bytes")
	t.Logf("admin scenario on %d broker(s) took %v", len(brokers), time.Since(start).Round(time.Millisecond))
}

// compatEventually retries check until it returns nil, failing the test
// after compatEventuallyWithin (or at the context's deadline) with the last
// error. In a cluster a change is applied on the broker that took it before
// the answer; the others apply it moments later.
func compatEventually(t *testing.T, ctx context.Context, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, compatEventuallyWithin)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// compatWaitConfigs waits until every broker in ids describes topic with
// exactly the overrides in dynamic (source DYNAMIC_TOPIC_CONFIG) and the
// configs in defaults at their default (source DEFAULT_CONFIG). Each broker
// is asked directly, so a broker that never applies a change is caught.
func compatWaitConfigs(t *testing.T, ctx context.Context, cl *kgo.Client, ids []int32, topic string, dynamic map[string]string, defaults ...string) {
	t.Helper()
	for _, id := range ids {
		compatEventually(t, ctx, fmt.Sprintf("configs of %s on broker %d", topic, id), func() error {
			req := kmsg.NewPtrDescribeConfigsRequest()
			res := kmsg.NewDescribeConfigsRequestResource()
			res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
			req.Resources = append(req.Resources, res)
			resp, err := req.RequestWith(ctx, cl.Broker(int(id)))
			if err != nil {
				return err
			}
			if len(resp.Resources) != 1 {
				return fmt.Errorf("%d resources in the answer", len(resp.Resources))
			}
			r := resp.Resources[0]
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				return err
			}
			got := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
			for _, c := range r.Configs {
				got[c.Name] = c
			}
			for _, c := range r.Configs {
				if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
					if _, ok := dynamic[c.Name]; !ok {
						return fmt.Errorf("%s=%s is a dynamic topic config, want only %v", c.Name, compatDeref(c.Value), dynamic)
					}
				}
			}
			for name, want := range dynamic {
				c, ok := got[name]
				if !ok || compatDeref(c.Value) != want || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
					return fmt.Errorf("%s: %+v, want %s from DYNAMIC_TOPIC_CONFIG", name, c, want)
				}
			}
			for _, name := range defaults {
				c, ok := got[name]
				if !ok || c.Value == nil || c.Source != kmsg.ConfigSourceDefaultConfig {
					return fmt.Errorf("%s: %+v, want its default from DEFAULT_CONFIG", name, c)
				}
			}
			return nil
		})
	}
}

// compatProduceTimed writes n records to each of partitions of topic,
// record i stamped t0 + i seconds, compressed with codec.
func compatProduceTimed(t *testing.T, ctx context.Context, seeds []string, topic string, partitions []int32, n int, t0 time.Time, codec kgo.CompressionCodec) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(codec))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for _, p := range partitions {
		for i := range n {
			rs = append(rs, &kgo.Record{
				Partition: p,
				Timestamp: t0.Add(time.Duration(i) * time.Second),
				Value:     fmt.Appendf(nil, "%d/%d", p, i),
			})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce timed records: %v", err)
	}
}

// compatRecreateAndProduce creates topic again right after its deletion
// and produces to it at once, before waiting for anything: every record
// acknowledged must be in the new topic, from offset 0. (A broker that
// still routes the name to the deleted topic's logs acknowledges records
// into a log it is about to delete.)
func compatRecreateAndProduce(t *testing.T, ctx context.Context, seeds []string, topic string, partitions int32) {
	t.Helper()
	adm := compatAdmin(t, seeds)
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatalf("re-create %s: %v", topic, err)
	}
	// A short metadata age: the leaders may be a moment behind the
	// metadata, and kgo's default would wait 5 s before retrying.
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 10
	var rs []*kgo.Record
	for p := range partitions {
		for i := range n {
			rs = append(rs, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "new %d/%d", p, i)})
		}
	}
	res := cl.ProduceSync(ctx, rs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce to the re-created %s: %v", topic, err)
	}
	for _, r := range res {
		if want := int64(r.Record.Value[len(r.Record.Value)-1] - '0'); r.Record.Offset != want {
			t.Errorf("re-created %s: record %q acknowledged at partition %d offset %d, want offset %d", topic, r.Record.Value, r.Record.Partition, r.Record.Offset, want)
		}
	}
	compatWaitTopic(t, ctx, seeds, topic, int(partitions))
	compatWantOffsets(t, "end offsets of the re-created topic", compatListed(compatAdmin(t, seeds).ListEndOffsets(ctx, topic)), topic, int(partitions),
		func(int32) compatOffsetWant { return compatOffsetWant{offset: n, timestamp: -1} })
}

// compatFirstOffset returns the offset of the first record read from the
// start of a partition.
func compatFirstOffset(t *testing.T, ctx context.Context, seeds []string, topic string, partition int32) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record read from %s/%d", topic, partition)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch %s/%d: %v", topic, partition, err) })
		if rs := fs.Records(); len(rs) > 0 {
			return rs[0].Offset
		}
	}
}

type compatListedOffsets struct {
	offs kadm.ListedOffsets
	err  error
}

func compatListed(offs kadm.ListedOffsets, err error) compatListedOffsets {
	return compatListedOffsets{offs, err}
}

// compatOffsetWant is the expected answer for one partition of an offset
// listing.
type compatOffsetWant struct {
	offset    int64
	timestamp int64 // -1: not checked
	// orEarlierInBatch also accepts an offset from atLeast up to offset
	// with any timestamp at or after timestamp: the answer for a
	// compressed batch that the broker does not open (its first offset,
	// or the log start, with the batch's max timestamp).
	orEarlierInBatch bool
	atLeast          int64
}

// compatWantOffsets checks a listing of topic's partitions partitions
// against want(partition).
func compatWantOffsets(t *testing.T, what string, l compatListedOffsets, topic string, partitions int, want func(int32) compatOffsetWant) {
	t.Helper()
	if l.err != nil {
		t.Errorf("%s: %v", what, l.err)
		return
	}
	if got := len(l.offs[topic]); got != partitions {
		t.Errorf("%s: %d partitions listed, want %d: %+v", what, got, partitions, l.offs[topic])
	}
	for p := range int32(partitions) {
		o, ok := l.offs.Lookup(topic, p)
		w := want(p)
		exact := o.Offset == w.offset && (w.timestamp == -1 || o.Timestamp == w.timestamp)
		earlier := w.orEarlierInBatch && o.Offset >= w.atLeast && o.Offset <= w.offset && o.Timestamp >= w.timestamp
		switch {
		case !ok || o.Err != nil || (!exact && !earlier):
			t.Errorf("%s: partition %d: %+v, want offset %d, timestamp %d", what, p, o, w.offset, w.timestamp)
		case !exact:
			t.Logf("%s: partition %d (compressed): offset %d at %d, Kafka would answer offset %d at %d", what, p, o.Offset, o.Timestamp, w.offset, w.timestamp)
		}
	}
}

func compatAlterErr(rs kadm.AlterConfigsResponses) error {
	for _, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("%s: %w (%s)", r.Name, r.Err, r.ErrMessage)
		}
	}
	return nil
}

func compatDeref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func compatConfigString(c kadm.Config) string {
	return fmt.Sprintf("%s=%s (%v)", c.Key, compatDeref(c.Value), c.Source)
}

func compatConfigMap(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = compatDeref(v)
	}
	return out
}

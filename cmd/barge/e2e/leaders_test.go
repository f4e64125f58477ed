package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/barge-broker/barge/internal/testutil"
)

// Leader balance and log dirs against three real brokers: kadm's
// DescribeLogDirs agrees with the segment files on disk, and the CLI's
// broker list with both; a broker killed -9 and restarted leads nothing
// (automatic rebalancing is off here) until kadm's and the CLI's preferred
// elections hand its partitions back; bad elections (unknown topic or
// partition, unclean on a healthy partition, a malformed argument) are
// refused with their Kafka codes and exit codes and change no leader.
func TestElectLeadersAndLogDirs(t *testing.T) {
	const topic, partitions = "elect", 6
	brokers, byID, ctx, adm := startLeaderCluster(t, topic, partitions, 400, "--auto-leader-rebalance-enable=false")

	// Log dirs: every replica's size as kadm reads it equals its segment
	// files on disk, once the followers have caught up.
	testutil.WaitFor(t, 30*time.Second, "DescribeLogDirs sizes equal the .log files on disk", func() (bool, string) {
		return logDirsMatchDisk(ctx, adm, byID, topic, partitions)
	})
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs.Sorted() {
		abs, _ := filepath.Abs(byID[d.Broker].DataDir)
		if d.Err != nil || d.Dir != abs || d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
			t.Errorf("broker %d log dir %+v: want %s without error, 0 < usable <= total", d.Broker, d, abs)
		}
		t.Logf("broker %d: %s holds %d bytes of partition logs (volume %d total, %d usable)", d.Broker, d.Dir, d.Size(), d.TotalBytes, d.UsableBytes)
	}
	env := cliEnvOf(brokers...)
	var list struct {
		Brokers []struct {
			ID          int32 `json:"id"`
			Alive       bool  `json:"alive"`
			Fenced      bool  `json:"fenced"`
			Leaders     int   `json:"leaders"`
			Replicas    int   `json:"replicas"`
			LogDirBytes int64 `json:"log_dir_bytes"`
		} `json:"brokers"`
	}
	cliRun(t, env, "broker", "list", "-o", "json").must(t, 0).json(t, &list)
	leaders := 0
	for _, b := range list.Brokers {
		leaders += b.Leaders
		disk := diskLogBytes(t, byID[b.ID], topic, partitions)
		if !b.Alive || b.Fenced || b.Replicas != partitions || b.LogDirBytes != disk {
			t.Errorf("broker list: %+v, want alive with %d replicas and %d log bytes (on disk)", b, partitions, disk)
		}
	}
	if len(list.Brokers) != 3 || leaders != partitions {
		t.Errorf("broker list: %d brokers leading %d partitions, want 3 and %d", len(list.Brokers), leaders, partitions)
	}

	var desc struct {
		ID      int32 `json:"id"`
		LogDirs []struct {
			Path        string `json:"path"`
			Bytes       int64  `json:"bytes"`
			TotalBytes  int64  `json:"total_bytes"`
			UsableBytes int64  `json:"usable_bytes"`
		} `json:"log_dirs"`
		Partitions []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			InISR     bool   `json:"in_isr"`
			Bytes     int64  `json:"bytes"`
			OffsetLag int64  `json:"offset_lag"`
		} `json:"partitions"`
	}
	b1 := brokers[1]
	cliRun(t, env, "broker", "describe", fmt.Sprint(b1.ID), "-o", "json").must(t, 0).json(t, &desc)
	abs, _ := filepath.Abs(b1.DataDir)
	if desc.ID != int32(b1.ID) || len(desc.LogDirs) != 1 || desc.LogDirs[0].Path != abs ||
		desc.LogDirs[0].Bytes != diskLogBytes(t, b1, topic, partitions) || desc.LogDirs[0].UsableBytes <= 0 {
		t.Errorf("broker describe %d: %+v, want one log dir %s of %d bytes", b1.ID, desc, abs, diskLogBytes(t, b1, topic, partitions))
	}
	if len(desc.Partitions) != partitions {
		t.Errorf("broker describe %d: %d partitions, want %d", b1.ID, len(desc.Partitions), partitions)
	}
	for _, p := range desc.Partitions {
		if p.Topic != topic || !p.InISR || p.OffsetLag != 0 || p.Bytes != partitionDiskBytes(t, b1, topic, p.Partition) {
			t.Errorf("broker describe %d: %+v, want in the ISR with the bytes on disk", b1.ID, p)
		}
	}
	mustContain(t, "broker describe 99", cliRun(t, env, "broker", "describe", "99").must(t, 1).stderr, "broker 99 is not registered")
	cliRun(t, env, "broker", "describe", "two").must(t, 2)

	// Broker x, the preferred replica of partition 0, is killed -9 and
	// restarted: with automatic rebalancing off it stays a follower.
	md0 := topicPartitions(ctx, t, adm, topic)
	x := md0[0].Replicas[0]
	var preferredOfX []int32
	for _, p := range md0 {
		if p.Replicas[0] == x {
			preferredOfX = append(preferredOfX, p.Partition)
		}
	}
	if len(preferredOfX) < 2 {
		t.Fatalf("broker %d is the preferred replica of %v only; the test needs two", x, preferredOfX)
	}
	byID[x].Kill()
	waitPartitions(ctx, t, adm, topic, fmt.Sprintf("broker %d leads nothing", x), func(ps map[int32]kadm.PartitionDetail) bool {
		for _, p := range ps {
			if p.Leader == x || p.Leader < 0 {
				return false
			}
		}
		return true
	})
	byID[x].Restart()
	waitFullISR(ctx, t, adm, topic)
	before := topicPartitions(ctx, t, adm, topic)
	for _, p := range preferredOfX {
		if before[p].Leader == x {
			t.Fatalf("partition %d is led by %d right after its restart, with automatic rebalancing off", p, x)
		}
	}
	unchanged := func(when string) {
		t.Helper()
		now := topicPartitions(ctx, t, adm, topic)
		for i, p := range before {
			if now[i].Leader != p.Leader || now[i].LeaderEpoch != p.LeaderEpoch {
				t.Fatalf("%s: partition %d went from leader %d epoch %d to %d epoch %d", when, i, p.Leader, p.LeaderEpoch, now[i].Leader, now[i].LeaderEpoch)
			}
		}
	}

	// Bad input, through kadm: the Kafka codes, no change.
	for _, tc := range []struct {
		how  kadm.ElectLeadersHow
		set  kadm.TopicsSet
		want *kerr.Error
	}{
		{kadm.ElectPreferredReplica, kadm.TopicsSet{"no-such-topic": {0: {}}}, kerr.UnknownTopicOrPartition},
		{kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {partitions + 3: {}}}, kerr.UnknownTopicOrPartition},
		{kadm.ElectLiveReplica, kadm.TopicsSet{topic: {preferredOfX[0]: {}}}, kerr.ElectionNotNeeded},
	} {
		res, err := adm.ElectLeaders(ctx, tc.how, tc.set)
		if err != nil {
			t.Fatal(err)
		}
		for tp, ps := range tc.set {
			for p := range ps {
				if r := res[tp][p]; !errors.Is(r.Err, tc.want) {
					t.Errorf("elect %v %s-%d: %+v, want %v", tc.how, tp, p, r, tc.want)
				}
			}
		}
	}
	unchanged("after refused kadm elections")

	// Bad input, through the CLI: exit codes and messages, no change.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--unclean", fmt.Sprintf("%s:%d", topic, preferredOfX[0]), "--execute"}, 1, "an unclean election is only for a partition without a live leader"},
		{[]string{"no-such-topic:0", "--execute"}, 1, `topic "no-such-topic" does not exist`},
		{[]string{topic + ":99", "--execute"}, 1, "has no partition 99"},
		{[]string{topic + ":x"}, 2, "is not a partition number"},
		{[]string{"--preferred", "--unclean", topic}, 2, "exclude each other"},
	} {
		r := cliRun(t, env, append([]string{"partition", "elect"}, tc.args...)...).must(t, tc.code)
		mustContain(t, "partition elect "+strings.Join(tc.args, " "), r.stdout+r.stderr, tc.msg)
	}
	unchanged("after refused CLI elections")

	// A dry run plans both of x's partitions and changes nothing.
	var plan struct {
		Executed   bool `json:"executed"`
		Partitions []struct {
			Partition int32  `json:"partition"`
			NewLeader int32  `json:"new_leader"`
			Action    string `json:"action"`
		} `json:"partitions"`
	}
	cliRun(t, env, "partition", "elect", topic, "-o", "json").must(t, 0).json(t, &plan)
	planned := 0
	for _, p := range plan.Partitions {
		want := "none"
		if slices.Contains(preferredOfX, p.Partition) {
			want = "elect"
			planned++
		}
		if p.Action != want || (want == "elect" && p.NewLeader != x) {
			t.Errorf("dry run: partition %d %+v, want action %s", p.Partition, p, want)
		}
	}
	if plan.Executed || planned != len(preferredOfX) || len(plan.Partitions) != partitions {
		t.Errorf("dry run: %+v, want %d partitions, %d to elect, not executed", plan, partitions, len(preferredOfX))
	}
	unchanged("after a dry run")

	// kadm elects the first back, the CLI the rest.
	res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {preferredOfX[0]: {}}})
	if err != nil || res[topic][preferredOfX[0]].Err != nil {
		t.Fatalf("kadm preferred election of %s-%d: %+v, %v", topic, preferredOfX[0], res, err)
	}
	cliRun(t, env, "partition", "elect", "--preferred", "--execute", "-o", "json").must(t, 0).json(t, &plan)
	// The CLI plans from metadata that may not name the first election's
	// leader yet (brokers apply it within a Raft heartbeat of each other);
	// such a partition comes back as "none", ELECTION_NOT_NEEDED.
	elected := map[int32]bool{}
	for _, p := range plan.Partitions {
		switch {
		case p.Action == "elect" && p.NewLeader == x && slices.Contains(preferredOfX[1:], p.Partition):
			elected[p.Partition] = true
		case p.Action == "none" && p.Partition == preferredOfX[0]:
		default:
			t.Errorf("partition elect --execute: %+v, want %v elected to %d", p, preferredOfX[1:], x)
		}
	}
	if !plan.Executed || len(elected) != len(preferredOfX)-1 {
		t.Errorf("partition elect --execute of every partition: %+v, want %v elected", plan, preferredOfX[1:])
	}
	waitPartitions(ctx, t, adm, topic, "every partition led by its preferred replica", func(ps map[int32]kadm.PartitionDetail) bool {
		for _, p := range ps {
			if p.Leader != p.Replicas[0] {
				return false
			}
		}
		return true
	})
	// Every partition as preferred: an election of all of them is empty
	// (Kafka leaves ELECTION_NOT_NEEDED out for a null topic list).
	if res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil); err != nil || len(res) != 0 {
		t.Errorf("election of every partition when all are preferred: %+v, %v; want no partitions", res, err)
	}

	// A killed broker shows as fenced, without log dir size.
	y := brokers[0]
	if int32(y.ID) == x {
		y = brokers[1]
	}
	y.Kill()
	others := cliEnvOf(slices.DeleteFunc(slices.Clone(brokers), func(b *harness.Broker) bool { return b == y })...)
	cliWait(t, 20*time.Second, fmt.Sprintf("broker %d fenced in broker list", y.ID), func() cliResult {
		return cliRun(t, others, "broker", "list", "-o", "json")
	}, func(r cliResult) bool {
		if r.code != 0 {
			return false
		}
		r.json(t, &list)
		for _, b := range list.Brokers {
			if b.ID == int32(y.ID) {
				return b.Fenced && !b.Alive && b.LogDirBytes == -1
			}
		}
		return false
	})
}

// Automatic rebalancing (check interval 2 s): after a kill -9 and restart
// the broker gets back the leadership of the partitions it is the
// preferred replica of within a check interval of rejoining their ISRs.
// While it is live but out of the ISRs (restarted with its follower
// fetches held by a free-space reserve larger than the disk), and while it
// is stopped (SIGSTOP: fenced), it gets none; at no time does it lead a
// partition whose ISR does not hold it.
func TestAutoLeaderRebalance(t *testing.T) {
	const topic, partitions = "rebalance", 3
	const interval = 2 * time.Second
	brokers, byID, ctx, adm := startLeaderCluster(t, topic, partitions, 100,
		"--leader-imbalance-check-interval-seconds", fmt.Sprint(int(interval/time.Second)))
	md := topicPartitions(ctx, t, adm, topic)
	x := md[0].Replicas[0]
	var preferredOfX []int32
	for _, p := range md {
		if p.Replicas[0] == x {
			preferredOfX = append(preferredOfX, p.Partition)
		}
	}
	xLeadsAll := func(ps map[int32]kadm.PartitionDetail) bool {
		for _, p := range preferredOfX {
			if ps[p].Leader != x {
				return false
			}
		}
		return true
	}
	waitPartitions(ctx, t, adm, topic, "preferred leaders at start", xLeadsAll)

	var live []*harness.Broker
	for _, b := range brokers {
		if int32(b.ID) != x {
			live = append(live, b)
		}
	}
	// Metadata is read from the brokers other than x: one stopped or just
	// resumed answers from an image of before, until it has caught up.
	liveAdm := newLeaderAdmin(t, live...)
	baseArgs := slices.Clone(byID[x].Args)
	// killRestart kills x -9, waits until the others lead everything, and
	// starts x again with extra flags; it returns when x started.
	killRestart := func(extra ...string) time.Time {
		t.Helper()
		byID[x].Kill()
		waitPartitions(ctx, t, liveAdm, topic, fmt.Sprintf("broker %d leads nothing", x), func(ps map[int32]kadm.PartitionDetail) bool {
			for _, p := range ps {
				if p.Leader == x || p.Leader < 0 {
					return false
				}
			}
			return true
		})
		byID[x].Args = append(slices.Clone(baseArgs), extra...)
		started := time.Now()
		byID[x].Restart()
		return started
	}
	// awaitBack waits until x leads its preferred partitions again, and
	// checks that it did within a check interval of rejoining the ISRs.
	awaitBack := func(what string, since time.Time) {
		t.Helper()
		var inISR, back time.Time
		waitPartitions(ctx, t, liveAdm, topic, fmt.Sprintf("broker %d leading %v again", x, preferredOfX), func(ps map[int32]kadm.PartitionDetail) bool {
			checkNotLedOutsideISR(t, ps, x)
			if inISR.IsZero() && isrHoldsEverywhere(ps, x) {
				inISR = time.Now()
			}
			if xLeadsAll(ps) {
				back = time.Now()
				return true
			}
			return false
		})
		if inISR.IsZero() {
			inISR = back // rejoined and elected between two polls
		}
		t.Logf("%s of broker %d: in every ISR %v after, leading %v again %v after that (check interval %v)",
			what, x, inISR.Sub(since).Round(time.Millisecond), preferredOfX, back.Sub(inISR).Round(time.Millisecond), interval)
		// One interval, plus the poll period, a commit and its way to the
		// broker answering (slack for a loaded CI machine).
		if d := back.Sub(inISR); d > interval+2*time.Second {
			t.Errorf("%s: leadership came back %v after broker %d rejoined the ISR; the check interval is %v", what, d, x, interval)
		}
	}
	// mustStayAway samples the metadata for two check intervals: x never
	// leads, nor is in an ISR; with alive, it is a live broker throughout.
	mustStayAway := func(what string, alive bool) int {
		t.Helper()
		samples := 0
		for start := time.Now(); time.Since(start) < 2*interval; samples++ {
			md, err := liveAdm.Metadata(ctx, topic)
			if err != nil {
				t.Fatalf("%s: metadata: %v", what, err)
			}
			if listed := slices.Contains(md.Brokers.NodeIDs(), x); listed != alive {
				t.Fatalf("%s: broker %d live in metadata: %v, want %v", what, x, listed, alive)
			}
			for _, p := range md.Topics[topic].Partitions {
				if p.Leader == x || slices.Contains(p.ISR, x) {
					t.Fatalf("%s: partition %d leader %d isr %v", what, p.Partition, p.Leader, p.ISR)
				}
			}
			time.Sleep(100 * time.Millisecond) // sampling a state that must not change
		}
		return samples
	}
	outOfISR := func(ps map[int32]kadm.PartitionDetail) bool {
		for _, p := range ps {
			if p.Leader == x || p.Leader < 0 || slices.Contains(p.ISR, x) {
				return false
			}
		}
		return true
	}

	// Kill -9 and restart: x comes back as a follower, rejoins the ISRs,
	// and the next check hands its partitions back.
	awaitBack("kill -9 and restart", killRestart())

	// Live but out of the ISR: x restarts after a kill -9 (which takes it
	// out of every ISR) with a free-space reserve larger than its disk, so
	// its follower fetches are held and it never catches up. It heartbeats
	// and is unfenced, yet no check may give it leadership.
	killRestart("--storage-min-free-bytes", fmt.Sprint(int64(1)<<62))
	waitPartitions(ctx, t, liveAdm, topic, fmt.Sprintf("broker %d out of every ISR", x), outOfISR)
	n := mustStayAway("live broker out of the ISR", true)
	t.Logf("broker %d live with its fetches held: out of every ISR and leading nothing over %d samples in %v", x, n, 2*interval)
	awaitBack("restart with the default reserve", killRestart())

	// SIGSTOP: x is fenced and drops out of every ISR, and must lead
	// nothing; resumed, it catches up and gets its partitions back.
	pid := byID[x].Pid()
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitPartitions(ctx, t, liveAdm, topic, fmt.Sprintf("stopped broker %d out of every ISR", x), outOfISR)
	n = mustStayAway("stopped broker", false)
	t.Logf("broker %d stopped: fenced, leading nothing over %d samples in %v", x, n, 2*interval)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	awaitBack("SIGCONT", time.Now())
}

// newLeaderAdmin is a kadm client seeded with brokers, with fresh metadata
// on every request (leaders move under these tests).
// startLeaderCluster starts three brokers with the replication arguments
// and extraArgs, creates topic (RF=3) with full ISRs and writes records to
// each partition (produceSpread). It returns the brokers, the same by id, a
// context for the test and an admin client.
func startLeaderCluster(t *testing.T, topic string, partitions, records int, extraArgs ...string) ([]*harness.Broker, map[int32]*harness.Broker, context.Context, *kadm.Client) {
	t.Helper()
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: append(slices.Clone(replicationArgs), extraArgs...)})
	byID := map[int32]*harness.Broker{}
	for _, b := range brokers {
		byID[int32(b.ID)] = b
	}
	ctx := harness.Context(t, 3*time.Minute)
	adm := newLeaderAdmin(t, brokers...)
	if _, err := adm.CreateTopic(ctx, int32(partitions), 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitFullISR(ctx, t, adm, topic)
	produceSpread(ctx, t, brokers, topic, partitions, records)
	return brokers, byID, ctx, adm
}

func newLeaderAdmin(t *testing.T, brokers ...*harness.Broker) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RequestTimeoutOverhead(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// produceSpread writes n records of growing size to each partition,
// acks=all.
func produceSpread(ctx context.Context, t *testing.T, brokers []*harness.Broker, topic string, partitions, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for p := range partitions {
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(strings.Repeat("v", 10+(i*p)%200))})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// diskLogBytes sums the segment (.log) files of broker b's replicas of
// topic, as Kafka counts a log's size.
func diskLogBytes(t *testing.T, b *harness.Broker, topic string, partitions int) int64 {
	t.Helper()
	var total int64
	for p := range partitions {
		total += partitionDiskBytes(t, b, topic, int32(p))
	}
	return total
}

func partitionDiskBytes(t *testing.T, b *harness.Broker, topic string, p int32) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(b.DataDir, fmt.Sprintf("%s-%d", topic, p), "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("segments of %s-%d on broker %d: %v %v", topic, p, b.ID, files, err)
	}
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// logDirsMatchDisk compares DescribeLogDirs with the files on disk, for
// every replica of topic, and says what differs.
func logDirsMatchDisk(ctx context.Context, adm *kadm.Client, byID map[int32]*harness.Broker, topic string, partitions int) (bool, string) {
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return false, err.Error()
	}
	var bad []string
	for id, b := range byID {
		for p := range int32(partitions) {
			dp, ok := dirs[id].LookupPartition(topic, p)
			files, _ := filepath.Glob(filepath.Join(b.DataDir, fmt.Sprintf("%s-%d", topic, p), "*.log"))
			var disk int64
			for _, f := range files {
				if fi, err := os.Stat(f); err == nil {
					disk += fi.Size()
				}
			}
			if !ok || dp.Size != disk || dp.OffsetLag != 0 || dp.IsFuture || disk == 0 {
				bad = append(bad, fmt.Sprintf("broker %d %s-%d: reported %+v (found %v), disk %d", id, topic, p, dp, ok, disk))
			}
		}
	}
	return len(bad) == 0, strings.Join(bad, "; ")
}

func topicPartitions(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) map[int32]kadm.PartitionDetail {
	t.Helper()
	var last error
	for ctx.Err() == nil {
		md, err := adm.Metadata(ctx, topic)
		if err == nil && md.Topics[topic].Err == nil && len(md.Topics[topic].Partitions) > 0 {
			return md.Topics[topic].Partitions
		}
		last = err
		time.Sleep(100 * time.Millisecond) // retry a failed metadata request
	}
	t.Fatalf("metadata of %s: %v", topic, last)
	return nil
}

// waitPartitions polls the metadata of topic until cond holds.
func waitPartitions(ctx context.Context, t *testing.T, adm *kadm.Client, topic, what string, cond func(map[int32]kadm.PartitionDetail) bool) {
	t.Helper()
	var last map[int32]kadm.PartitionDetail
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil && md.Topics[topic].Err == nil {
			if last = md.Topics[topic].Partitions; cond(last) {
				return
			}
		}
		select {
		case <-ctx.Done():
			var state []string
			for _, p := range last {
				state = append(state, fmt.Sprintf("%d: leader %d isr %v", p.Partition, p.Leader, p.ISR))
			}
			t.Fatalf("waiting for %s: %v (last: %s)", what, err, strings.Join(state, "; "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func isrHoldsEverywhere(ps map[int32]kadm.PartitionDetail, id int32) bool {
	for _, p := range ps {
		if !slices.Contains(p.ISR, id) {
			return false
		}
	}
	return true
}

// checkNotLedOutsideISR fails if id leads a partition whose ISR lacks it.
func checkNotLedOutsideISR(t *testing.T, ps map[int32]kadm.PartitionDetail, id int32) {
	t.Helper()
	for _, p := range ps {
		if p.Leader == id && !slices.Contains(p.ISR, id) {
			t.Fatalf("partition %d led by %d outside its ISR %v", p.Partition, id, p.ISR)
		}
	}
}

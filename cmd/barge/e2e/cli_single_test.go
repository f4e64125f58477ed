package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// JSON shapes the tests decode, with the field names spelled out: they are
// the CLI's stable API, so the tests do not reuse the CLI's own types.

type cliTopicResults struct {
	Topics []struct {
		Topic             string `json:"topic"`
		TopicID           string `json:"topic_id"`
		Partitions        int    `json:"partitions"`
		ReplicationFactor int    `json:"replication_factor"`
		Internal          bool   `json:"internal"`
		Error             string `json:"error"`
	} `json:"topics"`
}

type cliDescribed struct {
	Topics []cliDescribedTopic `json:"topics"`
}

type cliProduced struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp int64  `json:"timestamp"`
	Error     string `json:"error"`
}

type cliRecord struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Offset    int64   `json:"offset"`
	Timestamp int64   `json:"timestamp"`
	Key       *string `json:"key"`
	Value     *string `json:"value"`
	Headers   []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"headers"`
}

type cliInfo struct {
	ClusterID    string `json:"cluster_id"`
	ControllerID int32  `json:"controller_id"`
	Brokers      []struct {
		ID           int32  `json:"id"`
		Host         string `json:"host"`
		Port         int32  `json:"port"`
		Rack         string `json:"rack"`
		IsController bool   `json:"is_controller"`
	} `json:"brokers"`
}

type cliHealth struct {
	IsHealthy            bool     `json:"is_healthy"`
	Reasons              []string `json:"reasons"`
	BrokerID             int32    `json:"broker_id"`
	ControllerID         int32    `json:"controller_id"`
	Brokers              []int32  `json:"brokers"`
	BrokersDown          []int32  `json:"brokers_down"`
	LeaderlessCount      int      `json:"leaderless_count"`
	LeaderlessPartitions []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
	} `json:"leaderless_partitions"`
	UnderReplicatedCount int `json:"under_replicated_count"`
}

type cliQuorum struct {
	LeaderID    int32          `json:"leader_id"`
	Term        uint64         `json:"term"`
	CommitIndex uint64         `json:"commit_index"`
	Voters      []cliQuorumMem `json:"voters"`
	NonVoters   []cliQuorumMem `json:"non_voters"`
}

type cliQuorumMem struct {
	ID           int32  `json:"id"`
	State        string `json:"state"`
	LastLogIndex uint64 `json:"last_log_index"`
	Lag          int64  `json:"lag"`
	Reachable    bool   `json:"reachable"`
}

// TestCLISingleNode runs every admin command against one broker.
func TestCLISingleNode(t *testing.T) {
	b := harness.StartBroker(t, harness.Options{})
	env := cliEnvOf(b)

	t.Run("cluster info, health and quorum", func(t *testing.T) {
		var info cliInfo
		cliRun(t, env, "cluster", "info", "-o", "json").must(t, 0).json(t, &info)
		port, _ := strconv.Atoi(b.KafkaAddr[strings.LastIndexByte(b.KafkaAddr, ':')+1:])
		if info.ClusterID == "" || info.ControllerID != 0 || len(info.Brokers) != 1 ||
			info.Brokers[0].ID != 0 || info.Brokers[0].Host != "127.0.0.1" || info.Brokers[0].Port != int32(port) || !info.Brokers[0].IsController {
			t.Errorf("cluster info: %+v", info)
		}
		r := cliRun(t, env, "cluster", "info").must(t, 0)
		mustContain(t, "cluster info", r.stdout, "CLUSTER", info.ClusterID, "CONTROLLER", "ID", "HOST", "0*", "127.0.0.1")

		var h cliHealth
		cliRun(t, env, "cluster", "health", "-o", "json").must(t, 0).json(t, &h)
		if !h.IsHealthy || h.ControllerID != 0 || !slices.Equal(h.Brokers, []int32{0}) || len(h.BrokersDown) != 0 || len(h.Reasons) != 0 {
			t.Errorf("health: %+v", h)
		}
		r = cliRun(t, env, "cluster", "health").must(t, 0)
		mustContain(t, "cluster health", r.stdout, "HEALTHY", "true", "BROKERS DOWN")
		r = cliRun(t, env, "cluster", "health", "-o", "yaml").must(t, 0)
		mustContain(t, "cluster health -o yaml", r.stdout, "is_healthy: true\n", "brokers_down: []\n")

		var q cliQuorum
		cliRun(t, env, "cluster", "quorum", "-o", "json").must(t, 0).json(t, &q)
		if q.LeaderID != 0 || q.Term == 0 || len(q.Voters) != 1 || len(q.NonVoters) != 0 {
			t.Fatalf("quorum: %+v", q)
		}
		if v := q.Voters[0]; v.ID != 0 || v.State != "leader" || v.Lag != 0 || !v.Reachable || v.LastLogIndex == 0 {
			t.Errorf("quorum voter: %+v", v)
		}
		r = cliRun(t, env, "cluster", "quorum").must(t, 0)
		mustContain(t, "cluster quorum", r.stdout, "LEADER", "TERM", "COMMIT INDEX", "voter", "leader")
	})

	t.Run("topic lifecycle", func(t *testing.T) {
		const name = "cli-orders"
		var created cliTopicResults
		cliRun(t, env, "topic", "create", name, "-p", "3", "-c", "retention.ms=3600000", "-o", "json").must(t, 0).json(t, &created)
		if len(created.Topics) != 1 || created.Topics[0].Topic != name || created.Topics[0].Partitions != 3 ||
			created.Topics[0].ReplicationFactor != 1 || created.Topics[0].TopicID == "" || created.Topics[0].Error != "" {
			t.Fatalf("create: %+v", created)
		}
		r := cliRun(t, env, "topic", "create", name).must(t, 1)
		mustContain(t, "create of an existing topic", r.stdout, name, "already exists")
		mustContain(t, "create of an existing topic", r.stderr, "1 of 1 topics failed")
		// Some of several failing is a failure too, with every result shown.
		r = cliRun(t, env, "topic", "create", "cli-new", name, "-o", "json").must(t, 1)
		var partial cliTopicResults
		r.json(t, &partial)
		if len(partial.Topics) != 2 || partial.Topics[0].Error != "" || !strings.Contains(partial.Topics[1].Error, "already exists") {
			t.Errorf("partly failed create: %+v", partial)
		}
		r = cliRun(t, env, "topic", "create", "cli-dry", "--dry-run").must(t, 0)
		mustContain(t, "create --dry-run", r.stdout, "dry run")

		var listed cliTopicResults
		cliRun(t, env, "topic", "list", "-o", "json").must(t, 0).json(t, &listed)
		var names []string
		for _, tp := range listed.Topics {
			names = append(names, tp.Topic)
			if tp.Topic == name && (tp.Partitions != 3 || tp.ReplicationFactor != 1 || tp.TopicID != created.Topics[0].TopicID) {
				t.Errorf("list entry: %+v", tp)
			}
		}
		if !slices.Contains(names, name) || !slices.Contains(names, "cli-new") || slices.Contains(names, "cli-dry") {
			t.Errorf("list: %v", names)
		}
		r = cliRun(t, env, "topic", "list").must(t, 0)
		mustContain(t, "topic list", r.stdout, "TOPIC", "PARTITIONS", "REPLICAS", name)

		d := cliDescribe(t, env, name)
		if len(d.Partitions) != 3 || d.TopicID != created.Topics[0].TopicID || d.ReplicationFactor != 1 {
			t.Fatalf("describe: %+v", d)
		}
		for _, p := range d.Partitions {
			if p.Leader != 0 || !slices.Equal(p.Replicas, []int32{0}) || !slices.Equal(p.ISR, []int32{0}) ||
				p.LogStartOffset != 0 || p.HighWatermark != 0 || p.Error != "" {
				t.Errorf("describe partition: %+v", p)
			}
		}
		cliCheckConfig(t, env, name, "retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG")
		cliCheckConfig(t, env, name, "segment.bytes", "1073741824", "DEFAULT_CONFIG")
		r = cliRun(t, env, "topic", "describe", name).must(t, 0)
		mustContain(t, "topic describe", r.stdout, "SUMMARY", "CONFIGS", "PARTITIONS", "retention.ms", "DYNAMIC_TOPIC_CONFIG",
			"LOG-START-OFFSET", "HIGH-WATERMARK")

		cliRun(t, env, "topic", "alter-config", name, "--set", "segment.bytes=1048576", "--delete", "retention.ms").must(t, 0)
		cliCheckConfig(t, env, name, "segment.bytes", "1048576", "DYNAMIC_TOPIC_CONFIG")
		cliCheckConfig(t, env, name, "retention.ms", "604800000", "DEFAULT_CONFIG")
		r = cliRun(t, env, "topic", "alter-config", name, "--set", "retention.ms=notanumber", "-o", "json").must(t, 1)
		mustContain(t, "alter-config with a bad value", r.stdout, `"error": "INVALID_CONFIG`)

		cliRun(t, env, "topic", "add-partitions", name, "--num", "2").must(t, 0)
		if d := cliDescribe(t, env, name); len(d.Partitions) != 5 {
			t.Errorf("after add-partitions: %d partitions", len(d.Partitions))
		}

		// Trim partition 0 to offset 4 of 10.
		var lines []string
		for i := range 10 {
			lines = append(lines, fmt.Sprint("v", i))
		}
		cliRunIn(t, env, strings.Join(lines, "\n")+"\n", "produce", name, "-p", "0", "-q").must(t, 0)
		var trimmed struct {
			Partitions []struct {
				Topic          string `json:"topic"`
				Partition      int32  `json:"partition"`
				LogStartOffset int64  `json:"log_start_offset"`
				Error          string `json:"error"`
			} `json:"partitions"`
		}
		cliRun(t, env, "topic", "trim", name, "--offset", "4", "-p", "0", "-o", "json").must(t, 0).json(t, &trimmed)
		if len(trimmed.Partitions) != 1 || trimmed.Partitions[0].LogStartOffset != 4 || trimmed.Partitions[0].Error != "" {
			t.Errorf("trim: %+v", trimmed)
		}
		if p := cliDescribe(t, env, name).Partitions[0]; p.LogStartOffset != 4 || p.HighWatermark != 10 {
			t.Errorf("after trim: %+v", p)
		}
		// -N keeps the last N records.
		cliRun(t, env, "topic", "trim", name, "--offset", "-2", "-p", "0").must(t, 0)
		if p := cliDescribe(t, env, name).Partitions[0]; p.LogStartOffset != 8 {
			t.Errorf("after trim -2: %+v", p)
		}

		r = cliRun(t, env, "topic", "describe", "cli-missing").must(t, 1)
		mustContain(t, "describe of a missing topic", r.stdout, `topic "cli-missing" does not exist`)

		var deleted cliTopicResults
		cliRun(t, env, "topic", "delete", name, "cli-new", "-o", "json").must(t, 0).json(t, &deleted)
		if len(deleted.Topics) != 2 || deleted.Topics[0].Error != "" || deleted.Topics[1].Error != "" {
			t.Errorf("delete: %+v", deleted)
		}
		r = cliRun(t, env, "topic", "delete", name).must(t, 1)
		mustContain(t, "delete of a deleted topic", r.stdout, "does not exist")
	})

	t.Run("produce and consume", func(t *testing.T) {
		const name = "cli-records"
		cliRun(t, env, "topic", "create", name, "-p", "2").must(t, 0)
		r := cliRunIn(t, env, "a 1\nb 2\nc 3\n", "produce", name, "-f", `%k %v\n`, "-H", "h=1", "-p", "1", "-o", "json").must(t, 0)
		produced := cliJSONLines[cliProduced](t, r)
		if len(produced) != 3 {
			t.Fatalf("produced %d, want 3:\n%s", len(produced), r.stdout)
		}
		for i, p := range produced {
			if p.Topic != name || p.Partition != 1 || p.Offset != int64(i) || p.Error != "" || p.Timestamp == 0 {
				t.Errorf("produced %d: %+v", i, p)
			}
		}
		// The default format is a record per line; the last newline may be missing.
		r = cliRunIn(t, env, "x\ny", "produce", name, "-p", "0", "-z", "zstd", "--acks", "1").must(t, 0)
		mustContain(t, "produce", r.stdout, "Produced to partition 0 at offset 0", "Produced to partition 0 at offset 1")

		r = cliRun(t, env, "consume", name, "-o", "start:end").must(t, 0)
		recs := cliJSONLines[cliRecord](t, r)
		if len(recs) != 5 {
			t.Fatalf("consumed %d records, want 5:\n%s", len(recs), r.stdout)
		}
		var p1 []cliRecord
		for _, rec := range recs {
			if rec.Partition == 1 {
				p1 = append(p1, rec)
			}
		}
		if len(p1) != 3 || *p1[0].Key != "a" || *p1[0].Value != "1" || *p1[2].Key != "c" || p1[2].Offset != 2 ||
			len(p1[0].Headers) != 1 || p1[0].Headers[0].Key != "h" || p1[0].Headers[0].Value != "1" || p1[0].Timestamp != produced[0].Timestamp {
			t.Errorf("partition 1 records: %+v", p1)
		}
		for _, rec := range recs {
			if rec.Partition == 0 && (rec.Key != nil || len(rec.Headers) != 0) {
				t.Errorf("partition 0 record has a key or headers: %+v", rec)
			}
		}

		r = cliRun(t, env, "consume", name, "-p", "1", "-o", "-1:end", "-f", `%p %o %k %v %h\n`).must(t, 0)
		if r.stdout != "1 2 c 3 h=1\n" {
			t.Errorf("consume -f: %q", r.stdout)
		}
		r = cliRun(t, env, "consume", name, "-p", "1", "-o", "+1:end", "--output", "yaml").must(t, 0)
		mustContain(t, "consume --output yaml", r.stdout, "---\ntopic: cli-records\npartition: 1\noffset: 1\n", "offset: 2\n", "key: b\n")
		r = cliRun(t, env, "consume", name, "-p", "0", "-o", "start", "-n", "2", "-f", `%v\n`).must(t, 0)
		if r.stdout != "x\ny\n" {
			t.Errorf("consume -n 2: %q", r.stdout)
		}
		// Nothing between the end and the end: an immediate, empty success.
		r = cliRun(t, env, "consume", name, "-o", "end:end").must(t, 0)
		if r.stdout != "" {
			t.Errorf("consume -o end:end printed %q", r.stdout)
		}

		r = cliRunIn(t, env, "z\n", "produce", "cli-nope").must(t, 1)
		mustContain(t, "produce to a missing topic", r.stderr, `topic "cli-nope" does not exist`, "barge topic create")
		r = cliRun(t, env, "consume", "cli-nope").must(t, 1)
		mustContain(t, "consume of a missing topic", r.stderr, `topic "cli-nope" does not exist`)
		r = cliRunIn(t, env, "z\n", "produce", name, "-p", "7").must(t, 1)
		mustContain(t, "produce to a missing partition", r.stderr, "no partition 7")
	})

	t.Run("consume at a timestamp", func(t *testing.T) {
		const name = "cli-time"
		cliRun(t, env, "topic", "create", name, "-p", "1").must(t, 0)
		early := cliJSONLines[cliProduced](t, cliRunIn(t, env, "early1\nearly2\n", "produce", name, "-o", "json").must(t, 0))
		// Records of the second run carry a later timestamp.
		for time.Now().UnixMilli() <= early[len(early)-1].Timestamp {
			time.Sleep(time.Millisecond)
		}
		late := cliJSONLines[cliProduced](t, cliRunIn(t, env, "late1\nlate2\n", "produce", name, "-o", "json").must(t, 0))
		ts := late[0].Timestamp
		if ts <= early[1].Timestamp || late[0].Offset != 2 {
			t.Fatalf("timestamps: early %+v late %+v", early, late)
		}
		for _, at := range []string{
			"@" + strconv.FormatInt(ts, 10),                                        // unix milliseconds
			"@" + time.UnixMilli(ts).UTC().Format("2006-01-02T15:04:05.000Z07:00"), // RFC 3339
		} {
			r := cliRun(t, env, "consume", name, "-o", at, "-n", "1").must(t, 0)
			recs := cliJSONLines[cliRecord](t, r)
			if len(recs) != 1 || recs[0].Offset != 2 || *recs[0].Value != "late1" {
				t.Errorf("consume -o %s: %s", at, r.stdout)
			}
		}
		// Just after the early records' time: the first late record.
		r := cliRun(t, env, "consume", name, "-o", fmt.Sprintf("@%d:end", early[1].Timestamp+1), "-f", `%o\n`).must(t, 0)
		if r.stdout != "2\n3\n" {
			t.Errorf("consume -o @early+1:end: %q", r.stdout)
		}
		// An hour ago: everything; in the future: nothing.
		if r := cliRun(t, env, "consume", name, "-o", "@-1h:end", "-f", `%o\n`).must(t, 0); r.stdout != "0\n1\n2\n3\n" {
			t.Errorf("consume -o @-1h:end: %q", r.stdout)
		}
		if r := cliRun(t, env, "consume", name, "-o", fmt.Sprintf("@%d:end", time.Now().Add(time.Hour).UnixMilli())).must(t, 0); r.stdout != "" {
			t.Errorf("consume -o @future:end: %q", r.stdout)
		}
	})

	t.Run("consume stops cleanly on SIGINT", func(t *testing.T) {
		const name = "cli-follow"
		cliRun(t, env, "topic", "create", name, "-p", "1").must(t, 0)
		cmd, _, stderr := cliCommand(t, env, "", "consume", name, "-o", "end")
		var stdout cliBuffer
		cmd.Stdout = &stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Produce until the follower prints a record: then it is consuming.
		cliWait(t, 30*time.Second, "the follower to print a record", func() cliResult {
			return cliRunIn(t, env, "ping\n", "produce", name, "-q")
		}, func(cliResult) bool { return strings.Contains(stdout.String(), `"value":"ping"`) })
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			if code := exitCode(t, err); code != 0 {
				t.Errorf("consume exited %d after SIGINT; stderr:\n%s", code, stderr)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("consume did not stop within 10s of SIGINT")
		}
		cliJSONLines[cliRecord](t, cliResult{args: []string{"consume"}, stdout: stdout.String()})
	})

	t.Run("consume in a group commits what it printed", func(t *testing.T) {
		seen := map[string]bool{}
		for _, n := range []string{"2", "3"} {
			r := cliRun(t, env, "consume", "cli-records", "-g", "cli-group", "-o", "start", "-n", n, "-f", `%p/%o\n`).must(t, 0)
			for _, line := range strings.Fields(r.stdout) {
				if seen[line] {
					t.Errorf("record %s consumed twice by the group", line)
				}
				seen[line] = true
			}
		}
		if len(seen) != 5 {
			t.Errorf("the group consumed %d distinct records, want 5: %v", len(seen), seen)
		}
	})

	t.Run("dump-log", func(t *testing.T) {
		segs, _ := filepath.Glob(filepath.Join(b.DataDir, "cli-records-1", "*.log"))
		if len(segs) != 1 {
			t.Fatalf("segments of cli-records-1: %v", segs)
		}
		var dump struct {
			Segments []struct {
				File    string `json:"file"`
				Batches []struct {
					BaseOffset    int64  `json:"base_offset"`
					LastOffset    int64  `json:"last_offset"`
					Records       int32  `json:"records"`
					ProducerID    int64  `json:"producer_id"`
					ProducerEpoch int16  `json:"producer_epoch"`
					BaseSequence  int32  `json:"base_sequence"`
					MaxTimestamp  int64  `json:"max_timestamp"`
					CRCValid      bool   `json:"crc_valid"`
					Error         string `json:"error"`
				} `json:"batches"`
				Error string `json:"error"`
			} `json:"segments"`
		}
		cliRun(t, env, "dump-log", segs[0], "-o", "json").must(t, 0).json(t, &dump)
		if len(dump.Segments) != 1 || len(dump.Segments[0].Batches) == 0 || dump.Segments[0].Error != "" {
			t.Fatalf("dump-log: %+v", dump)
		}
		first := dump.Segments[0].Batches[0]
		if first.BaseOffset != 0 || !first.CRCValid || first.Error != "" || first.ProducerID < 0 || first.MaxTimestamp == 0 {
			t.Errorf("first batch: %+v", first)
		}
		r := cliRun(t, env, "dump-log", segs[0]).must(t, 0)
		mustContain(t, "dump-log", r.stdout, "BASE-OFFSET", "PRODUCER-ID", "CRC", " ok")

		// A flipped bit in the first batch's records fails its CRC.
		data, err := os.ReadFile(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x10
		bad := filepath.Join(t.TempDir(), "bad.log")
		if err := os.WriteFile(bad, append(data, 0, 0, 0), 0o644); err != nil {
			t.Fatal(err)
		}
		r = cliRun(t, env, "dump-log", bad, "-o", "json").must(t, 1)
		mustContain(t, "dump-log of a corrupt segment", r.stdout, `"crc_valid": false`, "too short for a batch header")
		r = cliRun(t, env, "dump-log", filepath.Join(t.TempDir(), "nope.log")).must(t, 1)
		mustContain(t, "dump-log of a missing file", r.stderr, "no such file")
	})

	t.Run("perf moves the request metrics", func(t *testing.T) {
		const records, size = 20000, 512
		before := cliScrape(t, b)
		var ps struct {
			Topic           string  `json:"topic"`
			Records         int64   `json:"records"`
			Failed          int64   `json:"failed"`
			Bytes           int64   `json:"bytes"`
			RecordsPerSec   float64 `json:"records_per_sec"`
			MiBPerSec       float64 `json:"mib_per_sec"`
			DurationSeconds float64 `json:"duration_seconds"`
			LatencyMs       struct {
				Mean float64 `json:"mean"`
				P50  float64 `json:"p50"`
				P95  float64 `json:"p95"`
				P99  float64 `json:"p99"`
				P999 float64 `json:"p99_9"`
				Max  float64 `json:"max"`
			} `json:"latency_ms"`
		}
		cliRun(t, env, "perf", "produce", "cli-perf", "--records", strconv.Itoa(records), "--record-size", strconv.Itoa(size),
			"--partitions", "2", "--producers", "2", "-o", "json").must(t, 0).json(t, &ps)
		l := ps.LatencyMs
		if ps.Records != records || ps.Failed != 0 || ps.Bytes != records*size || ps.RecordsPerSec <= 0 || ps.MiBPerSec <= 0 ||
			!(0 < l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
			t.Errorf("perf produce: %+v", ps)
		}
		var cs struct {
			Records       int64   `json:"records"`
			Bytes         int64   `json:"bytes"`
			RecordsPerSec float64 `json:"records_per_sec"`
			MiBPerSec     float64 `json:"mib_per_sec"`
		}
		cliRun(t, env, "perf", "consume", "cli-perf", "-o", "json").must(t, 0).json(t, &cs)
		if cs.Records != records || cs.Bytes != records*size || cs.RecordsPerSec <= 0 {
			t.Errorf("perf consume: %+v", cs)
		}
		after := cliScrape(t, b)
		for _, series := range []string{
			`barge_request_duration_seconds_count{api="Produce"}`,
			`barge_request_duration_seconds_count{api="Fetch"}`,
			`barge_requests_total{api="Produce"}`,
		} {
			if after[series] <= before[series] {
				t.Errorf("%s did not move: %v → %v", series, before[series], after[series])
			}
		}
		for _, series := range []string{"barge_request_bytes_total", "barge_response_bytes_total", "barge_produce_bytes_total"} {
			if got := after[series] - before[series]; got < records*size {
				t.Errorf("%s grew by %v, want at least %d", series, got, records*size)
			}
		}
		for series, want := range map[string]float64{
			"barge_active_controller": 1, "barge_offline_partitions": 0, "barge_under_replicated_partitions": 0,
			"barge_under_min_isr_partitions": 0, "barge_isr_shrinks_total": 0, "barge_isr_expands_total": 0,
		} {
			if got, ok := after[series]; !ok || got != want {
				t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
			}
		}
		for _, series := range []string{"barge_raft_term", "barge_raft_commit_index", "barge_raft_applied_index", "barge_leader_elections_total"} {
			if _, ok := after[series]; !ok {
				t.Errorf("/metrics lacks %s", series)
			}
		}

		// The table summary, and progress lines when asked for.
		r := cliRun(t, env, "perf", "produce", "cli-perf", "--records", "3000", "--rate", "2000", "--progress").must(t, 0)
		mustContain(t, "perf produce", r.stdout, "THROUGHPUT", "records/s", "MiB/s", "LATENCY", "p99.9")
		mustContain(t, "perf produce --progress", r.stderr, "records/s", "p99")
		if r.elapsed < 1400*time.Millisecond {
			t.Errorf("3000 records at --rate 2000 took %v", r.elapsed)
		}
	})

	t.Run("usage errors exit 2 with a hint", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			says string
		}{
			{[]string{"topic", "create"}, "requires at least 1 arg"},
			{[]string{"topic", "list", "--bogus"}, "unknown flag: --bogus"},
			{[]string{"topic", "lst"}, `did you mean "list"?`},
			{[]string{"cluster", "info", "-o", "xml"}, "want table, json or yaml"},
			{[]string{"consume", "cli-records", "-o", "bogus"}, `"bogus"`},
			{[]string{"consume", "cli-records", "-g", "g", "-p", "0"}, "-p and -g do not mix"},
			{[]string{"produce", "cli-records", "-f", "%k%v"}, "need text between them"},
			{[]string{"produce", "cli-records", "--acks", "2"}, "--acks"},
			{[]string{"perf", "produce", "t", "--records", "0"}, "--records must be positive"},
			{[]string{"topic", "trim", "cli-records"}, "--offset is required"},
			{[]string{"topic", "create", "t", "-c", "novalue"}, "want key=value"},
			{[]string{"topic", "alter-config", "t"}, "nothing to change"},
			{[]string{"cluster", "health", "--interval", "0s"}, "--interval"},
		} {
			r := cliRun(t, env, tc.args...).must(t, 2)
			mustContain(t, strings.Join(tc.args, " "), r.stderr, tc.says, "--help' for usage")
		}
	})

	t.Run("an unreachable cluster exits 3 within seconds", func(t *testing.T) {
		dead := cliEnv{
			brokers: []string{fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))},
			admin:   []string{fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))},
		}
		for _, args := range [][]string{
			{"cluster", "info"}, {"cluster", "health"}, {"cluster", "quorum"}, {"topic", "list"},
			{"topic", "create", "x"}, {"produce", "x"}, {"consume", "x"}, {"perf", "produce", "x"}, {"perf", "consume", "x"},
			{"cluster", "health", "--exit-when-healthy", "--timeout", "1s"},
		} {
			r := cliRun(t, dead, args...).must(t, 3)
			mustContain(t, strings.Join(args, " "), r.stderr, "127.0.0.1:", "connection refused")
			if r.elapsed > 5*time.Second {
				t.Errorf("%s took %v to give up", strings.Join(args, " "), r.elapsed)
			}
		}
		// Pointing --brokers at the HTTP port is not a Kafka listener.
		r := cliRun(t, cliEnv{brokers: []string{b.HTTPAddr}, admin: env.admin}, "topic", "list").must(t, 3)
		mustContain(t, "topic list against the HTTP port", r.stderr, "Kafka")
	})
}

type cliDescribedTopic struct {
	Topic             string `json:"topic"`
	TopicID           string `json:"topic_id"`
	ReplicationFactor int    `json:"replication_factor"`
	Error             string `json:"error"`
	Partitions        []struct {
		Partition      int32   `json:"partition"`
		Leader         int32   `json:"leader"`
		LeaderEpoch    int32   `json:"leader_epoch"`
		Replicas       []int32 `json:"replicas"`
		ISR            []int32 `json:"isr"`
		LogStartOffset int64   `json:"log_start_offset"`
		HighWatermark  int64   `json:"high_watermark"`
		Error          string  `json:"error"`
	} `json:"partitions"`
	Configs []struct {
		Name   string `json:"name"`
		Value  string `json:"value"`
		Source string `json:"source"`
	} `json:"configs"`
}

// cliDescribe runs topic describe -o json for one topic.
func cliDescribe(t *testing.T, env cliEnv, name string) cliDescribedTopic {
	t.Helper()
	var d cliDescribed
	cliRun(t, env, "topic", "describe", name, "-o", "json").must(t, 0).json(t, &d)
	if len(d.Topics) != 1 || d.Topics[0].Topic != name || d.Topics[0].Error != "" {
		t.Fatalf("describe %s: %+v", name, d)
	}
	return d.Topics[0]
}

// cliCheckConfig checks one config of a topic and its source.
func cliCheckConfig(t *testing.T, env cliEnv, topic, key, value, source string) {
	t.Helper()
	for _, c := range cliDescribe(t, env, topic).Configs {
		if c.Name == key {
			if c.Value != value || c.Source != source {
				t.Errorf("config %s = %q from %s, want %q from %s", key, c.Value, c.Source, value, source)
			}
			return
		}
	}
	t.Errorf("config %s not described", key)
}

// cliScrape reads every sample of /metrics by series name.
func cliScrape(t *testing.T, b *harness.Broker) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(cliMetricsPage(t, b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestCLIAdvertisedAddressUnreachable: a broker that answers at its seed
// address but advertises one the client cannot reach (a name that only
// resolves inside a container network, say) is reported as that, exit 3.
func TestCLIAdvertisedAddressUnreachable(t *testing.T) {
	b := harness.StartBroker(t, harness.Options{ExtraArgs: []string{"--advertise", "barge-advertised.invalid:9092"}})
	r := cliRun(t, cliEnvOf(b), "topic", "list").must(t, 3)
	mustContain(t, "topic list", r.stderr, b.KafkaAddr+" answered", "barge-advertised.invalid:9092", "cannot resolve", "--advertise")
}

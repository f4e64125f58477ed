package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// compatKcat: kcat (librdkafka) as a producer (-P, keys split at ':',
// snappy, librdkafka's default partitioner on keys, acks=all, idempotence on
// so that produce order is guaranteed even across retries), as a consumer
// (-C from the beginning to the end of every partition, -e) and for
// metadata (-L -J).
func compatKcat(t *testing.T, seeds []string, topic string) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (`make test` installs the Debian package kcat)")
	}
	ctx := harness.Context(t, compatScenarioTimeout)
	brokers := strings.Join(seeds, ",")
	compatKcatMetadata(t, ctx, kcat, brokers, topic, len(seeds))

	var in bytes.Buffer
	for seq := range compatRecords {
		in.WriteString(compatKey(seq))
		in.WriteByte(':')
		in.WriteString(compatValue("kcat", seq))
		in.WriteByte('\n')
	}
	start := time.Now()
	compatRun(t, ctx, &in, kcat, "-b", brokers, "-P", "-t", topic, "-K:", "-z", "snappy",
		"-X", "enable.idempotence=true")
	t.Logf("kcat: produced %d records in %v", compatRecords, time.Since(start).Round(time.Millisecond))
	ends := compatEndOffsets(t, ctx, seeds, topic)

	start = time.Now()
	out := compatRun(t, ctx, nil, kcat, "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", "%p %o %k %s\n")
	var consumed []compatRecord
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			t.Fatalf("kcat -C printed %q", sc.Text())
		}
		p, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("kcat -C printed %q", sc.Text())
		}
		consumed = append(consumed, compatRecord{int32(p), o, f[2], f[3]})
	}
	t.Logf("kcat: read %d records in %v", len(consumed), time.Since(start).Round(time.Millisecond))
	compatCheck(t, consumed, nil, ends)
}

// compatKcatMetadata checks `kcat -L -J`: all brokers, and the topic with
// its compatPartitions partitions, each led by a listed broker.
func compatKcatMetadata(t *testing.T, ctx context.Context, kcat, brokers, topic string, nBrokers int) {
	out := compatRun(t, ctx, nil, kcat, "-b", brokers, "-L", "-J", "-t", topic)
	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Err        any    `json:"error"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
				Err       any   `json:"error"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L -J: %v\n%s", err, out)
	}
	var ids []int32
	for _, b := range md.Brokers {
		ids = append(ids, b.ID)
	}
	if len(ids) != nBrokers {
		t.Errorf("kcat -L lists brokers %v, want %d", md.Brokers, nBrokers)
	}
	if len(md.Topics) != 1 || md.Topics[0].Topic != topic || md.Topics[0].Err != nil {
		t.Fatalf("kcat -L -t %s lists topics %+v", topic, md.Topics)
	}
	parts := md.Topics[0].Partitions
	if len(parts) != compatPartitions {
		t.Fatalf("kcat -L lists %d partitions of %s, want %d: %+v", len(parts), topic, compatPartitions, parts)
	}
	leaders := map[int32]int32{}
	for _, p := range parts {
		if p.Err != nil || !slices.Contains(ids, p.Leader) {
			t.Errorf("kcat -L: partition %d has leader %d (brokers %v), error %v", p.Partition, p.Leader, ids, p.Err)
		}
		leaders[p.Partition] = p.Leader
	}
	if nBrokers > 1 {
		compatCheckLeaderSpread(t, leaders, nBrokers)
	}
	t.Logf("kcat -L: %d brokers, partition leaders %v", len(ids), leaders)
}

// compatRun runs a command with stdin and returns its standard output; it
// fails the test with the standard error if the command fails.
func compatRun(t *testing.T, ctx context.Context, stdin *bytes.Buffer, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", name, strings.Join(args, " "), err, compatTail(stderr.String(), 40))
	}
	if stderr.Len() > 0 {
		t.Logf("%s %s: stderr:\n%s", name, strings.Join(args, " "), compatTail(stderr.String(), 40))
	}
	return stdout.Bytes()
}

// compatTail returns the last n lines of s.
func compatTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

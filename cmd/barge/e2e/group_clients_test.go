package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
)

const (
	groupClientPartitions = 3
	groupClientRecords    = 300
)

// groupPython is the interpreter of Debian's python3-kafka; the python3
// first on PATH may lack the module.
const groupPython = "/usr/bin/python3"

// TestGroupKcatResumesFromCommits: `kcat -G` consumes half a topic as a
// group member and exits (committing on close); started again, it resumes
// from the committed offsets: together the two runs read every record once.
func TestGroupKcatResumesFromCommits(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (`make test` installs the Debian package kcat)")
	}
	groupClientScenario(t, "kcat", func(ctx context.Context, bootstrap, topic, group string, n int) []byte {
		return groupRunCommand(ctx, t, kcat, "-b", bootstrap, "-G", group, topic, "-c", strconv.Itoa(n),
			"-f", "R %p %o\n", "-q", "-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=100")
	})
}

// TestGroupKafkaPythonResumesFromCommits is the same with kafka-python's
// KafkaConsumer(group_id=...), committing explicitly.
func TestGroupKafkaPythonResumesFromCommits(t *testing.T) {
	if out, err := exec.Command(groupPython, "-c", "import kafka").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import kafka (`make test` installs the Debian package python3-kafka): %v\n%s", groupPython, err, out)
	}
	groupClientScenario(t, "python", func(ctx context.Context, bootstrap, topic, group string, n int) []byte {
		return groupRunCommand(ctx, t, groupPython, "testdata/group_kafka_python.py", "consume", bootstrap, topic, group, strconv.Itoa(n))
	})
}

func groupClientScenario(t *testing.T, client string, consume func(ctx context.Context, bootstrap, topic, group string, n int) []byte) {
	b := groupStartBroker(t)
	seeds := []string{b.KafkaAddr}
	ctx := harness.Context(t, 3*time.Minute)
	topic, group := "group-client-"+client, "group-client-"+client
	adm := groupAdmin(t, seeds)
	if _, err := adm.CreateTopic(ctx, groupClientPartitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	groupProduce(ctx, t, seeds, topic, groupClientRecords, ends)

	seen := map[string]int{}
	half := groupClientRecords / 2
	for run := 1; run <= 2; run++ {
		start := time.Now()
		out := consume(ctx, b.KafkaAddr, topic, group, half)
		got := groupParseRecords(t, out)
		if len(got) != half {
			t.Fatalf("%s run %d: read %d records, want %d:\n%s", client, run, len(got), half, out)
		}
		for _, r := range got {
			seen[r]++
		}
		t.Logf("%s run %d: %d records as a group member in %v", client, run, len(got), time.Since(start).Round(time.Millisecond))
		if run == 1 {
			offs, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			total := int64(0)
			offs.Each(func(o kadm.OffsetResponse) { total += o.At })
			if total != int64(half) {
				t.Fatalf("%s committed %d records after the first run, want %d: %s", client, total, half, groupFormatOffsets(offs, topic))
			}
		}
	}
	for p, end := range ends {
		for o := int64(0); o < end; o++ {
			if n := seen[fmt.Sprintf("%d/%d", p, o)]; n != 1 {
				t.Errorf("partition %d offset %d read %d times over the two runs", p, o, n)
			}
		}
	}
	groupWaitCommitted(ctx, t, adm, group, topic, ends)
}

// groupRunCommand runs a client program and returns its stdout.
func groupRunCommand(ctx context.Context, t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// groupParseRecords reads "R <partition> <offset>" lines into
// "partition/offset" keys.
func groupParseRecords(t *testing.T, out []byte) []string {
	t.Helper()
	var recs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || f[0] != "R" {
			t.Fatalf("client printed %q", sc.Text())
		}
		recs = append(recs, f[1]+"/"+f[2])
	}
	return recs
}

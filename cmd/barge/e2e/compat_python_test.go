package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// compatPython is the interpreter of Debian's python3-kafka. The python3
// first on PATH may be another installation without the module.
const compatPython = "/usr/bin/python3"

const compatPythonScript = "testdata/compat_kafka_python.py"

// compatKafkaPython: kafka-python (Debian's python3-kafka, 2.0.2) producing
// with acks=all, gzip and its default murmur2 partitioner, then a consumer
// without a group assigned to every partition, from the beginning. The
// script is testdata/compat_kafka_python.py; it reports each record's
// (partition, offset) as the producer was told and every record read.
func compatKafkaPython(t *testing.T, seeds []string, topic string) {
	if out, err := exec.Command(compatPython, "-c", "import kafka").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import kafka (`make test` installs the Debian package python3-kafka): %v\n%s", compatPython, err, out)
	}
	ctx := harness.Context(t, compatScenarioTimeout)
	bootstrap := strings.Join(seeds, ",")

	start := time.Now()
	out := compatRun(t, ctx, nil, compatPython, compatPythonScript, "produce", bootstrap, topic,
		strconv.Itoa(compatRecords), strconv.Itoa(compatKeys), strconv.Itoa(compatValueLen))
	t.Logf("kafka-python: produced %d records in %v", compatRecords, time.Since(start).Round(time.Millisecond))
	acks := make([]compatAck, compatRecords)
	got := 0
	compatPythonLines(t, out, "A", 4, func(f []string) {
		seq, err1 := strconv.Atoi(f[1])
		p, err2 := strconv.ParseInt(f[2], 10, 32)
		o, err3 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || seq < 0 || seq >= compatRecords {
			t.Fatalf("kafka-python produce printed %q", strings.Join(f, " "))
		}
		acks[seq] = compatAck{int32(p), o}
		got++
	})
	if got != compatRecords {
		t.Fatalf("kafka-python: %d of %d records acknowledged", got, compatRecords)
	}

	ends := compatEndOffsets(t, ctx, seeds, topic)
	var parts []string
	for p, end := range ends {
		parts = append(parts, fmt.Sprintf("%d:%d", p, end))
	}
	sort.Strings(parts)
	start = time.Now()
	out = compatRun(t, ctx, nil, compatPython, compatPythonScript, "consume", bootstrap, topic, strings.Join(parts, ","))
	var consumed []compatRecord
	compatPythonLines(t, out, "R", 5, func(f []string) {
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		o, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("kafka-python consume printed %q", strings.Join(f, " "))
		}
		consumed = append(consumed, compatRecord{int32(p), o, f[3], f[4]})
	})
	t.Logf("kafka-python: read %d records in %v", len(consumed), time.Since(start).Round(time.Millisecond))
	compatCheck(t, consumed, acks, ends)
}

// compatPythonLines calls fn with the fields of each line of out that
// starts with tag and has n fields; other lines fail the test.
func compatPythonLines(t *testing.T, out []byte, tag string, n int, fn func([]string)) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) != n || f[0] != tag {
			t.Fatalf("unexpected line from the kafka-python script: %q", sc.Text())
		}
		fn(f)
	}
}

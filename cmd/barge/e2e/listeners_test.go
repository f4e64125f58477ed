package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReplicationOverInterBrokerListener runs three brokers with an
// INTERNAL listener (127.0.0.1:<port>, the inter-broker one) and an
// EXTERNAL one (bound on 127.0.0.1, advertised as localhost:<port>), the
// container setup with the network names replaced by loopback ports. kcat
// bootstrapped through one broker's EXTERNAL address must be told every
// broker's EXTERNAL address and nothing else, produce and read back through
// them; the followers must replicate every record over INTERNAL, with no
// broker connected to another's EXTERNAL port.
func TestReplicationOverInterBrokerListener(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (`make test` installs the Debian package kcat)")
	}
	brokers := harness.StartCluster(t, 3, harness.Options{NamedListeners: true, ExtraArgs: replicationArgs})
	ctx := harness.Context(t, 2*time.Minute)
	external := func(b *harness.Broker) string { return "localhost:" + strconv.Itoa(b.ExternalPort) }

	// kcat -L through each listener lists that listener's addresses.
	wantExt, wantInt := map[int32]string{}, map[int32]string{}
	for _, b := range brokers {
		wantExt[int32(b.ID)], wantInt[int32(b.ID)] = external(b), b.KafkaAddr
	}
	listed := func(bootstrap string) map[int32]string {
		out := compatRun(t, ctx, nil, kcat, "-b", bootstrap, "-L", "-J")
		var md struct {
			Brokers []struct {
				ID   int32  `json:"id"`
				Name string `json:"name"`
			} `json:"brokers"`
		}
		if err := json.Unmarshal(out, &md); err != nil {
			t.Fatalf("kcat -L -J: %v\n%s", err, out)
		}
		got := map[int32]string{}
		for _, b := range md.Brokers {
			got[b.ID] = b.Name
		}
		return got
	}
	if got := listed(external(brokers[0])); !mapsEqual(got, wantExt) {
		t.Fatalf("kcat -b %s -L lists brokers %v, want their EXTERNAL addresses %v", external(brokers[0]), got, wantExt)
	}
	if got := listed(brokers[1].KafkaAddr); !mapsEqual(got, wantInt) {
		t.Fatalf("kcat -b %s -L lists brokers %v, want their INTERNAL addresses %v", brokers[1].KafkaAddr, got, wantInt)
	}

	// The other answers that name brokers follow the listener too.
	for _, tc := range []struct {
		listener, bootstrap string
		want                map[int32]string
	}{{"EXTERNAL", external(brokers[1]), wantExt}, {"INTERNAL", brokers[2].KafkaAddr, wantInt}} {
		got := listenerAnswers(t, ctx, tc.bootstrap)
		for what, addrs := range got {
			for id, addr := range addrs {
				if tc.want[id] != addr {
					t.Errorf("through %s (%s): %s names broker %d at %s, want %s", tc.listener, tc.bootstrap, what, id, addr, tc.want[id])
				}
			}
		}
		if len(got["DescribeCluster"]) != len(brokers) || len(got["FindCoordinator"]) != 1 {
			t.Errorf("through %s: answers %v, want all %d brokers and one coordinator", tc.listener, got, len(brokers))
		}
	}

	// Produce through EXTERNAL (acks=all, the topic auto-created with
	// replication factor 3 over three partitions) and read back through
	// another broker's EXTERNAL address.
	const topic, records, partitions = "listeners", 300, 3
	cliRun(t, cliEnvOf(brokers...), "topic", "create", topic, "-p", strconv.Itoa(partitions), "-r", "3").must(t, 0)
	var in bytes.Buffer
	for i := range records {
		fmt.Fprintf(&in, "k%d:v%d\n", i, i)
	}
	compatRun(t, ctx, &in, kcat, "-b", external(brokers[0]), "-P", "-t", topic, "-K:", "-X", "acks=all")
	out := compatRun(t, ctx, nil, kcat, "-b", external(brokers[2]), "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %k %s\n")
	var read []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		read = append(read, strings.Fields(sc.Text())[3])
	}
	if len(read) != records {
		t.Fatalf("read %d records back through %s, want %d:\n%s", len(read), external(brokers[2]), records, compatTail(string(out), 20))
	}

	// Every broker holds every record: each partition's log end offset,
	// summed, is the count produced, on all three.
	for _, b := range brokers {
		testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("broker %d to hold all %d records", b.ID, records), func() (bool, string) {
			sum := 0.0
			page := cliMetricsPage(t, b)
			for line := range strings.SplitSeq(page, "\n") {
				if rest, ok := strings.CutPrefix(line, `barge_log_end_offset{partition=`); ok && strings.Contains(rest, `topic="`+topic+`"`) {
					v, _ := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
					sum += v
				}
			}
			return sum == records, fmt.Sprintf("log end offsets sum to %v", sum)
		})
	}

	// The followers' fetchers are connected to their leaders' INTERNAL
	// ports; once kcat has gone, nothing is connected to an EXTERNAL one.
	internalPorts, externalPorts := map[int]bool{}, map[int]bool{}
	for _, b := range brokers {
		_, p, _ := strings.Cut(b.KafkaAddr, ":")
		port, _ := strconv.Atoi(p)
		internalPorts[port], externalPorts[b.ExternalPort] = true, true
	}
	testutil.WaitFor(t, 30*time.Second, "follower connections on INTERNAL only", func() (bool, string) {
		conns, err := establishedLoopbackPorts()
		if err != nil {
			t.Fatal(err)
		}
		toInternal, toExternal := 0, 0
		for _, port := range conns {
			toInternal += boolInt(internalPorts[port])
			toExternal += boolInt(externalPorts[port])
		}
		return toInternal >= 2 && toExternal == 0,
			fmt.Sprintf("%d connections to INTERNAL ports, %d to EXTERNAL ports", toInternal, toExternal)
	})
}

// listenerAnswers asks, through a client bootstrapped at bootstrap, the
// DescribeCluster and FindCoordinator questions, and returns the broker
// addresses each answer names, by broker id.
func listenerAnswers(t *testing.T, ctx context.Context, bootstrap string) map[string]map[int32]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string]map[int32]string{"DescribeCluster": {}, "FindCoordinator": {}}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil || dc.ErrorCode != 0 {
		t.Fatalf("DescribeCluster through %s: %v (error code %d)", bootstrap, err, dc.ErrorCode)
	}
	for _, b := range dc.Brokers {
		out["DescribeCluster"][b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "listeners-group"
	// The first answer may be COORDINATOR_NOT_AVAILABLE while
	// __consumer_offsets is created; the bounded wait asks again.
	testutil.WaitFor(t, 30*time.Second, "a group coordinator through "+bootstrap, func() (bool, string) {
		resp, err := fc.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 {
			return false, fmt.Sprintf("%v (error code %d)", err, resp.ErrorCode)
		}
		out["FindCoordinator"][resp.NodeID] = net.JoinHostPort(resp.Host, strconv.Itoa(int(resp.Port)))
		return true, ""
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func mapsEqual(a, b map[int32]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// establishedLoopbackPorts lists the local port of every established IPv4
// TCP socket on this machine: for a connection between two local
// processes, the server side shows the listener's port there.
func establishedLoopbackPorts() ([]int, error) {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, fmt.Errorf("read /proc/net/tcp: %w", err)
	}
	var ports []int
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 4 || f[3] != "01" { // header; 01 is TCP_ESTABLISHED
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err == nil {
			ports = append(ports, int(port))
		}
	}
	slices.Sort(ports)
	return ports, nil
}

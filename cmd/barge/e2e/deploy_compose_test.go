package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// deployComposeFile is the compose file under test, from this package's
// directory.
var deployComposeFile = filepath.Join("..", "..", "..", "deploy", "compose", "docker-compose.yml")

// deployHostPorts are the ports deploy/compose publishes on 127.0.0.1:
// each broker's EXTERNAL Kafka listener, then each one's HTTP API.
var deployHostPorts = []int{19092, 19093, 19094, 19644, 19645, 19646}

// TestDeployCompose runs deploy/compose/docker-compose.yml as a user
// would, from an image built as `make image` builds it: three containers,
// reached from the host only through their published EXTERNAL listeners
// and HTTP ports. The cluster must turn healthy; an RF=3 topic written
// through broker 1 reads back through broker 2; with broker 2 killed
// `barge cluster health` exits 4, and once it is started again the cluster
// is healthy and every record is still there. Everything the test creates
// (containers, network, volumes, image) is removed, also on failure, and
// that is checked.
func TestDeployCompose(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not installed: the compose deployment is not tested")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("the Docker daemon does not answer (docker info: %v: %s): the compose deployment is not tested", err, bytes.TrimSpace(out))
	}
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed (`make test` installs the Debian package kcat)")
	}
	compose := deployComposeCommand(t)
	for _, port := range deployHostPorts {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("host port 127.0.0.1:%d, which deploy/compose publishes, is taken (%v): stop what holds it (another compose project? `docker ps`) and run again", port, err)
		}
		ln.Close()
	}
	ctx := harness.Context(t, 8*time.Minute)

	suffix := make([]byte, 4)
	rand.Read(suffix)
	project := "barge-e2e-" + hex.EncodeToString(suffix)
	image := "barge:" + project
	deployBuildImage(t, ctx, image)

	env := append(os.Environ(), "BARGE_IMAGE="+image)
	run := func(ctx context.Context, args ...string) (string, error) {
		all := append(append(slices.Clone(compose[1:]), "-f", deployComposeFile, "-p", project), args...)
		cmd := exec.CommandContext(ctx, compose[0], all...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("%s %s: %w\n%s", compose[0], strings.Join(all, " "), err, out)
		}
		return string(out), nil
	}
	t.Cleanup(func() {
		// A fresh context: the test's may be what ran out.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if t.Failed() {
			if out, err := run(ctx, "logs", "--no-color", "--tail", "60"); err == nil {
				t.Logf("--- docker-compose logs ---\n%s", out)
			}
		}
		if _, err := run(ctx, "down", "-v", "--remove-orphans", "-t", "40"); err != nil {
			t.Error(err)
		}
		label := "label=com.docker.compose.project=" + project
		for _, kind := range []string{"container", "network", "volume"} {
			args := []string{kind, "ls", "-q", "--filter", label}
			if kind == "container" {
				args = []string{"ps", "-a", "-q", "--filter", label}
			}
			out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("after down -v, docker %s: %v: %s left behind", strings.Join(args, " "), err, bytes.TrimSpace(out))
			}
		}
		if out, err := exec.CommandContext(ctx, "docker", "rmi", image).CombinedOutput(); err != nil {
			t.Errorf("docker rmi %s: %v: %s", image, err, out)
		}
	})

	if _, err := run(ctx, "up", "-d"); err != nil {
		t.Fatal(err)
	}
	admin := "127.0.0.1:19644"
	health := func(args ...string) (int, string) {
		return deployBarge(t, ctx, append([]string{"cluster", "health", "--brokers", "127.0.0.1:19092", "--admin", admin}, args...)...)
	}
	start := time.Now()
	if code, out := health("--exit-when-healthy", "--timeout", "2m"); code != 0 {
		t.Fatalf("cluster health from the host: exit %d, want 0:\n%s", code, out)
	}
	t.Logf("project %s: healthy %v after up -d", project, time.Since(start).Round(time.Millisecond))

	// An RF=3 topic, written through broker 1's EXTERNAL listener and read
	// back through broker 2's: every hop uses an advertised localhost
	// address, the replication the INTERNAL ones.
	const topic, records = "deploy", 500
	if code, out := deployBarge(t, ctx, "topic", "create", topic, "-p", "3", "-r", "3", "--brokers", "127.0.0.1:19092", "--admin", admin); code != 0 {
		t.Fatalf("topic create: exit %d:\n%s", code, out)
	}
	var in bytes.Buffer
	for i := range records {
		fmt.Fprintf(&in, "k%d:v%d\n", i, i)
	}
	want := strings.Fields(in.String()) // before kcat reads in away
	slices.Sort(want)
	compatRun(t, ctx, &in, kcat, "-b", "127.0.0.1:19092", "-P", "-t", topic, "-K:", "-X", "acks=all")
	readAll := func(bootstrap string) []string {
		out := compatRun(t, ctx, nil, kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k:%s\n")
		got := strings.Fields(string(out))
		slices.Sort(got)
		return got
	}
	if got := readAll("127.0.0.1:19093"); !slices.Equal(got, want) {
		t.Fatalf("read %d records back through 127.0.0.1:19093, want the %d produced", len(got), len(want))
	}

	// Broker 2 killed: the verdict turns unhealthy (exit 4) once gossip
	// declares it dead.
	if _, err := run(ctx, "kill", "barge2"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	testutil.WaitFor(t, 90*time.Second, "cluster health to exit 4 with barge2 killed", func() (bool, string) {
		code, out := health()
		return code == 4, fmt.Sprintf("exit %d: %s", code, out)
	})
	t.Logf("barge2 killed: unhealthy (exit 4) after %v", time.Since(start).Round(time.Millisecond))
	// Started again: healthy, and nothing lost.
	if _, err := run(ctx, "start", "barge2"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if code, out := health("--exit-when-healthy", "--timeout", "3m"); code != 0 {
		t.Fatalf("cluster health after barge2 restarted: exit %d, want 0:\n%s", code, out)
	}
	t.Logf("barge2 started again: healthy after %v", time.Since(start).Round(time.Millisecond))
	if got := readAll("127.0.0.1:19093"); !slices.Equal(got, want) {
		t.Fatalf("after the restart, read %d records back through 127.0.0.1:19093, want the %d produced", len(got), len(want))
	}

	restart := fmt.Sprintf("%s -f %s -p %s restart -t 60 {}", strings.Join(compose, " "), deployAbs(t, deployComposeFile), project)
	deployRollingRestartUnderLoad(t, ctx, env, restart)
}

func deployAbs(t *testing.T, path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// deployRollingRestartUnderLoad runs deploy/scripts/rolling-restart.sh on
// the compose cluster (restart being how one container is restarted, {}
// its service name) while an idempotent acks=all producer writes through
// the published EXTERNAL listeners and a consumer reads: every
// acknowledged record must be read back exactly once at its offset, and
// the test prints the longest time any partition went without an
// acknowledgement.
func deployRollingRestartUnderLoad(t *testing.T, ctx context.Context, env []string, restart string) {
	const topic, partitions = "rolling", 3
	seeds := []string{"127.0.0.1:19092", "127.0.0.1:19093", "127.0.0.1:19094"}
	admins := "127.0.0.1:19644,127.0.0.1:19645,127.0.0.1:19646"
	adminCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	if _, err := adm.CreateTopic(ctx, partitions, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitFullISR(ctx, t, adm, topic)
	ledger := newReplLedger(partitions)
	producer, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.RetryTimeout(2*time.Minute), kgo.MaxBufferedRecords(2000), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	consumer, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var produceErrs sync.Map
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; runCtx.Err() == nil; i++ {
			producer.Produce(runCtx, &kgo.Record{Value: []byte(fmt.Sprintf("v-%09d", i))}, func(r *kgo.Record, err error) {
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						produceErrs.Store(err.Error(), true)
					}
					return
				}
				ledger.ack(r)
			})
		}
	}()
	go func() {
		defer wg.Done()
		for runCtx.Err() == nil {
			consumer.PollFetches(runCtx).EachRecord(ledger.consume)
		}
	}()
	since := time.Now()
	testutil.Wait(t, time.Minute, "acknowledgements on every partition", func() bool { return ledger.ackedAllSince(since) })
	ledger.takePhaseGap()

	start := time.Now()
	cmd := exec.CommandContext(ctx, rollingRestartScript(t), "-c", restart, "-t", "3m", "barge1", "barge2", "barge3",
		"--", "--brokers", strings.Join(seeds, ","), "--admin", admins)
	cmd.Env = append(slices.Clone(env), "BARGE_BIN="+harness.Binary(t))
	out, err := cmd.CombinedOutput()
	t.Logf("rolling-restart.sh on the compose cluster (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("rolling-restart.sh: %v", err)
	}
	since = time.Now()
	testutil.Wait(t, time.Minute, "acknowledgements on every partition after the rolling restart", func() bool { return ledger.ackedAllSince(since) })
	gap, from := ledger.takePhaseGap()
	stop()
	wg.Wait()
	flushCtx, cancel := context.WithTimeout(ctx, time.Minute)
	producer.Flush(flushCtx)
	cancel()
	produceErrs.Range(func(k, _ any) bool {
		t.Logf("produce error (the record counts as not acknowledged): %v", k)
		return true
	})
	deadline := time.Now().Add(time.Minute)
	for ledger.missing() > 0 && time.Now().Before(deadline) {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		consumer.PollFetches(pollCtx).EachRecord(ledger.consume)
		cancel()
	}
	ledger.check(t)
	t.Logf("rolling restart of the compose cluster: %d records acknowledged and read back once each; longest time any partition went without acknowledgements %v (from %v after the script started)",
		ackedCount(ledger), gap.Round(time.Millisecond), from.Sub(start).Round(time.Millisecond))
}

// deployComposeCommand is docker-compose (1.x) if installed, else the
// compose plugin of docker.
func deployComposeCommand(t *testing.T) []string {
	t.Helper()
	if path, err := exec.LookPath("docker-compose"); err == nil {
		return []string{path}
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	t.Fatal("Docker is installed but neither docker-compose nor `docker compose` is (Debian: apt install docker-compose)")
	return nil
}

// deployBuildImage builds image as `make image` does: the static binary,
// deploy/docker/Dockerfile and an empty data directory in a build context
// of their own.
func deployBuildImage(t *testing.T, ctx context.Context, image string) {
	t.Helper()
	dir := t.TempDir()
	bin, err := os.ReadFile(harness.Binary(t)) // built with CGO_ENABLED=0
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(
		os.WriteFile(filepath.Join(dir, "barge"), bin, 0o755),
		os.WriteFile(filepath.Join(dir, "Dockerfile"), dockerfile, 0o644),
		os.Mkdir(filepath.Join(dir, "data"), 0o755),
	); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", image, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("docker build -t %s: %v\n%s", image, err, out)
	}
}

// deployBarge runs the barge binary on the host and returns its exit code
// and combined output.
func deployBarge(t *testing.T, ctx context.Context, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, harness.Binary(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BARGE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("barge %s: %v", strings.Join(args, " "), err)
	return -1, ""
}

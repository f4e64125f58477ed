package harness

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// compatStartAttempts bounds the starts of CompatStartBroker and
// CompatStartCluster.
const compatStartAttempts = 3

// CompatStartBroker is StartBroker, except that a broker that exits at
// start because one of its ports was taken is started again on new ports.
// FreePort's ports are only free "a moment ago": another process on the
// machine (or an outgoing connection's ephemeral port) can take one before
// the broker binds it.
func CompatStartBroker(t testing.TB, opts Options) *Broker {
	t.Helper()
	return compatStart(t, 1, opts, false)[0]
}

// CompatStartCluster is StartCluster with the retry of CompatStartBroker:
// n brokers forming one cluster with --bootstrap-expect n, each ready and
// seeing all n.
func CompatStartCluster(t testing.TB, n int, opts Options) []*Broker {
	t.Helper()
	return compatStart(t, n, opts, true)
}

func compatStart(t testing.TB, n int, opts Options, cluster bool) []*Broker {
	t.Helper()
	for attempt := 1; ; attempt++ {
		brokers := make([]*Broker, n)
		var seeds []string
		for i := range brokers {
			brokers[i] = newBroker(t, i, opts.dataDir(t, i), opts.ExtraArgs)
			if opts.NamedListeners {
				brokers[i].ExternalPort = FreePort(t)
			}
			seeds = append(seeds, brokers[i].Gossip)
		}
		for _, b := range brokers {
			if cluster {
				b.Args = append(b.Args, "--join", strings.Join(seeds, ","), "--bootstrap-expect", strconv.Itoa(n))
			}
			b.Start()
		}
		err := compatWaitListening(brokers, 60*time.Second)
		if err == nil {
			if cluster {
				compatWaitClusterView(brokers)
			}
			return brokers
		}
		for _, b := range brokers {
			b.Stop()
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == compatStartAttempts {
			t.Fatalf("start %d broker(s), attempt %d: %v", n, attempt, err)
		}
		t.Logf("start %d broker(s), attempt %d: %v; starting again on new ports", n, attempt, err)
	}
}

// compatWaitListening waits until every broker answers /readyz (all its
// listeners are bound by then) or one exits, which it reports with the end
// of its log.
func compatWaitListening(brokers []*Broker, d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, b := range brokers {
		for {
			// Any broker of a cluster exiting (a port taken) keeps the
			// others from becoming ready: report it, not their wait.
			for _, other := range brokers {
				if !other.Running() {
					return fmt.Errorf("broker %d exited (%v): %s", other.ID, other.exitErr, Tail([]byte(other.Log()), 5))
				}
			}
			if resp, err := http.Get("http://" + b.HTTPAddr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("broker %d not ready after %v", b.ID, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// compatWaitClusterView waits until each broker sees all of them live and a
// controller, as StartCluster does.
func compatWaitClusterView(brokers []*Broker) {
	n := len(brokers)
	for _, b := range brokers {
		b.WaitFor(60*time.Second, fmt.Sprintf("broker %d to see %d brokers", b.ID, n), func() bool {
			var status struct {
				Brokers []struct {
					Fenced bool `json:"fenced"`
				} `json:"brokers"`
				ControllerID int `json:"controller_id"`
			}
			if err := b.GetJSON("/v1/cluster", &status); err != nil {
				return false
			}
			live := 0
			for _, br := range status.Brokers {
				if !br.Fenced {
					live++
				}
			}
			return live == n && status.ControllerID >= 0
		})
	}
}

// CompatCPUTime is the CPU time (user and system) the broker process has
// used so far, from /proc/<pid>/stat, for telling a test's time spent in
// the broker from time spent in clients.
func (b *Broker) CompatCPUTime() (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", b.Pid()))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, counted in USER_HZ (100 on
	// Linux) ticks.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat: %q", b.Pid(), s)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q", b.Pid(), s)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// Package netns runs a Barge cluster for barge-jepsen with each broker a
// `barge serve` process in its own network namespace: a bridge on the host
// (198.18.S.1/24, from the benchmarking range 198.18.0.0/15 so no real
// network is shadowed), one veth pair per broker (198.18.S.11, .12, ...),
// and the faults a nemesis needs: kill -9 and restart, SIGSTOP/SIGCONT,
// and iptables rules inside a namespace that cut it off from the other
// brokers.
//
// Every object it creates is named with the run's prefix (Prefix, then a
// random suffix), so Cleanup can find what a crashed run left behind. It
// needs root and the ip and iptables commands (CheckPrereqs).
package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/barge-broker/barge/jepsen/backend"
)

// Prefix starts the name of every bridge, veth and namespace this package
// creates; Cleanup removes whatever carries it.
const Prefix = "bjep"

// Ports every broker listens on, inside its own namespace.
const (
	KafkaPort  = 9092
	RaftPort   = 9093
	GossipPort = 9094
	HTTPPort   = 9644
)

// ErrPrereq is wrapped by CheckPrereqs's errors.
var ErrPrereq = errors.New("netns: prerequisite missing")

// CheckPrereqs says why this backend cannot run here, or nil.
func CheckPrereqs() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: network namespaces need root (running as uid %d)", ErrPrereq, os.Geteuid())
	}
	for _, c := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%w: %s not found (apt-get install iproute2 iptables): %v", ErrPrereq, c, err)
		}
	}
	return nil
}

// Config shapes a cluster.
type Config struct {
	Barge string // path of the barge binary
	Nodes int
	Dir   string   // data and logs: Dir/nI/ and Dir/nI.log
	Args  []string // extra `barge serve` flags for every broker
	// Tmpfs, if set (e.g. "1g"), mounts a tmpfs of that size on each
	// broker's directory Dir/nI, which holds its data directory
	// Dir/nI/data, so the disk-full fault can fill it.
	Tmpfs string
	Log   *slog.Logger
}

// Cluster is a running set of namespaces and brokers. Its methods may be
// called from any goroutine; each node's process state has its own lock.
type Cluster struct {
	cfg    Config
	prefix string
	subnet int // third octet of 198.18.S.0/24
	Nodes  []*Node

	teardownOnce sync.Once
}

// Node is one broker: its namespace, address and process.
type Node struct {
	ID  int // 1-based, also the broker id
	NS  string
	IP  string
	dir string
	log string

	mu     sync.Mutex // guards cmd, exited, paused
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// KafkaAddr is the broker's Kafka address, reachable from the host.
func (n *Node) KafkaAddr() string { return n.IP + ":" + strconv.Itoa(KafkaPort) }

// HTTPAddr is the broker's HTTP address, reachable from the host.
func (n *Node) HTTPAddr() string { return n.IP + ":" + strconv.Itoa(HTTPPort) }

// Name is the node's name in histories: n1, n2, ...
func (n *Node) Name() string { return "n" + strconv.Itoa(n.ID) }

func run(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func output(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// freeSubnet picks the lowest 198.18.S.0/24 that no host interface has an
// address in, so two runs (or a run and a leftover) do not collide.
func freeSubnet() (int, error) {
	out, err := output("ip", "-o", "-4", "addr", "show")
	if err != nil {
		return 0, err
	}
	for s := 0; s < 256; s++ {
		if !strings.Contains(out, fmt.Sprintf(" 198.18.%d.", s)) {
			return s, nil
		}
	}
	return 0, errors.New("netns: every 198.18.S.0/24 is in use")
}

// Setup creates the bridge, the namespaces and their links, but starts no
// broker. On error it removes what it created.
func Setup(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := CheckPrereqs(); err != nil {
		return nil, err
	}
	var suffix [2]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, fmt.Errorf("netns: random suffix: %w", err)
	}
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, prefix: Prefix + hex.EncodeToString(suffix[:]), subnet: subnet}
	if err := c.setup(ctx); err != nil {
		c.Teardown()
		return nil, fmt.Errorf("netns: set up %s: %w", c.prefix, err)
	}
	return c, nil
}

func (c *Cluster) bridge() string { return c.prefix + "br" }

func (c *Cluster) setup(ctx context.Context) error {
	br := c.bridge()
	steps := [][]string{
		{"ip", "link", "add", br, "type", "bridge"},
		// With br_netfilter loaded, frames between two ports of the bridge
		// pass the host's FORWARD chain, whose policy Docker sets to DROP:
		// one rule, named by the prefix, lets the bridge talk to itself.
		{"iptables", "-w", "-I", "FORWARD", "-i", br, "-o", br, "-m", "comment", "--comment", c.prefix, "-j", "ACCEPT"},
		{"ip", "addr", "add", fmt.Sprintf("198.18.%d.1/24", c.subnet), "dev", br},
		{"ip", "link", "set", br, "up"},
	}
	for i := 1; i <= c.cfg.Nodes; i++ {
		n := &Node{ID: i, NS: fmt.Sprintf("%sn%d", c.prefix, i), IP: fmt.Sprintf("198.18.%d.%d", c.subnet, 10+i),
			dir: filepath.Join(c.cfg.Dir, fmt.Sprintf("n%d", i), "data"), log: filepath.Join(c.cfg.Dir, fmt.Sprintf("n%d.log", i))}
		c.Nodes = append(c.Nodes, n)
		host, peer := fmt.Sprintf("%sh%d", c.prefix, i), fmt.Sprintf("%sp%d", c.prefix, i)
		steps = append(steps,
			[]string{"ip", "netns", "add", n.NS},
			[]string{"ip", "link", "add", host, "type", "veth", "peer", "name", peer},
			[]string{"ip", "link", "set", peer, "netns", n.NS},
			[]string{"ip", "link", "set", host, "master", br, "up"},
			[]string{"ip", "-n", n.NS, "addr", "add", n.IP + "/24", "dev", peer},
			[]string{"ip", "-n", n.NS, "link", "set", peer, "up"},
			[]string{"ip", "-n", n.NS, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if c.cfg.Tmpfs != "" {
			if err := backend.MountTmpfs(ctx, filepath.Dir(n.dir), c.cfg.Tmpfs); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	return nil
}

// Seeds are the brokers' Kafka addresses.
func (c *Cluster) Seeds() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.KafkaAddr())
	}
	return out
}

// Start launches node i's broker (again, after a kill) on its data
// directory; its output is appended to Dir/nI.log.
func (c *Cluster) Start(n *Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.exited:
		default:
			return fmt.Errorf("netns: start %s: already running", n.Name())
		}
	}
	var join []string
	for _, m := range c.Nodes {
		join = append(join, m.IP+":"+strconv.Itoa(GossipPort))
	}
	args := append([]string{"netns", "exec", n.NS, c.cfg.Barge, "serve",
		"--id", strconv.Itoa(n.ID), "--data", n.dir,
		"--kafka", n.KafkaAddr(), "--http", n.HTTPAddr(),
		"--raft", n.IP + ":" + strconv.Itoa(RaftPort), "--gossip", n.IP + ":" + strconv.Itoa(GossipPort),
		"--join", strings.Join(join, ","), "--bootstrap-expect", strconv.Itoa(len(c.Nodes)),
	}, c.cfg.Args...)
	logFile, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("netns: start %s: %w", n.Name(), err)
	}
	fmt.Fprintf(logFile, "=== barge-jepsen: start %s at %s: ip %s\n", n.Name(), time.Now().UTC().Format(time.RFC3339Nano), strings.Join(args, " "))
	// `ip netns exec` execs barge in place, so the pid is the broker's.
	// Its own process group keeps a terminal's Ctrl-C from reaching it:
	// the harness stops brokers itself, after recording the history.
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("netns: start %s: %w", n.Name(), err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	n.cmd, n.exited, n.paused = cmd, exited, false
	return nil
}

// Running reports whether node n's process is alive (paused counts).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runningLocked()
}

func (n *Node) runningLocked() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to go.
func (c *Cluster) Kill(n *Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return nil
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("netns: kill %s: %w", n.Name(), err)
	}
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("netns: kill %s: still running 10s after SIGKILL", n.Name())
	}
	n.paused = false
	return nil
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (c *Cluster) Pause(n *Node) error { return n.signal(syscall.SIGSTOP, true) }

// Resume sends SIGCONT to a paused node.
func (c *Cluster) Resume(n *Node) error { return n.signal(syscall.SIGCONT, false) }

func (n *Node) signal(sig syscall.Signal, paused bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return nil
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("netns: %v %s: %w", sig, n.Name(), err)
	}
	n.paused = paused
	return nil
}

// Isolate cuts node n off from every other broker, both ways, with rules
// inside its namespace. The host (the clients) still reaches it: a
// partitioned leader keeps taking requests, which is the case to test.
func (c *Cluster) Isolate(ctx context.Context, n *Node) error {
	for _, m := range c.Nodes {
		if m == n {
			continue
		}
		for _, rule := range [][]string{{"INPUT", "-s"}, {"OUTPUT", "-d"}} {
			if err := run(ctx, "ip", "netns", "exec", n.NS, "iptables", "-w", "-A", rule[0], rule[1], m.IP, "-j", "DROP"); err != nil {
				return fmt.Errorf("netns: isolate %s: %w", n.Name(), err)
			}
		}
	}
	return nil
}

// HealNetwork removes every partition rule.
func (c *Cluster) HealNetwork(ctx context.Context) error {
	var errs []error
	for _, n := range c.Nodes {
		for _, chain := range []string{"INPUT", "OUTPUT"} {
			if err := run(ctx, "ip", "netns", "exec", n.NS, "iptables", "-w", "-F", chain); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// WaitReady waits until node n answers /readyz, up to d.
func (c *Cluster) WaitReady(ctx context.Context, n *Node, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		if !n.Running() {
			return fmt.Errorf("netns: %s exited before it was ready (see %s)", n.Name(), n.log)
		}
		if resp, err := client.Get("http://" + n.HTTPAddr() + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netns: %s not ready within %v", n.Name(), d)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends node n gracefully: SIGCONT (a paused process cannot handle
// SIGTERM), SIGTERM, then SIGKILL after 15 s.
func (c *Cluster) Stop(n *Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return nil
	}
	n.cmd.Process.Signal(syscall.SIGCONT)
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return nil
	case <-time.After(15 * time.Second):
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
	return fmt.Errorf("netns: %s did not stop within 15s of SIGTERM", n.Name())
}

// Teardown stops every broker and removes the namespaces (their iptables
// rules and veth ends go with them) and the bridge. It is idempotent.
func (c *Cluster) Teardown() error {
	var errs []error
	c.teardownOnce.Do(func() {
		var wg sync.WaitGroup
		for _, n := range c.Nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.Stop(n); err != nil {
					c.logger().Warn("stop broker", "node", n.Name(), "err", err)
				}
			}()
		}
		wg.Wait()
		errs = append(errs, removeObjects(c.prefix, c.logger()))
		if c.cfg.Tmpfs != "" {
			dir, _ := filepath.Abs(c.cfg.Dir)
			errs = append(errs, backend.UnmountTmpfs(context.Background(), dir))
		}
	})
	return errors.Join(errs...)
}

func (c *Cluster) logger() *slog.Logger {
	if c.cfg.Log != nil {
		return c.cfg.Log
	}
	return slog.Default()
}

// Cleanup removes everything any run left behind: namespaces, links and
// bridges whose names start with Prefix, after killing the processes in
// those namespaces (only brokers a run started live there).
func Cleanup(log *slog.Logger) error {
	if err := CheckPrereqs(); err != nil {
		return err
	}
	return removeObjects(Prefix, log)
}

// Leftovers lists the namespaces and links named with Prefix that exist.
func Leftovers() ([]string, error) {
	var out []string
	nss, err := namespaces(Prefix)
	if err != nil {
		return nil, err
	}
	out = append(out, nss...)
	links, err := links(Prefix)
	if err != nil {
		return nil, err
	}
	out = append(out, links...)
	rules, err := forwardRules(Prefix)
	if err != nil {
		return nil, err
	}
	return append(out, rules...), nil
}

func namespaces(prefix string) ([]string, error) {
	out, err := output("ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

func links(prefix string) ([]string, error) {
	out, err := output("ip", "-o", "link", "show")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		// "12: bjep1a2bh1@if11: <...>"
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names, nil
}

func removeObjects(prefix string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	var errs []error
	nss, err := namespaces(prefix)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		if pids, err := output("ip", "netns", "pids", ns); err == nil {
			for _, f := range strings.Fields(pids) {
				if pid, err := strconv.Atoi(f); err == nil {
					log.Info("killing leftover process in namespace", "ns", ns, "pid", pid)
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if err := run(context.Background(), "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	ls, err := links(prefix)
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range ls {
		// A veth end may vanish with its peer's namespace meanwhile.
		if err := run(context.Background(), "ip", "link", "del", l); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	rules, err := forwardRules(prefix)
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range rules {
		args := append([]string{"iptables", "-w", "-D"}, strings.Fields(strings.TrimPrefix(r, "-A "))...)
		if err := run(context.Background(), args...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// forwardRules lists the host's FORWARD rules (as `iptables -S` prints
// them) whose comment starts with prefix.
func forwardRules(prefix string) ([]string, error) {
	out, err := output("iptables", "-w", "-S", "FORWARD")
	if err != nil {
		return nil, err
	}
	var rules []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "-A ") && strings.Contains(line, "--comment "+prefix) {
			rules = append(rules, line)
		}
	}
	return rules, nil
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// `barge dev` runs a local cluster of child `barge serve` processes on
// loopback, for trying replication and failover by hand. The dev process
// owns the children: it starts them, stops them on SIGINT or SIGTERM and
// waits for them. `barge dev --kill N` and `--restart N` from another
// terminal ask it, over a Unix socket in the data directory, to kill or
// restart one broker; it also writes dev.json there with every broker's
// pid, addresses and arguments.

const (
	devStateFile  = "dev.json"
	devSocketFile = "dev.sock"
	// devStopWait bounds how long a broker gets to shut down after SIGTERM
	// before it is killed: serve's default --shutdown-timeout (30 s) plus
	// room for closing the logs.
	devStopWait = 45 * time.Second
	// devControlTimeout bounds one --kill or --restart request; a restart
	// includes the graceful stop.
	devControlTimeout = devStopWait + 15*time.Second
	// devMaxSocketPath is the longest Unix socket path Linux accepts
	// (sun_path is 108 bytes with the terminating NUL).
	devMaxSocketPath = 107
)

// devBroker is one broker of the dev cluster, as dev.json records it.
type devBroker struct {
	ID     int      `json:"id"`
	Kafka  string   `json:"kafka"`
	HTTP   string   `json:"http"`
	Raft   string   `json:"raft"`
	Gossip string   `json:"gossip"`
	Data   string   `json:"data"`
	Log    string   `json:"log"`
	Args   []string `json:"args"` // after the binary: serve ...
	Pid    int      `json:"pid"`  // 0 while not running
}

// devState is dev.json: the supervisor's pid and its brokers.
type devState struct {
	Pid     int          `json:"pid"`
	Binary  string       `json:"binary"`
	Brokers []*devBroker `json:"brokers"`
}

const devLong = `Run a local cluster of N brokers on 127.0.0.1 in one command.

The brokers are child 'barge serve' processes of this binary, each with its
data and log under --data (default ./barge-data/dev). The command prints
each broker's addresses and the export lines for the admin CLI, then runs
until SIGINT (Ctrl-C) or SIGTERM, which stops every broker gracefully and
waits for them.

Ports: broker i (from 1) listens for Kafka on --base-port+i-1, HTTP on
--base-port+100+i-1, Raft on +200 and gossip on +300. --base-port 0 picks
free ports. A second start on the same --data reuses the data, ports and
serve flags of the first (its dev.json; flags after -- replace the serve
flags); --fresh deletes them first.

From another terminal, with the same --data:
  barge dev --kill 2      SIGKILL broker 2, as a crash would
  barge dev --stop 2      SIGTERM broker 2 (controlled shutdown)
  barge dev --restart 2   stop broker 2 if it runs, then start it again

Flags after -- are given to every broker's 'barge serve'.`

const devExample = `  # Three brokers; copy the printed export lines into another terminal:
  barge dev --nodes 3

  # There: an RF=3 topic, records, then a crash of broker 2 and its return
  barge topic create orders -p 3 -r 3
  barge perf produce orders --records 100000
  barge dev --kill 2
  barge cluster health
  barge dev --restart 2
  barge cluster health --exit-when-healthy --timeout 1m

  # Brokers with a small segment size, data elsewhere:
  barge dev --nodes 3 --data /tmp/barge-dev -- --log-segment-bytes 1048576`

// newDevCommand builds `barge dev`.
func newDevCommand(deps *cli.Deps) *cobra.Command {
	var (
		nodes, basePort     int
		data                string
		fresh               bool
		kill, stop, restart int
	)
	cmd := &cobra.Command{
		Use:     "dev [-- serve flags]",
		Short:   "Run a local N-broker cluster on loopback",
		Long:    devLong,
		Example: devExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			control := ""
			id := 0
			for _, c := range []struct {
				name string
				v    int
			}{{"kill", kill}, {"stop", stop}, {"restart", restart}} {
				if fs.Changed(c.name) {
					if control != "" {
						return cli.Usagef("--%s and --%s: give one", control, c.name)
					}
					control, id = c.name, c.v
				}
			}
			if control != "" {
				if len(args) > 0 || fs.Changed("nodes") || fs.Changed("fresh") || fs.Changed("base-port") {
					return cli.Usagef("--%s takes only --data", control)
				}
				return devControl(cmd.Context(), deps, data, control, id)
			}
			if nodes < 1 || nodes > 9 {
				return cli.Usagef("--nodes %d: want 1 to 9", nodes)
			}
			if basePort < 0 || basePort+400 > 65535 {
				return cli.Usagef("--base-port %d: want 0 or a port below 65135", basePort)
			}
			return runDev(cmd.Context(), deps, devOptions{
				nodes: nodes, basePort: basePort, data: data, fresh: fresh, extra: args,
			})
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&nodes, "nodes", 3, "brokers to run")
	fs.StringVar(&data, "data", filepath.Join("barge-data", "dev"), "directory of the brokers' data, logs, dev.json and control socket")
	fs.IntVar(&basePort, "base-port", 29092, "first Kafka port (see above); 0 picks free ports")
	fs.BoolVar(&fresh, "fresh", false, "delete --data before starting")
	fs.IntVar(&kill, "kill", 0, "SIGKILL broker `N` of the dev cluster running on --data")
	fs.IntVar(&stop, "stop", 0, "SIGTERM broker `N` of the dev cluster running on --data")
	fs.IntVar(&restart, "restart", 0, "stop broker `N` if it runs, then start it again")
	return cmd
}

type devOptions struct {
	nodes, basePort int
	data            string
	fresh           bool
	extra           []string
}

// devCluster is the running supervisor. mu guards the brokers' pids and
// procs; the control socket's goroutines and the signal path share them.
type devCluster struct {
	deps   *cli.Deps
	logger *slog.Logger
	dir    string // absolute --data
	binary string

	// ctlMu serializes control requests: two restarts of one broker at
	// once would otherwise start it twice.
	ctlMu sync.Mutex

	mu      sync.Mutex
	brokers []*devBroker
	procs   map[int]*devProc // by broker id, while running
	closing bool             // set by stopAll: no broker starts after it
}

// devProc is one running child; exited closes when Wait returned.
type devProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	// expected is set before the supervisor itself kills or stops the
	// process, so that its exit is not reported as a crash.
	expected bool
}

func runDev(ctx context.Context, deps *cli.Deps, o devOptions) error {
	logger := deps.Logger.With("component", "dev")
	binary, err := os.Executable()
	if err != nil {
		return fmt.Errorf("dev: find this binary: %w", err)
	}
	dir, err := filepath.Abs(o.data)
	if err != nil {
		return fmt.Errorf("dev: --data %s: %w", o.data, err)
	}
	sock := filepath.Join(dir, devSocketFile)
	if len(sock) > devMaxSocketPath {
		return cli.Usagef("--data %s: the control socket %s would be %d bytes, more than a Unix socket path may be (%d); use a shorter --data", o.data, sock, len(sock), devMaxSocketPath)
	}
	if o.fresh {
		if err := refuseIfRunning(dir); err != nil {
			return err
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("dev: --fresh: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("dev: create --data %s: %w", dir, err)
	}
	if err := refuseIfRunning(dir); err != nil {
		return err
	}
	brokers, err := devLayout(dir, o)
	if err != nil {
		return err
	}
	c := &devCluster{deps: deps, logger: logger, dir: dir, binary: binary, brokers: brokers, procs: map[int]*devProc{}}

	// The control socket before any broker starts, so --kill and
	// --restart work as soon as the addresses are printed. refuseIfRunning
	// kept us off a live dev's directory; a socket still there is a
	// killed dev's.
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("dev: control socket: %w", err)
	}
	defer os.Remove(sock)
	ctlDone := make(chan struct{})
	go func() { defer close(ctlDone); c.serveControl(ln) }()
	defer func() { ln.Close(); <-ctlDone }()

	// Subscribe before the first child starts, so that Ctrl-C during the
	// start-up stops the children that did start.
	ctx, cancel := deps.Context(ctx)
	defer cancel()

	// Always stop what was started, also when a start fails half way.
	defer c.stopAll()
	for _, b := range brokers {
		if err := c.start(b); err != nil {
			return err
		}
	}
	c.print(deps.Stdout)

	healthy := make(chan struct{})
	go func() {
		if c.waitHealthy(ctx) {
			close(healthy)
		}
	}()
	select {
	case <-healthy:
		logger.Info("cluster healthy", "brokers", len(brokers))
	case <-ctx.Done():
	}
	<-ctx.Done()
	// Back to the default signal action: a second Ctrl-C ends dev at once,
	// and the children then get SIGTERM from the kernel (Pdeathsig).
	cancel()
	logger.Info("stopping the brokers")
	return nil
}

// refuseIfRunning fails when dir's dev.json names a live supervisor.
func refuseIfRunning(dir string) error {
	st, err := readDevState(dir)
	if err != nil || st.Pid == 0 || st.Pid == os.Getpid() {
		return nil
	}
	if syscall.Kill(st.Pid, 0) == nil {
		return fmt.Errorf("dev: another barge dev (pid %d) runs on %s; stop it first", st.Pid, dir)
	}
	return nil
}

// devLayout gives each broker its addresses and arguments: those of the
// previous dev.json when it has the same number of brokers (the Raft
// configuration on disk names the old addresses), new ones otherwise.
func devLayout(dir string, o devOptions) ([]*devBroker, error) {
	prev, err := readDevState(dir)
	if err == nil && len(prev.Brokers) == o.nodes {
		for _, b := range prev.Brokers {
			b.Pid = 0
			if len(o.extra) > 0 {
				b.Args = devServeArgs(b, prev.Brokers, o.extra)
			}
		}
		return prev.Brokers, nil
	}
	if err == nil {
		return nil, cli.Usagef("--data %s holds a %d-broker cluster; use --nodes %d or --fresh", dir, len(prev.Brokers), len(prev.Brokers))
	}
	// Free ports are held open until all are picked: a port closed after
	// its pick could be handed out again by the next one (two brokers'
	// listeners on the same port, one of them failing to start). Another
	// process may still take one before its broker listens; the broker
	// then exits with the address in its log.
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	port := func(i, offset int) (string, error) {
		if o.basePort == 0 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return "", fmt.Errorf("dev: pick a free port: %w", err)
			}
			held = append(held, ln)
			return ln.Addr().String(), nil
		}
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(o.basePort+offset+i)), nil
	}
	brokers := make([]*devBroker, o.nodes)
	for i := range brokers {
		b := &devBroker{ID: i + 1}
		for _, a := range []struct {
			dst    *string
			offset int
		}{{&b.Kafka, 0}, {&b.HTTP, 100}, {&b.Raft, 200}, {&b.Gossip, 300}} {
			if *a.dst, err = port(i, a.offset); err != nil {
				return nil, err
			}
		}
		b.Data = filepath.Join(dir, fmt.Sprintf("broker-%d", b.ID))
		b.Log = filepath.Join(dir, fmt.Sprintf("broker-%d.log", b.ID))
		brokers[i] = b
	}
	for _, b := range brokers {
		b.Args = devServeArgs(b, brokers, o.extra)
	}
	return brokers, nil
}

// devServeArgs is broker b's `barge serve` command line.
func devServeArgs(b *devBroker, all []*devBroker, extra []string) []string {
	var join []string
	for _, o := range all {
		if o.ID != b.ID {
			join = append(join, o.Gossip)
		}
	}
	args := []string{"serve",
		"--id", strconv.Itoa(b.ID), "--data", b.Data,
		"--kafka", b.Kafka, "--http", b.HTTP, "--raft", b.Raft, "--gossip", b.Gossip,
		"--bootstrap-expect", strconv.Itoa(len(all)),
		// One machine: fail over in seconds, not the tens of seconds that
		// suit a real network.
		"--fast-failure-detection",
	}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	return append(args, extra...)
}

// start launches broker b; the caller does not hold c.mu.
func (c *devCluster) start(b *devBroker) error {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return errors.New("dev: the cluster is stopping")
	}
	logFile, err := os.OpenFile(b.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("dev: broker %d log: %w", b.ID, err)
	}
	cmd := exec.Command(c.binary, b.Args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = devProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("dev: start broker %d: %w", b.ID, err)
	}
	p := &devProc{cmd: cmd, exited: make(chan struct{})}
	c.mu.Lock()
	if c.closing {
		// A --restart raced with Ctrl-C: stopAll has looked at procs
		// already and would not wait for this one.
		p.expected = true
		cmd.Process.Kill()
	}
	c.procs[b.ID] = p
	b.Pid = cmd.Process.Pid
	c.saveLocked()
	c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logFile.Close()
		c.mu.Lock()
		expected := p.expected
		if c.procs[b.ID] == p {
			delete(c.procs, b.ID)
			b.Pid = 0
			c.saveLocked()
		}
		c.mu.Unlock()
		close(p.exited)
		if !expected {
			c.logger.Warn("broker exited", "broker", b.ID, "err", err, "log", b.Log)
		}
	}()
	c.logger.Debug("started broker", "broker", b.ID, "pid", b.Pid)
	return nil
}

// stopBroker ends broker id: SIGKILL when kill, else SIGTERM and, after
// devStopWait, SIGKILL. It waits for the exit and reports whether the
// broker was running.
func (c *devCluster) stopBroker(id int, kill bool) bool {
	c.mu.Lock()
	p := c.procs[id]
	if p != nil {
		p.expected = true
	}
	c.mu.Unlock()
	if p == nil {
		return false
	}
	if kill {
		p.cmd.Process.Kill()
	} else {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.exited:
	case <-time.After(devStopWait):
		c.logger.Warn("broker did not stop in time; killing it", "broker", id, "wait", devStopWait)
		p.cmd.Process.Kill()
		<-p.exited
	}
	return true
}

// stopAll stops every running broker at once, gracefully, and waits.
func (c *devCluster) stopAll() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	// Let a control request in flight finish (it can no longer start a
	// broker), so that every process is in procs below.
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	var wg sync.WaitGroup
	for _, b := range c.brokers {
		wg.Go(func() {
			if c.stopBroker(b.ID, false) {
				c.logger.Info("broker stopped", "broker", b.ID)
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	c.saveLocked()
	c.mu.Unlock()
}

// saveLocked writes dev.json; the caller holds c.mu. A failure is logged:
// the file is for the --kill/--restart callers and humans, the cluster
// runs without it.
func (c *devCluster) saveLocked() {
	st := devState{Pid: os.Getpid(), Binary: c.binary, Brokers: c.brokers}
	out, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		// Write and rename, so a reader never sees half a file.
		tmp := filepath.Join(c.dir, devStateFile+".tmp")
		if err = os.WriteFile(tmp, append(out, '\n'), 0o644); err == nil {
			err = os.Rename(tmp, filepath.Join(c.dir, devStateFile))
		}
	}
	if err != nil {
		c.logger.Error("writing dev.json", "err", err)
	}
}

func readDevState(dir string) (devState, error) {
	var st devState
	raw, err := os.ReadFile(filepath.Join(dir, devStateFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("dev: %s: %w", filepath.Join(dir, devStateFile), err)
	}
	return st, nil
}

// print writes the brokers' addresses and the admin CLI's export lines.
func (c *devCluster) print(w io.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var kafka, admin []string
	for _, b := range c.brokers {
		fmt.Fprintf(w, "broker %d: kafka %s  http %s  pid %d  log %s\n", b.ID, b.Kafka, b.HTTP, b.Pid, b.Log)
		kafka = append(kafka, b.Kafka)
		admin = append(admin, b.HTTP)
	}
	fmt.Fprintf(w, "export %s=%s\n", cli.BrokersEnv, strings.Join(kafka, ","))
	fmt.Fprintf(w, "export %s=%s\n", cli.AdminEnv, strings.Join(admin, ","))
	fmt.Fprintf(w, "# Ctrl-C stops the cluster; barge dev --kill N / --restart N (with --data %s) from another terminal\n", c.dir)
}

// waitHealthy polls broker 1's view of the cluster until it is healthy or
// ctx ends; a minute without health is logged once, as a hint to look at
// the logs, and the wait goes on.
func (c *devCluster) waitHealthy(ctx context.Context) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	warn := time.After(time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, b := range c.brokers {
			var h struct {
				IsHealthy bool `json:"is_healthy"`
			}
			resp, err := client.Get("http://" + b.HTTP + "/v1/cluster/health")
			if err != nil {
				continue
			}
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err == nil && h.IsHealthy {
				return true
			}
			break // one broker's verdict is the cluster's
		}
		select {
		case <-ctx.Done():
			return false
		case <-warn:
			c.logger.Warn("cluster not healthy after a minute; see the brokers' logs", "data", c.dir)
		case <-tick.C:
		}
	}
}

// serveControl answers --kill/--stop/--restart requests, one line each:
// "kill 2" → "ok ..." or "error ...". It returns when ln closes.
func (c *devCluster) serveControl(ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(devControlTimeout))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				return
			}
			msg, err := c.control(strings.TrimSpace(line))
			if err != nil {
				fmt.Fprintf(conn, "error %v\n", err)
				return
			}
			fmt.Fprintf(conn, "ok %s\n", msg)
		})
	}
}

// control carries out one request.
func (c *devCluster) control(req string) (string, error) {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	verb, arg, _ := strings.Cut(req, " ")
	id, err := strconv.Atoi(arg)
	if err != nil {
		return "", fmt.Errorf("bad request %q", req)
	}
	var b *devBroker
	for _, x := range c.brokers {
		if x.ID == id {
			b = x
		}
	}
	if b == nil {
		return "", fmt.Errorf("no broker %d (the cluster has 1 to %d)", id, len(c.brokers))
	}
	c.logger.Info("control", "request", verb, "broker", id)
	switch verb {
	case "kill", "stop":
		if !c.stopBroker(id, verb == "kill") {
			return "", fmt.Errorf("broker %d is not running", id)
		}
		return fmt.Sprintf("broker %d %s", id, map[string]string{"kill": "killed", "stop": "stopped"}[verb]), nil
	case "restart":
		c.stopBroker(id, false)
		if err := c.start(b); err != nil {
			return "", err
		}
		c.mu.Lock()
		pid := b.Pid
		c.mu.Unlock()
		return fmt.Sprintf("broker %d started, pid %d", id, pid), nil
	}
	return "", fmt.Errorf("unknown request %q", verb)
}

// devControl sends one request to the dev process running on data.
func devControl(ctx context.Context, deps *cli.Deps, data, verb string, id int) error {
	dir, err := filepath.Abs(data)
	if err != nil {
		return fmt.Errorf("dev: --data %s: %w", data, err)
	}
	sock := filepath.Join(dir, devSocketFile)
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return &cli.UnreachableError{Err: fmt.Errorf("dev: no barge dev running on %s (%w); start one with barge dev --data %s", dir, err, data)}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(devControlTimeout))
	if _, err := fmt.Fprintf(conn, "%s %d\n", verb, id); err != nil {
		return fmt.Errorf("dev: send %s %d: %w", verb, id, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("dev: %s %d: no answer: %w", verb, id, err)
	}
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "ok "); ok {
		fmt.Fprintln(deps.Stdout, msg)
		return nil
	}
	return errors.New("dev: " + strings.TrimPrefix(line, "error "))
}

// Package docker runs a Barge cluster for barge-jepsen as containers of
// the FROM scratch image (the one deploy/docker describes; `make image`
// builds it as barge:dev, or the harness builds an equivalent one from
// the barge binary it is given, since nothing can be pulled) on a private
// bridge network the harness creates, with addresses from the
// benchmarking range 198.18.0.0/15. Faults: docker kill -s KILL and
// docker start, docker pause and unpause, and the host's iptables and tc
// run through nsenter inside a container's network namespace.
//
// Everything it creates carries the label barge-jepsen=<run prefix>, so
// Cleanup finds what a crashed run left behind. It needs root (nsenter,
// data directories owned by the image's user) and a docker daemon.
package docker

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
	"time"

	"github.com/barge-broker/barge/jepsen/backend"
)

// Label marks every container, network and image of a run.
const Label = "barge-jepsen"

// Prefix starts every name this package creates.
const Prefix = "bjepd"

// imageUser is the numeric user of the image (deploy/docker/Dockerfile):
// data directories are owned by it.
const imageUser = 65532

// Ports every broker listens on, on its container's address.
const (
	KafkaPort  = 9092
	RaftPort   = 9093
	GossipPort = 9094
	HTTPPort   = 9644
)

// ErrPrereq is wrapped by CheckPrereqs's errors.
var ErrPrereq = errors.New("docker: prerequisite missing")

// CheckPrereqs says why this backend cannot run here, or nil.
func CheckPrereqs() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: the docker backend needs root for nsenter and data directory ownership (running as uid %d)", ErrPrereq, os.Geteuid())
	}
	for _, c := range []string{"docker", "nsenter", "iptables", "tc"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%w: %s not found: %v", ErrPrereq, c, err)
		}
	}
	if err := backend.Run(context.Background(), "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		return fmt.Errorf("%w: no docker daemon: %v", ErrPrereq, err)
	}
	return nil
}

// Config shapes a cluster.
type Config struct {
	Barge string // the barge binary an image is built from, when Image is empty
	Image string // an existing image (e.g. barge:dev from `make image`)
	Nodes int
	Dir   string   // data and logs: Dir/nI/data and Dir/nI.log
	Args  []string // extra `barge serve` flags for every broker
	Tmpfs string   // as netns.Config.Tmpfs
	Log   *slog.Logger
}

// Cluster is a running network and its containers.
type Cluster struct {
	cfg    Config
	prefix string
	subnet int
	image  string
	built  bool // image built by this run, removed at teardown
	names  []string
	ips    []string
	dirs   []string

	teardownOnce sync.Once
}

// Setup builds the image if needed and creates the network and the
// containers, but starts no broker. On error it removes what it created.
func Setup(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := CheckPrereqs(); err != nil {
		return nil, err
	}
	var suffix [2]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, fmt.Errorf("docker: random suffix: %w", err)
	}
	c := &Cluster{cfg: cfg, prefix: Prefix + hex.EncodeToString(suffix[:]), image: cfg.Image}
	if err := c.setup(ctx); err != nil {
		c.Teardown()
		return nil, fmt.Errorf("docker: set up %s: %w", c.prefix, err)
	}
	return c, nil
}

func (c *Cluster) label() string   { return Label + "=" + c.prefix }
func (c *Cluster) network() string { return c.prefix + "net" }

func (c *Cluster) setup(ctx context.Context) error {
	if c.image == "" {
		if err := c.buildImage(ctx); err != nil {
			return err
		}
	}
	subnet, err := freeSubnet()
	if err != nil {
		return err
	}
	c.subnet = subnet
	if err := backend.Run(ctx, "docker", "network", "create", "--driver", "bridge", "--label", c.label(),
		"--subnet", fmt.Sprintf("198.18.%d.0/24", subnet), "--gateway", fmt.Sprintf("198.18.%d.1", subnet), c.network()); err != nil {
		return err
	}
	var join []string
	for i := range c.cfg.Nodes {
		c.ips = append(c.ips, fmt.Sprintf("198.18.%d.%d", subnet, 11+i))
		join = append(join, c.ips[i]+":"+strconv.Itoa(GossipPort))
	}
	for i := range c.cfg.Nodes {
		name := fmt.Sprintf("%sn%d", c.prefix, i+1)
		dir, _ := filepath.Abs(filepath.Join(c.cfg.Dir, fmt.Sprintf("n%d", i+1), "data"))
		c.names, c.dirs = append(c.names, name), append(c.dirs, dir)
		if c.cfg.Tmpfs != "" {
			if err := backend.MountTmpfs(ctx, filepath.Dir(dir), c.cfg.Tmpfs); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		if err := os.Chown(dir, imageUser, imageUser); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		ip := c.ips[i]
		args := []string{"docker", "create", "--name", name, "--label", c.label(), "--network", c.network(), "--ip", ip,
			"--hostname", name, "-v", dir + ":/var/lib/barge", c.image, "serve",
			"--id", strconv.Itoa(i + 1), "--data", "/var/lib/barge",
			"--kafka", ip + ":" + strconv.Itoa(KafkaPort), "--http", ip + ":" + strconv.Itoa(HTTPPort),
			"--raft", ip + ":" + strconv.Itoa(RaftPort), "--gossip", ip + ":" + strconv.Itoa(GossipPort),
			"--join", strings.Join(join, ","), "--bootstrap-expect", strconv.Itoa(c.cfg.Nodes)}
		if err := backend.Run(ctx, append(args, c.cfg.Args...)...); err != nil {
			return err
		}
	}
	return nil
}

// buildImage builds the FROM scratch image from the barge binary, as
// `make image` does from deploy/docker/Dockerfile: the static binary, an
// empty data directory owned by the image's user, nothing else.
func (c *Cluster) buildImage(ctx context.Context) error {
	dir, err := os.MkdirTemp("", c.prefix+"-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := os.ReadFile(c.cfg.Barge)
	if err != nil {
		return fmt.Errorf("docker: image: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "barge"), bin, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY barge /barge\nCOPY --chown=%d:%d data/ /var/lib/barge/\nUSER %d:%d\nWORKDIR /var/lib/barge\nENTRYPOINT [\"/barge\"]\n",
		imageUser, imageUser, imageUser, imageUser)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	c.image = c.prefix + ":test"
	if err := backend.Run(ctx, "docker", "build", "-q", "--label", c.label(), "-t", c.image, dir); err != nil {
		return err
	}
	c.built = true
	return nil
}

// freeSubnet picks a 198.18.S.0/24 no host interface is in, from the top
// down, so a netns run (which picks from the bottom) rarely meets it.
func freeSubnet() (int, error) {
	out, err := backend.Output(context.Background(), "ip", "-o", "-4", "addr", "show")
	if err != nil {
		return 0, err
	}
	nets, _ := backend.Output(context.Background(), "docker", "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
		"bridge")
	for s := 255; s >= 0; s-- {
		if !strings.Contains(out, fmt.Sprintf(" 198.18.%d.", s)) && !strings.Contains(nets, fmt.Sprintf("198.18.%d.", s)) {
			return s, nil
		}
	}
	return 0, errors.New("docker: every 198.18.S.0/24 is in use")
}

// Backend returns c as a backend.Cluster.
func (c *Cluster) Backend() backend.Cluster { return c }

func (c *Cluster) Size() int { return len(c.names) }

func (c *Cluster) Seeds() []string {
	var out []string
	for _, ip := range c.ips {
		out = append(out, ip+":"+strconv.Itoa(KafkaPort))
	}
	return out
}

func (c *Cluster) AdminAddrs() []string {
	var out []string
	for _, ip := range c.ips {
		out = append(out, ip+":"+strconv.Itoa(HTTPPort))
	}
	return out
}

func (c *Cluster) IP(i int) string      { return c.ips[i] }
func (c *Cluster) Iface(int) string     { return "eth0" }
func (c *Cluster) DataDir(i int) string { return c.dirs[i] }

func (c *Cluster) inspect(i int, format string) (string, error) {
	out, err := backend.Output(context.Background(), "docker", "inspect", "--format", format, c.names[i])
	return strings.TrimSpace(out), err
}

func (c *Cluster) Running(i int) bool {
	out, err := c.inspect(i, "{{.State.Running}}")
	return err == nil && out == "true"
}

func (c *Cluster) Start(i int) error {
	if c.Running(i) {
		return fmt.Errorf("docker: start %s: already running", backend.Name(i))
	}
	return backend.Run(context.Background(), "docker", "start", c.names[i])
}

// Kill sends SIGKILL and waits for the container to stop.
func (c *Cluster) Kill(i int) error {
	if !c.Running(i) {
		return nil
	}
	if err := backend.Run(context.Background(), "docker", "kill", "--signal", "KILL", c.names[i]); err != nil {
		return err
	}
	for range 100 {
		if !c.Running(i) {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // poll pacing; docker has no wait-for-stopped with a timeout
	}
	return fmt.Errorf("docker: kill %s: still running 10s after SIGKILL", backend.Name(i))
}

// Pause freezes the container's processes (cgroup freezer: as SIGSTOP,
// but the broker cannot tell).
func (c *Cluster) Pause(i int) error {
	return backend.Run(context.Background(), "docker", "pause", c.names[i])
}

func (c *Cluster) Resume(i int) error {
	if out, _ := c.inspect(i, "{{.State.Paused}}"); out != "true" {
		return nil
	}
	return backend.Run(context.Background(), "docker", "unpause", c.names[i])
}

func (c *Cluster) WaitReady(ctx context.Context, i int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		if !c.Running(i) {
			return fmt.Errorf("docker: %s exited before it was ready (docker logs %s)", backend.Name(i), c.names[i])
		}
		if resp, err := client.Get("http://" + c.AdminAddrs()[i] + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker: %s not ready within %v", backend.Name(i), d)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// NetExec runs a host tool in the container's network namespace. A
// stopped container has none (it gets a fresh one when started again,
// with no rules), so there is nothing to do.
func (c *Cluster) NetExec(ctx context.Context, i int, args ...string) error {
	pid, err := c.inspect(i, "{{.State.Pid}}")
	if err != nil {
		return err
	}
	if pid == "0" || pid == "" {
		return nil
	}
	return backend.Run(ctx, append([]string{"nsenter", "-t", pid, "-n"}, args...)...)
}

// Teardown saves each container's log to Dir/nI.log, then removes the
// containers, the network, the image it built and the tmpfs mounts.
func (c *Cluster) Teardown() error {
	var errs []error
	c.teardownOnce.Do(func() {
		ctx := context.Background()
		// Graceful first, all at once as the netns backend does: the log's
		// end shows a clean shutdown. Stopped one after another, the last
		// broker has no quorum left to hand its leadership to and could
		// outlast docker's grace period and be killed.
		var wg sync.WaitGroup
		for _, name := range c.names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				backend.Run(ctx, "docker", "unpause", name)
				backend.Run(ctx, "docker", "stop", "-t", "15", name)
			}()
		}
		wg.Wait()
		for i, name := range c.names {
			out, _ := exec.CommandContext(ctx, "docker", "logs", name).CombinedOutput()
			if err := os.WriteFile(filepath.Join(c.cfg.Dir, fmt.Sprintf("n%d.log", i+1)), out, 0o644); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, removeLabelled(ctx, c.label()))
		if c.cfg.Tmpfs != "" {
			dir, _ := filepath.Abs(c.cfg.Dir)
			errs = append(errs, backend.UnmountTmpfs(ctx, dir))
		}
	})
	return errors.Join(errs...)
}

// removeLabelled removes the containers, networks and images with label
// (key=value, or just the key for every run).
func removeLabelled(ctx context.Context, label string) error {
	var errs []error
	for _, kind := range [][]string{
		{"ps", "-aq", "--filter", "label=" + label},
		{"network", "ls", "-q", "--filter", "label=" + label},
		{"images", "-q", "--filter", "label=" + label},
	} {
		out, err := backend.Output(ctx, append([]string{"docker"}, kind...)...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids := strings.Fields(out)
		if len(ids) == 0 {
			continue
		}
		var rm []string
		switch kind[0] {
		case "ps":
			rm = []string{"docker", "rm", "-f", "-v"}
		case "network":
			rm = []string{"docker", "network", "rm"}
		case "images":
			rm = []string{"docker", "rmi", "-f"}
		}
		if err := backend.Run(ctx, append(rm, ids...)...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Cleanup removes whatever any run left behind.
func Cleanup(ctx context.Context) error { return removeLabelled(ctx, Label) }

// Leftovers lists containers, networks and images of any run that exist.
func Leftovers(ctx context.Context) ([]string, error) {
	var out []string
	for _, kind := range [][]string{
		{"ps", "-a", "--format", "container {{.Names}}", "--filter", "label=" + Label},
		{"network", "ls", "--format", "network {{.Name}}", "--filter", "label=" + Label},
		{"images", "--format", "image {{.Repository}}:{{.Tag}}", "--filter", "label=" + Label},
	} {
		o, err := backend.Output(ctx, append([]string{"docker"}, kind...)...)
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(strings.TrimSpace(o), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

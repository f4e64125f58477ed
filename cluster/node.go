package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Metadata is the cluster API the rest of the broker uses: read the image,
// submit commands, follow changes. Node implements it; tests of other
// packages may fake it.
type Metadata interface {
	// Image returns the latest local image. Never blocks.
	Image() *Image
	// Submit sends cmd to the controller and returns once it is committed
	// and applied on this broker (see Node.Submit).
	Submit(ctx context.Context, cmd Command) (Result, error)
	// Subscribe follows changes after the returned image, in log order.
	Subscribe(buffer int) (*Subscription, *Image)
}

var _ Metadata = (*Node)(nil)

// Result is the outcome of a committed command.
type Result struct {
	// Index is the Raft index of the command.
	Index uint64
	// Image is the local image once the command was applied here; it
	// holds the command's effect (and possibly later ones).
	Image *Image
}

// Node is one broker's membership in the cluster metadata quorum: its Raft
// node (log, stable store and snapshots under DataDir/raft), its gossip
// member, the controller duties it runs while it is the Raft leader, and
// the forwarding server for commands from other brokers.
//
// Lifecycle: New validates the config, Start binds the listeners and starts
// the goroutines, Close (or the crash-like halt in tests) stops them all.
// All methods are safe for concurrent use.
type Node struct {
	cfg Config
	log *slog.Logger
	fsm *fsm
	fwd Forwarder
	// incarnation is random per process (see Incarnation).
	incarnation string
	// sessions is the controller's heartbeat table (liveness.go);
	// shuttingDown is set by PrepareShutdown and sent in heartbeats.
	sessions     *sessions
	shuttingDown atomic.Bool

	// Set by Start, read-only afterwards.
	store     *raftboltdb.BoltStore
	transport *raft.NetworkTransport
	mux       *mux
	raft      *raft.Raft
	fwdSrv    *forwardServer
	members   *membership
	raftAddr  string

	identMu sync.Mutex
	ident   dirIdentity // guarded by identMu: the data directory's meta.properties
	// conflictLogged: adoptClusterID reported a conflicting cluster id.
	conflictLogged atomic.Bool
	adoptMu        sync.Mutex // held by adoptClusterID
	// keptLogged: wiped voters removeReplacedVoters has said it keeps, so
	// it says so once. Owned by the controllerLoop goroutine.
	keptLogged map[int32]bool

	stop      chan struct{}   // closed by shutdown
	ctx       context.Context // cancelled by shutdown; bounds the controller's work
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the node's loops
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	started bool           // guarded by mu
	closed  bool           // guarded by mu
	futures sync.WaitGroup // goroutines waiting on raft futures; Add only under mu while !closed
}

// New validates cfg and returns a node that Start will run.
func New(cfg Config) (*Node, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := c.Logger.With("component", "cluster", "broker", c.ID)
	n := &Node{cfg: c, log: log, fsm: newFSM(log), fwd: c.Forwarder, stop: make(chan struct{}), incarnation: newTopicID().String(),
		keptLogged: map[int32]bool{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	t := c.Timeouts
	n.sessions = newSessions(sessionConfig{Miss: t.BrokerHeartbeatMiss, Session: t.BrokerSession,
		Grace: t.FailoverGrace, UnfenceHold: t.UnfenceHold})
	if n.fwd == nil {
		n.fwd = tcpForwarder{dialTimeout: 2 * time.Second, key: muxKey(c.ClusterSecret)}
	}
	return n, nil
}

// Start opens the Raft stores, binds the Raft and gossip addresses, joins
// the gossip seeds and starts the node's goroutines. A lone broker (no Join,
// BootstrapExpect <= 1) with no Raft state bootstraps a one-voter cluster;
// with BootstrapExpect N > 1 the lowest broker id among the first N brokers
// that see each other bootstraps all N as voters. Start returns
// ErrDuplicateBrokerID when a seed knows another live broker with this id,
// and ErrIdentityMismatch when the data directory's meta.properties names
// another broker id, or another cluster than its Raft state.
// On error everything started is stopped again. Call it once.
func (n *Node) Start() error {
	n.mu.Lock()
	if n.started || n.closed {
		n.mu.Unlock()
		return errorf(ErrInvalidNodeConfig, "node already started or closed")
	}
	n.started = true
	n.mu.Unlock()
	if err := n.start(); err != nil {
		n.shutdown(false)
		return err
	}
	return nil
}

func (n *Node) start() error {
	cfg := &n.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("cluster: create data directory: %w", err)
	}
	ident, created, err := loadIdentity(cfg.DataDir, cfg.ID)
	if err != nil {
		return err
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cluster: create raft directory: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return fmt.Errorf("cluster: open raft log %s: %w", dir, err)
	}
	n.store = store
	hlog := newHCLog(n.log.With("component", "raft"), "raft")
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog)
	if err != nil {
		return fmt.Errorf("cluster: open raft snapshots %s: %w", dir, err)
	}
	hasState, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fmt.Errorf("cluster: read raft state: %w", err)
	}

	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("cluster: listen on raft address %s: %w", cfg.RaftAddr, err)
	}
	advertise, err := advertisedAddr(ln.Addr(), cfg.AdvertisedRaftAddr)
	if err != nil {
		ln.Close()
		return err
	}
	n.raftAddr = advertise.String()
	key := muxKey(cfg.ClusterSecret)
	n.mux = newMux(ln, advertise, key, n.log)
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftStream{n.mux.raft, key},
		MaxPool: 3,
		Timeout: 2 * time.Second,
		Logger:  hlog,
	})

	alone := cfg.BootstrapExpect == 1 || (cfg.BootstrapExpect == 0 && len(cfg.Join) == 0)
	if !hasState && alone && ident.ClusterID == "" {
		// A broker about to bootstrap its own cluster names it now, before
		// it gossips, so that it never merges into the cluster of seeds it
		// may have been given (see NotifyMerge); its controller writes this
		// id as the InitCluster (see proposedClusterID).
		ident.ClusterID = newTopicID().String()
		if err := writeIdentity(cfg.DataDir, ident); err != nil {
			return err
		}
	}
	n.setIdentity(ident)
	meta := memberMeta{
		Version: memberMetaVersion, ID: cfg.ID, Kafka: cfg.AdvertisedKafkaAddr, Raft: n.raftAddr,
		HTTP: cfg.HTTPAddr, Rack: cfg.Rack, Expect: cfg.BootstrapExpect, Boot: hasState || alone,
		Inc: n.incarnation, Unclean: cfg.UncleanShutdown, Listeners: cfg.Listeners,
		Cluster: ident.ClusterID, Dir: ident.DirectoryID,
	}
	members, err := newMembership(cfg, meta, n.log.With("component", "gossip"))
	if err != nil {
		return err
	}
	n.members = members
	if len(cfg.Join) > 0 {
		err := members.join(cfg.Join)
		switch {
		case errors.Is(err, ErrDuplicateBrokerID):
			return err
		case errors.Is(err, ErrIdentityMismatch):
			// This broker has its own cluster; it runs it, apart.
			n.log.Error("gossip seeds belong to another cluster; not joining them", "seeds", cfg.Join, "err", err)
		case err != nil:
			n.log.Warn("gossip join failed; retrying in the background", "seeds", cfg.Join, "err", err)
		}
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raftID(cfg.ID)
	t := cfg.Timeouts
	rc.HeartbeatTimeout, rc.ElectionTimeout = t.RaftHeartbeat, t.RaftElection
	rc.LeaderLeaseTimeout, rc.CommitTimeout = t.RaftLeaderLease, t.RaftCommit
	rc.SnapshotInterval, rc.SnapshotThreshold = t.SnapshotInterval, t.SnapshotThreshold
	rc.Logger = hlog
	rc.NoLegacyTelemetry = true
	if cfg.RecoverQuorum {
		if err := n.recoverQuorum(rc, store, snaps, hasState); err != nil {
			return err
		}
	}
	r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft = r
	stored, err := storedClusterID(n.Image(), store)
	if err != nil {
		return err
	}
	if err := checkClusterID(cfg.DataDir, ident, stored); err != nil {
		return err
	}
	if ident.ClusterID == "" && stored != "" {
		// A directory from before meta.properties, or a broker stopped
		// before it stored the id: gossip it from the start, so that its
		// peers know it as theirs at once (see ownClusterMembers).
		ident.ClusterID = stored
		if err := writeIdentity(cfg.DataDir, ident); err != nil {
			return err
		}
		n.setIdentity(ident)
		n.members.setClusterID(stored)
	}
	n.log.Info("data directory identity", "directory_id", ident.DirectoryID, "cluster_id", ident.ClusterID,
		"new_directory", created, "raft_cluster_id", stored)
	if !hasState && alone {
		f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{
			{Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(n.raftAddr)},
		}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("cluster: bootstrap: %w", err)
		}
		n.log.Info("bootstrapped a one-voter cluster")
	}
	n.fwdSrv = newForwardServer(n.mux.forward, t.Submit, n.log, n.commit)

	n.wg.Add(4)
	go n.heartbeatLoop()
	go n.joinLoop()
	go n.bootstrapLoop(members.watch(), hasState || alone)
	go n.controllerLoop(members.watch())
	if cfg.LeaderRebalance.Enabled {
		n.wg.Add(1)
		go n.leaderRebalanceLoop()
	}
	n.log.Info("cluster node started", "raft_addr", n.raftAddr, "gossip_addr", members.addr(),
		"existing_state", hasState, "join", cfg.Join, "bootstrap_expect", cfg.BootstrapExpect)
	return nil
}

// recoverQuorum rewrites this broker's Raft configuration so that it is the
// only voter, keeping its log and snapshots: the operator's way out when a
// majority of the voters is gone for good (hashicorp/raft's RecoverCluster,
// as Consul's peers.json recovery). Whatever the lost voters had committed
// beyond this broker's log is lost; their data directories must be wiped
// before they come back, and the controller then adds them as new brokers.
func (n *Node) recoverQuorum(rc *raft.Config, store *raftboltdb.BoltStore, snaps raft.SnapshotStore, hasState bool) error {
	if !hasState {
		return errorf(ErrInvalidNodeConfig, "--recover-quorum: broker %d has no Raft state to recover from", n.cfg.ID)
	}
	conf := raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(n.raftAddr)},
	}}
	// RecoverCluster replays the log into an FSM to write a snapshot; a
	// scratch FSM keeps the node's own one for NewRaft.
	if err := raft.RecoverCluster(rc, newFSM(n.log), store, store, snaps, n.transport, conf); err != nil {
		return fmt.Errorf("cluster: recover the Raft quorum: %w", err)
	}
	n.log.Warn("recovered the metadata quorum: this broker is now the only Raft voter; wipe the data directories of the lost voters before they rejoin")
	return nil
}

func advertisedAddr(bound net.Addr, advertised string) (net.Addr, error) {
	if advertised != "" {
		a, err := net.ResolveTCPAddr("tcp", advertised)
		if err != nil {
			return nil, errorf(ErrInvalidNodeConfig, "advertised raft address %q: %v", advertised, err)
		}
		return a, nil
	}
	tcp, ok := bound.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		return nil, errorf(ErrInvalidNodeConfig, "raft address %s is not routable; set an advertised raft address", bound)
	}
	return tcp, nil
}

// joinLoop keeps this broker in the gossip cluster: whenever it sees no
// other member, it tries to join the seeds from Join and the gossip
// addresses of the brokers in its image. So a broker restarted from its data
// directory finds its peers even when it was started without --join (it
// was the first broker), and a broker cut off from everyone rejoins.
//
// It also stores the cluster id in the data directory and the gossip
// metadata once this broker learns it (see adoptClusterID). Seeds that
// belong to another cluster are retried only every mismatchRetry, and the
// refusal is logged when it first happens.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Timeouts.JoinRetry)
	defer tick.Stop()
	mismatchRetry := 10 * n.cfg.Timeouts.JoinRetry
	var refused string // the last refusal logged
	var next time.Time // no join attempt before
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		n.adoptClusterID()
		if len(n.members.members()) > 1 || time.Now().Before(next) {
			continue
		}
		seeds := n.seeds()
		if len(seeds) == 0 {
			continue
		}
		err := n.members.join(seeds)
		switch {
		case errors.Is(err, ErrDuplicateBrokerID):
			n.log.Error("broker id in use by another live broker; not joining", "err", err)
			return
		case errors.Is(err, ErrIdentityMismatch):
			if err.Error() != refused {
				n.log.Error("gossip seeds belong to another cluster; not joining them", "seeds", seeds, "err", err)
				refused = err.Error()
			}
			next = time.Now().Add(mismatchRetry)
		case err == nil:
			refused = ""
			n.log.Info("joined the gossip cluster", "seeds", seeds)
		}
	}
}

// seeds returns the gossip addresses to join: Join, then the other brokers
// of the image.
func (n *Node) seeds() []string {
	seeds := slices.Clone(n.cfg.Join)
	self := n.members.addr()
	for _, b := range n.Image().Brokers() {
		if b.ID != n.cfg.ID && b.GossipAddr != "" && b.GossipAddr != self && !slices.Contains(seeds, b.GossipAddr) {
			seeds = append(seeds, b.GossipAddr)
		}
	}
	return seeds
}

// ID returns the broker id.
func (n *Node) ID() int32 { return n.cfg.ID }

// Incarnation identifies this process of the broker: random per start, and
// registered with the broker (Broker.Incarnation) once the controller saw it.
func (n *Node) Incarnation() string { return n.incarnation }

// RaftAddr returns the address other brokers reach this node's Raft and
// forwarding server at (valid after Start).
func (n *Node) RaftAddr() string { return n.raftAddr }

// GossipAddr returns the gossip address other brokers join (valid after
// Start).
func (n *Node) GossipAddr() string {
	if n.members == nil {
		return ""
	}
	return n.members.addr()
}

// Image returns the latest local metadata image: one atomic load, never
// blocks, safe from any goroutine.
func (n *Node) Image() *Image { return n.fsm.image.Load() }

// Subscribe follows metadata changes: the returned subscription yields, in
// log order, every change after the returned image (see Subscription for
// what happens when the subscriber is slow). buffer bounds the changes
// queued for it. Close the subscription when done; Close of the node ends it.
func (n *Node) Subscribe(buffer int) (*Subscription, *Image) { return n.fsm.subscribe(buffer) }

// Members returns the live brokers as gossip sees them, by id (none before
// Start).
func (n *Node) Members() []Member {
	if n.members == nil {
		return nil
	}
	return n.members.members()
}

// IsController reports whether this broker is the Raft leader now.
func (n *Node) IsController() bool { return n.raft != nil && n.raft.State() == raft.Leader }

// Controller returns the id of the current controller, as this broker's
// Raft node knows it.
func (n *Node) Controller() (int32, bool) {
	if n.raft == nil {
		return NoLeader, false
	}
	_, id := n.raft.LeaderWithID()
	v, err := strconv.Atoi(string(id))
	if id == "" || err != nil {
		return NoLeader, false
	}
	return int32(v), true
}

// Server is one member of the Raft configuration.
type Server struct {
	ID      int32
	Addr    string
	IsVoter bool
}

// Servers returns the Raft configuration as this broker knows it.
func (n *Node) Servers() ([]Server, error) {
	if n.raft == nil {
		return nil, errorf(ErrClosed, "node not started")
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("cluster: raft configuration: %w", err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		id, _ := strconv.Atoi(string(s.ID))
		out = append(out, Server{ID: int32(id), Addr: string(s.Address), IsVoter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// RaftStatus is this broker's view of the metadata Raft log.
type RaftStatus struct {
	// State is "Leader", "Follower", "Candidate" or "Shutdown".
	State        string
	Term         uint64
	CommitIndex  uint64
	LastLogIndex uint64
	// AppliedIndex is the index of the last entry Raft handed to the FSM.
	AppliedIndex uint64
	// LastContact is when a follower last heard from the leader; zero on
	// the leader and before any contact.
	LastContact time.Time
}

// RaftStatus returns the Raft state of this broker; the zero value before
// Start. It reads Raft's atomics (and one short lock) and never waits on
// the Raft goroutine, so metrics and health endpoints may call it anytime.
func (n *Node) RaftStatus() RaftStatus {
	if n.raft == nil {
		return RaftStatus{}
	}
	s := RaftStatus{
		State:        n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		LastLogIndex: n.raft.LastIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
	}
	if s.State != raft.Leader.String() {
		s.LastContact = n.raft.LastContact()
	}
	return s
}

// AppliedIndex returns the Raft index of the last entry applied locally.
func (n *Node) AppliedIndex() uint64 { return n.fsm.appliedIndex() }

// LastLogIndex is the index of the last entry in this broker's Raft log
// (stored or received, not necessarily applied yet). A broker that has
// applied up to the LastLogIndex it saw at start has replayed its own log.
func (n *Node) LastLogIndex() uint64 {
	if n.raft == nil {
		return 0
	}
	return n.raft.LastIndex()
}

// Snapshot asks Raft for a snapshot of the image now and waits for it.
func (n *Node) Snapshot() error {
	if n.raft == nil {
		return errorf(ErrClosed, "node not started")
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	return nil
}

// Submit sends cmd to the controller and waits until it is committed and
// applied on this broker, or until ctx ends (Timeouts.Submit bounds a ctx
// without deadline). On the controller it is prepared (topic ids and
// replica assignments filled in, see CreateTopic) and applied through Raft;
// elsewhere it goes through the Forwarder. While no controller is known, or
// the broker reached turns out not to be it, Submit retries with backoff;
// at the deadline it returns an error wrapping ErrNoController or
// ErrNotController. A refused command returns the FSM's validation error
// (ErrTopicExists, ...) and changes nothing. ErrTimeout means the command
// may still be applied later. Call from any goroutine; blocks.
func (n *Node) Submit(ctx context.Context, cmd Command) (Result, error) {
	if n.raft == nil {
		return Result{}, errorf(ErrClosed, "node not started")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.Timeouts.Submit)
		defer cancel()
	}
	backoff := 10 * time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		if n.isClosed() {
			return Result{}, ErrClosed
		}
		var index uint64
		var err error
		if n.IsController() {
			index, err = n.commit(ctx, cmd)
		} else if addr, _ := n.raft.LeaderWithID(); addr != "" {
			index, err = n.fwd.Forward(ctx, string(addr), cmd)
		} else {
			err = notSent(errorf(ErrNoController, "broker %d knows no raft leader", n.cfg.ID))
		}
		if err == nil {
			if err := n.fsm.waitApplied(ctx, index); err != nil {
				return Result{Index: index}, errorf(ErrTimeout, "committed at index %d, not applied on broker %d yet", index, n.cfg.ID)
			}
			return Result{Index: index, Image: n.Image()}, nil
		}
		var ns *notSentError
		if !errors.As(err, &ns) {
			return Result{}, err
		}
		timer.Reset(backoff)
		select {
		case <-ctx.Done():
			return Result{}, ns.err
		case <-n.stop:
			return Result{}, ErrClosed
		case <-timer.C:
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

// Sync waits until this broker's image holds every metadata change the
// controller had committed when Sync was called: a read barrier (Raft's
// ReadIndex, answered by the controller without writing to the log). A
// broker that is asked about a topic it does not know yet calls it before
// saying the topic does not exist, so a topic created through one broker
// is known to every other broker's next answer. Bounded by ctx.
//
// It returns the index this broker has applied up to, for callers that
// wait for their own view (the broker's replicas) to catch up too.
func (n *Node) Sync(ctx context.Context) (uint64, error) {
	res, err := n.Submit(ctx, NewCommand(ReadIndex{}))
	return res.Index, err
}

// commit runs a command on the controller: prepare it against the local
// image, append it to the Raft log, and wait until it is applied here. It
// serves Submit on the controller and the forwarding server.
func (n *Node) commit(ctx context.Context, cmd Command) (uint64, error) {
	if !n.IsController() {
		return 0, notSent(errorf(ErrNotController, "broker %d", n.cfg.ID))
	}
	switch p := cmd.Payload.(type) {
	case ReadIndex:
		return n.readIndex(ctx)
	case BrokerHeartbeat:
		n.sessions.heartbeat(p.member(), p.ShuttingDown, p.StorageHeld, p.AppliedIndex, time.Now())
		return n.fsm.appliedIndex(), nil
	case AwaitReplay:
		return n.awaitReplay(ctx, p.Index)
	}
	prepared, err := prepare(n.Image(), cmd, n.cfg.DefaultPartitions, n.cfg.DefaultReplicationFactor)
	if err != nil {
		return 0, err
	}
	data, err := encodeCommand(prepared)
	if err != nil {
		return 0, errorf(ErrInvalidCommand, "encode %s: %v", cmd.Type(), err)
	}
	wait := n.cfg.Timeouts.Submit
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	f := n.raft.Apply(data, max(wait, time.Millisecond))
	if err := n.waitFuture(ctx, f); err != nil {
		return 0, err
	}
	res, _ := f.Response().(applyResult)
	return f.Index(), res.err
}

// readIndex answers ReadIndex on the controller. Once a quorum confirms it
// still leads, every change acknowledged so far is at or below its commit
// index; once its own FSM has applied that far, its last applied command is
// the index a reader must reach. It is a command's index, never a Raft
// no-op's or configuration's, which a reader's FSM would never apply.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	if err := n.waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
		return 0, err
	}
	commit := n.raft.CommitIndex()
	for n.raft.AppliedIndex() < commit {
		// Only a leader elected a moment ago has committed entries still
		// to apply; they are applied within its first round trips.
		select {
		case <-ctx.Done():
			return 0, errorf(ErrTimeout, "controller applying up to its commit index %d: %v", commit, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return n.fsm.appliedIndex(), nil
}

// waitFuture waits for a raft future or ctx, and translates raft's errors.
func (n *Node) waitFuture(ctx context.Context, f raft.Future) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.futures.Add(1)
	n.mu.Unlock()
	done := make(chan error, 1)
	// Raft resolves every future, at the latest when it shuts down, so this
	// goroutine ends; Close waits for it.
	go func() {
		defer n.futures.Done()
		done <- f.Error()
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return errorf(ErrTimeout, "waiting for raft: %v", ctx.Err())
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return notSent(errorf(ErrNotController, "broker %d: %v", n.cfg.ID, err))
	case errors.Is(err, raft.ErrLeadershipLost):
		return errorf(ErrNotController, "broker %d lost leadership; the command may or may not be applied", n.cfg.ID)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return notSent(errorf(ErrTimeout, "raft apply queue full"))
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return fmt.Errorf("cluster: raft: %w", err)
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// Close stops the node gracefully: it hands the controller role to another
// voter if it holds it, leaves the gossip cluster (so the controller fences
// it at once rather than after failure detection), shuts Raft down and waits
// for every goroutine. Open subscriptions end with ErrClosed. Idempotent.
func (n *Node) Close() error { return n.shutdown(true) }

// halt stops the node like a crash: no leadership transfer and no gossip
// goodbye, so peers notice only by failure detection. Tests use it.
func (n *Node) halt() error { return n.shutdown(false) }

func (n *Node) shutdown(graceful bool) error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		close(n.stop)
		n.cancel()
		var errs []error
		if graceful && n.IsController() {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.log.Info("controller handover failed; peers will elect after a timeout", "err", err)
			}
		}
		if n.members != nil {
			if graceful {
				n.members.leave(time.Second)
			} else {
				n.members.shutdown()
			}
		}
		if n.fwdSrv != nil {
			n.fwdSrv.Close()
		}
		if n.raft != nil {
			if err := n.raft.Shutdown().Error(); err != nil {
				errs = append(errs, fmt.Errorf("cluster: raft shutdown: %w", err))
			}
		}
		if n.transport != nil {
			_ = n.transport.Close()
		}
		if n.mux != nil {
			_ = n.mux.Close()
		}
		n.wg.Wait()
		n.futures.Wait()
		n.fsm.closeSubscriptions()
		if n.store != nil {
			if err := n.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("cluster: close raft log: %w", err))
			}
		}
		n.closeErr = errors.Join(errs...)
		n.log.Info("cluster node stopped", "graceful", graceful)
	})
	return n.closeErr
}

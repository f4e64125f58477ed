package cluster

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Member is a live broker as gossip sees it, decoded from its memberlist
// node metadata.
type Member struct {
	ID         int32
	KafkaAddr  string
	RaftAddr   string
	GossipAddr string
	HTTPAddr   string
	Rack       string
	// Incarnation is random per start of the broker process: a new one
	// means the broker restarted, and the controller re-registers it.
	Incarnation string
	// UncleanShutdown says the process before this incarnation did not
	// shut down cleanly (see RegisterBroker.UncleanShutdown).
	UncleanShutdown bool
	// BootstrapExpect is the broker's --bootstrap-expect.
	BootstrapExpect int
	// Listeners are the broker's advertised named Kafka listeners (see
	// Broker.Listeners); they change only with a restart, so with
	// Incarnation.
	Listeners string
	// Bootstrapped is set once the broker belongs to a formed Raft cluster
	// (it has Raft state, or bootstrapped, or follows a leader); brokers
	// waiting to bootstrap stand down when they see it.
	Bootstrapped bool
	// ClusterID is the cluster the broker belongs to, empty while it has
	// none yet (a new broker that has not received the metadata log).
	ClusterID string
	// DirectoryID identifies the broker's data directory (meta.properties):
	// a new one for a known broker id means its directory was wiped.
	DirectoryID string
}

// memberMeta is the node metadata each broker gossips (at most 512 bytes,
// memberlist's MetaMaxSize). The keys are short and stable: they are the
// gossip wire format between Barge versions.
type memberMeta struct {
	Version int    `json:"v"`
	ID      int32  `json:"id"`
	Kafka   string `json:"k"`
	Raft    string `json:"r"`
	HTTP    string `json:"h,omitempty"`
	Rack    string `json:"rk,omitempty"`
	Inc     string `json:"i"`
	Expect  int    `json:"e,omitempty"`
	Boot    bool   `json:"b,omitempty"`
	Cluster string `json:"c,omitempty"`
	Dir     string `json:"d,omitempty"`
	// Unclean is Member.UncleanShutdown; older brokers leave it out.
	Unclean bool `json:"u,omitempty"`
	// Listeners is Member.Listeners; older brokers leave it out.
	Listeners string `json:"l,omitempty"`
}

const memberMetaVersion = 1

func decodeMeta(n *memberlist.Node) (Member, error) {
	var m memberMeta
	if err := json.Unmarshal(n.Meta, &m); err != nil {
		return Member{}, fmt.Errorf("node %q: metadata: %v", n.Name, err)
	}
	if m.Version < 1 || m.ID < 0 || m.Raft == "" {
		return Member{}, fmt.Errorf("node %q: not a barge broker (meta %q)", n.Name, n.Meta)
	}
	return Member{
		ID: m.ID, KafkaAddr: m.Kafka, RaftAddr: m.Raft, HTTPAddr: m.HTTP, Rack: m.Rack, Incarnation: m.Inc,
		GossipAddr: n.Address(), BootstrapExpect: m.Expect, Bootstrapped: m.Boot, UncleanShutdown: m.Unclean,
		ClusterID: m.Cluster, DirectoryID: m.Dir, Listeners: m.Listeners,
	}, nil
}

// nodeName is a broker's memberlist node name. Deriving it from the broker
// id makes memberlist itself refuse a second live node with that id at
// another address, and lets a restarted broker take its old place.
func nodeName(id int32) string { return "broker-" + strconv.Itoa(int(id)) }

// membership runs this broker's memberlist: it gossips the broker's
// metadata, reports live members, refuses duplicate broker ids, and signals
// every membership change to its watchers. memberlist calls the delegate
// methods from its own goroutines.
type membership struct {
	log  *slog.Logger
	name string
	ml   *memberlist.Memberlist

	self string // this broker's gossip address

	updateMu sync.Mutex // held around ml.UpdateNode; see updateNode

	mu       sync.Mutex
	meta     memberMeta        // guarded by mu
	live     map[string]Member // guarded by mu: live nodes by node name, copied in the event callbacks
	dupErr   error             // guarded by mu: first duplicate-id or cluster-id conflict seen while joining
	watchers []chan struct{}   // guarded by mu: each cap 1, signalled without blocking
}

// newMembership creates and starts the memberlist. It binds the gossip
// address (TCP and UDP) and does not join anyone yet.
func newMembership(cfg *Config, meta memberMeta, log *slog.Logger) (*membership, error) {
	m := &membership{log: log, name: nodeName(cfg.ID), meta: meta, live: map[string]Member{}}
	mc := memberlist.DefaultLANConfig()
	mc.Name = m.name
	host, port, _ := splitHostPort(cfg.GossipAddr)
	if host != "" && net.ParseIP(host) == nil {
		// memberlist binds and advertises IP literals only: given a name
		// (barge-0:9094 in Compose or Kubernetes) it would listen on every
		// address and advertise the unspecified one, which peers cannot
		// dial. Resolve the name once, as the Raft address is.
		a, err := net.ResolveTCPAddr("tcp", cfg.GossipAddr)
		if err != nil {
			return nil, errorf(ErrInvalidNodeConfig, "gossip address %q: %v", cfg.GossipAddr, err)
		}
		host = a.IP.String()
	}
	mc.BindAddr, mc.BindPort = host, port
	if cfg.AdvertisedGossipAddr != "" {
		mc.AdvertiseAddr, mc.AdvertisePort, _ = splitHostPort(cfg.AdvertisedGossipAddr)
	} else if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		mc.AdvertiseAddr, mc.AdvertisePort = host, port
	}
	t := cfg.Timeouts
	mc.ProbeInterval, mc.ProbeTimeout = t.GossipProbeInterval, t.GossipProbeTimeout
	mc.GossipInterval, mc.PushPullInterval = t.GossipInterval, t.GossipPushPull
	mc.SuspicionMult = t.GossipSuspicionMult
	mc.DeadNodeReclaimTime = t.GossipDeadReclaim
	mc.TCPTimeout = max(t.GossipProbeInterval*5, time.Second)
	mc.Delegate, mc.Events, mc.Merge, mc.Alive, mc.Conflict = m, m, m, m, m
	if key := gossipKey(cfg.ClusterSecret); key != nil {
		// memberlist then encrypts and authenticates every packet and
		// stream (AES-GCM) and drops those it cannot open, logging why.
		mc.SecretKey = key
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Logger = newStdLogger(log)
	if cfg.wrapGossip != nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{host}, BindPort: port, Logger: mc.Logger})
		if err != nil {
			return nil, fmt.Errorf("cluster: gossip transport on %s: %w", cfg.GossipAddr, err)
		}
		if port == 0 && cfg.AdvertisedGossipAddr == "" {
			mc.BindPort, mc.AdvertisePort = nt.GetAutoBindPort(), nt.GetAutoBindPort()
		}
		mc.Transport = cfg.wrapGossip(nt)
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", cfg.GossipAddr, err)
	}
	m.ml = ml
	m.self = ml.LocalNode().Address() // no peer can have changed it yet
	return m, nil
}

// addr returns the gossip address other brokers use to reach this one.
func (m *membership) addr() string { return m.self }

// watch returns a channel that receives a signal (coalesced) after each
// membership change. Call before the change of interest can happen.
func (m *membership) watch() <-chan struct{} {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	m.watchers = append(m.watchers, ch)
	m.mu.Unlock()
	return ch
}

func (m *membership) signal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ch := range m.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// join contacts the seeds once. It returns ErrDuplicateBrokerID when a seed
// knows a live broker with this id at another address, and
// ErrIdentityMismatch when the seeds belong to another cluster.
func (m *membership) join(seeds []string) error {
	_, err := m.ml.Join(seeds)
	m.mu.Lock()
	dup := m.dupErr
	m.dupErr = nil
	m.mu.Unlock()
	if dup != nil {
		return dup
	}
	return err
}

// members returns the live brokers (alive or suspect), by id. It reads the
// copies the event callbacks keep: memberlist's Members() hands out
// pointers to nodes its goroutines keep writing.
//
// Members of another cluster are left out: memberlist may have let one in
// before either side knew its cluster id, and the controller must never
// register it.
func (m *membership) members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.live))
	for _, mem := range m.live {
		if foreignCluster(m.meta.Cluster, mem.ClusterID) {
			continue
		}
		out = append(out, mem)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return int(a.ID - b.ID) })
	return out
}

// setBootstrapped marks this broker as part of a formed Raft cluster in its
// gossip metadata.
func (m *membership) setBootstrapped() {
	m.mu.Lock()
	if m.meta.Boot {
		m.mu.Unlock()
		return
	}
	m.meta.Boot = true
	m.mu.Unlock()
	m.updateNode()
}

// updateNode gossips this broker's changed metadata. memberlist's
// UpdateNode is not safe for concurrent callers (it bumps the incarnation
// unlocked), and two goroutines update the metadata, so updateMu
// serialises them.
func (m *membership) updateNode() {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	if err := m.ml.UpdateNode(time.Second); err != nil {
		m.log.Warn("gossip metadata update failed", "err", err)
	}
}

// setClusterID puts the cluster id, once known, into this broker's gossip
// metadata, from where peers of other clusters see that it is not theirs.
func (m *membership) setClusterID(id string) {
	m.mu.Lock()
	if m.meta.Cluster == id {
		m.mu.Unlock()
		return
	}
	m.meta.Cluster = id
	m.mu.Unlock()
	m.updateNode()
}

func (m *membership) clusterID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.meta.Cluster
}

// foreignCluster reports whether a peer of cluster theirs belongs to
// another cluster than ours. A broker that knows no cluster id yet (new,
// before it received the metadata log) is nobody's foreigner: it joins the
// cluster whose seeds it was given.
func foreignCluster(ours, theirs string) bool {
	return ours != "" && theirs != "" && ours != theirs
}

// leave announces a graceful departure, then stops gossip.
func (m *membership) leave(timeout time.Duration) {
	if err := m.ml.Leave(timeout); err != nil {
		m.log.Warn("gossip leave failed", "err", err)
	}
	m.shutdown()
}

// shutdown stops gossip without a goodbye, as a crash would.
func (m *membership) shutdown() {
	if err := m.ml.Shutdown(); err != nil {
		m.log.Warn("gossip shutdown failed", "err", err)
	}
}

// NodeMeta implements memberlist.Delegate.
func (m *membership) NodeMeta(limit int) []byte {
	m.mu.Lock()
	b, _ := json.Marshal(m.meta)
	m.mu.Unlock()
	if len(b) > limit {
		// Addresses and rack are too long to gossip; a truncated meta would
		// be refused by every peer, so refuse loudly here instead.
		m.log.Error("gossip metadata too large", "size", len(b), "limit", limit)
		return nil
	}
	return b
}

// NotifyMsg, GetBroadcasts, LocalState and MergeRemoteState implement
// memberlist.Delegate; Barge gossips nothing but node metadata.
func (m *membership) NotifyMsg([]byte)                           {}
func (m *membership) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (m *membership) LocalState(join bool) []byte                { return nil }
func (m *membership) MergeRemoteState(buf []byte, join bool)     {}

// NotifyJoin, NotifyLeave and NotifyUpdate implement memberlist.EventDelegate.
// memberlist calls them holding its node lock, so n may be read here.
func (m *membership) NotifyJoin(n *memberlist.Node) {
	m.log.Debug("gossip member joined", "node", n.Name, "addr", n.Address())
	m.record(n)
}

func (m *membership) NotifyLeave(n *memberlist.Node) {
	m.log.Info("gossip member left or died", "node", n.Name, "addr", n.Address())
	m.mu.Lock()
	delete(m.live, n.Name)
	m.mu.Unlock()
	m.signal()
}

func (m *membership) NotifyUpdate(n *memberlist.Node) { m.record(n) }

func (m *membership) record(n *memberlist.Node) {
	mem, err := decodeMeta(n)
	m.mu.Lock()
	if err == nil {
		m.live[n.Name] = mem
	} else {
		delete(m.live, n.Name)
	}
	m.mu.Unlock()
	m.signal()
}

// NotifyMerge implements memberlist.MergeDelegate: a push/pull exchange
// (on join and periodically) is refused when the other side's live nodes
// claim a broker id that a different live node holds here (or that this
// broker holds), so a misconfigured broker fails to start instead of
// fighting over its id; and when they belong to another cluster (or to two
// clusters), so that two clusters never merge into one gossip pool even
// when one's brokers are given the other's seeds.
func (m *membership) NotifyMerge(peers []*memberlist.Node) error {
	local := map[int32]Member{}
	m.mu.Lock()
	ours := m.meta.Cluster
	for _, mem := range m.live {
		local[mem.ID] = mem
	}
	m.mu.Unlock()
	theirs := ""
	for _, p := range peers {
		if p.State != memberlist.StateAlive && p.State != memberlist.StateSuspect {
			continue
		}
		mem, err := decodeMeta(p)
		if err != nil {
			continue
		}
		switch {
		case foreignCluster(ours, mem.ClusterID):
			return m.refuseMerge(errorf(ErrIdentityMismatch,
				"broker %d at %s belongs to cluster %s, this broker to %s; the two clusters stay apart",
				mem.ID, p.Address(), mem.ClusterID, ours))
		case ours == "" && foreignCluster(theirs, mem.ClusterID):
			return m.refuseMerge(errorf(ErrIdentityMismatch,
				"the peers span two clusters, %s and %s (broker %d at %s)", theirs, mem.ClusterID, mem.ID, p.Address()))
		case mem.ClusterID != "":
			theirs = mem.ClusterID
		}
		n, ok := local[mem.ID]
		if !ok || n.GossipAddr == p.Address() {
			continue
		}
		return m.refuseMerge(errorf(ErrDuplicateBrokerID, "broker %d is live at %s and at %s",
			mem.ID, n.GossipAddr, p.Address()))
	}
	return nil
}

// refuseMerge logs a refused merge and keeps the first error for join.
func (m *membership) refuseMerge(err error) error {
	m.log.Error("refusing gossip merge", "err", err)
	m.mu.Lock()
	if m.dupErr == nil {
		m.dupErr = err
	}
	m.mu.Unlock()
	return err
}

// NotifyAlive implements memberlist.AliveDelegate: nodes whose metadata is
// not a Barge broker's, whose name does not match their broker id, or that
// belong to another cluster (and are not known here yet) are not peers.
// memberlist logs the reason and ignores the node.
func (m *membership) NotifyAlive(n *memberlist.Node) error {
	mem, err := decodeMeta(n)
	if err != nil {
		return err
	}
	if n.Name != nodeName(mem.ID) {
		return fmt.Errorf("node %q claims broker id %d", n.Name, mem.ID)
	}
	m.mu.Lock()
	ours := m.meta.Cluster
	_, known := m.live[n.Name]
	m.mu.Unlock()
	// A node let in before either side knew its cluster id must still get
	// its updates through, or it would stay here with an empty cluster id
	// and look like one of ours; members() leaves it out once they show
	// its cluster.
	if !known && foreignCluster(ours, mem.ClusterID) {
		return errorf(ErrIdentityMismatch, "broker %d belongs to cluster %s, this broker to %s", mem.ID, mem.ClusterID, ours)
	}
	return nil
}

// NotifyConflict implements memberlist.ConflictDelegate.
func (m *membership) NotifyConflict(existing, other *memberlist.Node) {
	m.log.Error("duplicate broker id in gossip; ignoring the newcomer",
		"node", existing.Name, "addr", existing.Address(), "other_addr", other.Address())
}

package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/barge-broker/barge/cluster"
)

// The cluster's health and Raft quorum over HTTP, for `barge cluster
// health` and `barge cluster quorum`, chaos harnesses and load balancers.
// Field names are a stable JSON API.

// healthListCap bounds the partition lists of /v1/cluster/health, as
// Redpanda's health overview does (128); the counts stay exact.
const healthListCap = 128

// offlineReasonCap bounds the reasons that explain single offline
// partitions; the count of leaderless partitions stays exact.
const offlineReasonCap = 10

// peerStatusTimeout bounds the question /v1/cluster/quorum asks each Raft
// member for its own log position.
const peerStatusTimeout = time.Second

// ClusterHealth is the answer of GET /v1/cluster/health: the answering
// broker's verdict on the whole cluster. The cluster is healthy when every
// registered broker is up (unfenced and alive in gossip), a controller
// exists, every partition has a leader and none is under-replicated, and
// the answering broker has loaded the metadata (otherwise its view is not
// worth trusting yet) and is not refusing writes for lack of disk space.
type ClusterHealth struct {
	IsHealthy bool `json:"is_healthy"`
	// Reasons says why the cluster is unhealthy, one entry per failed
	// check; empty when healthy.
	Reasons []string `json:"reasons"`
	// BrokerID answered; BrokerReady is its /readyz.
	BrokerID    int32 `json:"broker_id"`
	BrokerReady bool  `json:"broker_ready"`
	// ControllerID is -1 while no controller is known.
	ControllerID int32   `json:"controller_id"`
	Brokers      []int32 `json:"brokers"`
	BrokersDown  []int32 `json:"brokers_down"`
	// The partition lists hold at most 128 entries; the counts are exact.
	LeaderlessCount           int           `json:"leaderless_count"`
	LeaderlessPartitions      []PartitionID `json:"leaderless_partitions"`
	UnderReplicatedCount      int           `json:"under_replicated_count"`
	UnderReplicatedPartitions []PartitionID `json:"under_replicated_partitions"`
	// MetadataIndex is the Raft index of the metadata image judged.
	MetadataIndex uint64 `json:"metadata_index"`
}

// PartitionID names a partition in the health answer.
type PartitionID struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// healthInput is what the health verdict is computed from, gathered by
// serveHealth from the node so that judgeHealth stays a plain function.
type healthInput struct {
	self          int32
	ready         bool
	controller    int32 // cluster.NoLeader when none
	brokers       []cluster.Broker
	topics        []cluster.Topic
	alive         map[int32]bool // gossip's live members; nil when unknown
	metadataIndex uint64
	// diskFull, when set, is why the answering broker holds writes (its
	// data disk is below the free-space reserve).
	diskFull string
	// offlineLogs, when set, says which of the answering broker's logs a
	// write error took offline.
	offlineLogs string
	// voters are the Raft voters in the answering broker's configuration
	// (nil when unknown), to say whether a missing controller means a lost
	// quorum.
	voters []int32
}

// judgeHealth computes the verdict. Lists are sorted and capped at
// healthListCap; slices are never nil, so JSON has [] rather than null.
func judgeHealth(in healthInput) ClusterHealth {
	h := ClusterHealth{
		Reasons:                   []string{},
		BrokerID:                  in.self,
		BrokerReady:               in.ready,
		ControllerID:              in.controller,
		Brokers:                   []int32{},
		BrokersDown:               []int32{},
		LeaderlessPartitions:      []PartitionID{},
		UnderReplicatedPartitions: []PartitionID{},
		MetadataIndex:             in.metadataIndex,
	}
	byID := make(map[int32]cluster.Broker, len(in.brokers))
	for _, b := range in.brokers {
		byID[b.ID] = b
		h.Brokers = append(h.Brokers, b.ID)
		if b.Fenced || (in.alive != nil && !in.alive[b.ID]) {
			h.BrokersDown = append(h.BrokersDown, b.ID)
		}
	}
	var offline []string
	for _, t := range in.topics {
		for _, p := range t.Partitions {
			id := PartitionID{Topic: t.Name, Partition: p.Index}
			if p.Leader == cluster.NoLeader {
				if len(offline) < offlineReasonCap {
					offline = append(offline, cluster.OfflineReason(t, p, byID))
				}
				h.LeaderlessCount++
				if len(h.LeaderlessPartitions) < healthListCap {
					h.LeaderlessPartitions = append(h.LeaderlessPartitions, id)
				}
			}
			// During a move the replicas are the union of the old and new
			// ones; as in Kafka, the target is what must be in sync.
			if len(p.ISR) < len(p.TargetReplicas()) {
				h.UnderReplicatedCount++
				if len(h.UnderReplicatedPartitions) < healthListCap {
					h.UnderReplicatedPartitions = append(h.UnderReplicatedPartitions, id)
				}
			}
		}
	}
	if !in.ready {
		h.Reasons = append(h.Reasons, fmt.Sprintf("broker %d has not loaded the metadata yet", in.self))
	}
	if in.diskFull != "" {
		h.Reasons = append(h.Reasons, fmt.Sprintf("broker %d refuses produces: %s", in.self, in.diskFull))
	}
	if in.offlineLogs != "" {
		h.Reasons = append(h.Reasons, fmt.Sprintf("broker %d: %s", in.self, in.offlineLogs))
	}
	for _, b := range in.brokers {
		if b.StorageHeld && !b.Fenced {
			h.Reasons = append(h.Reasons, fmt.Sprintf("broker %d has its storage held (its data disk is below the free-space reserve, or a log of it is offline after a write error): it is in no ISR it can leave and leads only where no other replica can", b.ID))
		}
	}
	if in.controller == cluster.NoLeader {
		h.Reasons = append(h.Reasons, noControllerReason(in))
	}
	if len(in.brokers) == 0 {
		h.Reasons = append(h.Reasons, "no broker registered")
	}
	if n := len(h.BrokersDown); n > 0 {
		h.Reasons = append(h.Reasons, fmt.Sprintf("%d of %d brokers down: %s", n, len(h.Brokers), joinIDs(h.BrokersDown)))
	}
	// A broker gossip sees alive that the controller has fenced or never
	// registered does not heartbeat to the controller: it cannot reach the
	// metadata quorum (or is in a controlled shutdown), and is given no
	// replicas. Say so rather than just "down".
	var unreachable []int32
	for id, up := range in.alive {
		if b, ok := byID[id]; up && (!ok || b.Fenced) {
			unreachable = append(unreachable, id)
		}
	}
	if len(unreachable) > 0 {
		slices.Sort(unreachable)
		h.Reasons = append(h.Reasons, fmt.Sprintf("brokers alive in gossip but fenced or unregistered (not heartbeating to the controller): %s",
			joinIDs(unreachable)))
	}
	if h.LeaderlessCount > 0 {
		h.Reasons = append(h.Reasons, fmt.Sprintf("%d partitions without a leader", h.LeaderlessCount))
		// Why each stays offline rather than electing a replica that may
		// lack acknowledged records (KIP-966).
		h.Reasons = append(h.Reasons, offline...)
	}
	if h.UnderReplicatedCount > 0 {
		h.Reasons = append(h.Reasons, fmt.Sprintf("%d partitions under-replicated", h.UnderReplicatedCount))
	}
	h.IsHealthy = len(h.Reasons) == 0
	return h
}

// noControllerReason says why there is no controller: when the voters the
// answering broker sees alive in gossip are no majority, the metadata
// quorum is lost (writes of metadata stop until voters return, or an
// operator recovers it as the README describes); else an election is under
// way.
func noControllerReason(in healthInput) string {
	if len(in.voters) == 0 || in.alive == nil {
		return "no controller"
	}
	var down []int32
	for _, id := range in.voters {
		if !in.alive[id] {
			down = append(down, id)
		}
	}
	if up := len(in.voters) - len(down); up <= len(in.voters)/2 {
		return fmt.Sprintf("no controller: the metadata Raft quorum is lost, %d of %d voters down (%s); metadata changes and failovers stop until a majority is back (README: \"Losing the Raft quorum\")",
			len(down), len(in.voters), joinIDs(down))
	}
	return "no controller (an election is under way)"
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

// serveHealth answers /v1/cluster/health, always with 200 and the verdict
// in the body (is_healthy), as Redpanda's health overview does.
func (b *Broker) serveHealth(w http.ResponseWriter, _ *http.Request) {
	img := b.node.Image()
	in := healthInput{
		self:          b.cfg.ID,
		ready:         b.Ready(),
		controller:    cluster.NoLeader,
		brokers:       img.Brokers(),
		topics:        img.Topics(),
		metadataIndex: img.Index(),
	}
	if b.disk.full() {
		in.diskFull = b.disk.why()
	}
	if b.offline.held() {
		in.offlineLogs = b.offline.why()
	}
	if id, ok := b.node.Controller(); ok {
		in.controller = id
	}
	if members := b.node.Members(); len(members) > 0 {
		in.alive = make(map[int32]bool, len(members))
		for _, m := range members {
			// A decommissioned broker may run on until it is stopped; it
			// is no longer part of the cluster.
			if !img.Retired(m.ID) {
				in.alive[m.ID] = true
			}
		}
	}
	if servers, err := b.node.Servers(); err == nil {
		for _, s := range servers {
			if s.IsVoter {
				in.voters = append(in.voters, s.ID)
			}
		}
	}
	b.writeJSON(w, "/v1/cluster/health", judgeHealth(in))
}

// QuorumStatus is the answer of GET /v1/cluster/quorum: the metadata Raft
// group as the answering broker sees it, with each member's log position
// (asked of the member itself) and its lag behind the leader.
type QuorumStatus struct {
	BrokerID int32 `json:"broker_id"`
	// LeaderID is the Raft leader, the controller; -1 while none is known.
	LeaderID int32 `json:"leader_id"`
	// Term and CommitIndex are the answering broker's.
	Term        uint64 `json:"term"`
	CommitIndex uint64 `json:"commit_index"`
	// LeaderLastLogIndex is what lags are measured against: the leader's
	// last log index, or the highest reported when the leader did not
	// answer.
	LeaderLastLogIndex uint64         `json:"leader_last_log_index"`
	Voters             []QuorumMember `json:"voters"`
	NonVoters          []QuorumMember `json:"non_voters"`
}

// QuorumMember is one member of the Raft configuration. It is also the
// answer of GET /v1/cluster/quorum?local=true, a broker's own status.
type QuorumMember struct {
	ID       int32  `json:"id"`
	RaftAddr string `json:"raft_addr"`
	// State is leader, follower, candidate, shutdown, or unknown when the
	// member did not answer.
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	LastLogIndex uint64 `json:"last_log_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// Lag is LeaderLastLogIndex minus LastLogIndex, -1 when unknown.
	Lag int64 `json:"lag"`
	// LastContactMs is how long ago a follower last heard from the leader;
	// 0 on the leader, -1 when unknown or never.
	LastContactMs int64  `json:"last_contact_ms"`
	Reachable     bool   `json:"reachable"`
	Error         string `json:"error,omitempty"`
}

// localQuorumMember is this broker's own Raft status.
func (b *Broker) localQuorumMember() QuorumMember {
	rs := b.node.RaftStatus()
	m := QuorumMember{
		ID: b.cfg.ID, RaftAddr: b.node.RaftAddr(), State: strings.ToLower(rs.State),
		Term: rs.Term, LastLogIndex: rs.LastLogIndex, CommitIndex: rs.CommitIndex, AppliedIndex: rs.AppliedIndex,
		Lag: -1, LastContactMs: -1, Reachable: true,
	}
	switch {
	case m.State == "leader":
		m.LastContactMs = 0
	case !rs.LastContact.IsZero():
		m.LastContactMs = time.Since(rs.LastContact).Milliseconds()
	}
	return m
}

// serveQuorum answers /v1/cluster/quorum. It asks every other member for
// its status over HTTP in parallel, each within peerStatusTimeout.
func (b *Broker) serveQuorum(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("local") == "true" {
		b.writeJSON(w, "/v1/cluster/quorum", b.localQuorumMember())
		return
	}
	servers, err := b.node.Servers()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	img := b.node.Image()
	rs := b.node.RaftStatus()
	q := QuorumStatus{BrokerID: b.cfg.ID, LeaderID: cluster.NoLeader, Term: rs.Term, CommitIndex: rs.CommitIndex,
		Voters: []QuorumMember{}, NonVoters: []QuorumMember{}}
	if id, ok := b.node.Controller(); ok {
		q.LeaderID = id
	}
	members := make([]QuorumMember, len(servers))
	ctx, cancel := context.WithTimeout(r.Context(), peerStatusTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, s := range servers {
		if s.ID == b.cfg.ID {
			members[i] = b.localQuorumMember()
			continue
		}
		members[i] = QuorumMember{ID: s.ID, RaftAddr: s.Addr, State: "unknown", Lag: -1, LastContactMs: -1}
		br, ok := img.Broker(s.ID)
		if !ok || br.HTTPAddr == "" {
			members[i].Error = "no HTTP address registered"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := fetchQuorumMember(ctx, peerHTTPAddr(br))
			if err != nil {
				members[i].Error = err.Error()
				return
			}
			m.RaftAddr, m.Lag, m.Reachable = s.Addr, -1, true
			members[i] = m
		}()
	}
	wg.Wait()
	for _, m := range members {
		if m.Reachable && m.ID == q.LeaderID {
			q.LeaderLastLogIndex = m.LastLogIndex
			break
		}
		if m.Reachable {
			q.LeaderLastLogIndex = max(q.LeaderLastLogIndex, m.LastLogIndex)
		}
	}
	for i, s := range servers {
		m := &members[i]
		if m.Reachable {
			m.Lag = int64(q.LeaderLastLogIndex) - int64(m.LastLogIndex)
			m.Lag = max(m.Lag, 0)
		}
		if s.IsVoter {
			q.Voters = append(q.Voters, *m)
		} else {
			q.NonVoters = append(q.NonVoters, *m)
		}
	}
	sortMembers := func(ms []QuorumMember) {
		slices.SortFunc(ms, func(a, b QuorumMember) int { return int(a.ID) - int(b.ID) })
	}
	sortMembers(q.Voters)
	sortMembers(q.NonVoters)
	b.writeJSON(w, "/v1/cluster/quorum", q)
}

// peerHTTPAddr is where another broker's HTTP listener is reached: its
// --http address, with the host of its Kafka address when --http binds
// all interfaces (0.0.0.0:9644, :9644).
func peerHTTPAddr(br cluster.Broker) string {
	host, port, err := net.SplitHostPort(br.HTTPAddr)
	if err != nil {
		return br.HTTPAddr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if kh, _, err := net.SplitHostPort(br.KafkaAddr); err == nil {
			host = kh
		}
	}
	return net.JoinHostPort(host, port)
}

var peerHTTPClient = &http.Client{Timeout: peerStatusTimeout}

func fetchQuorumMember(ctx context.Context, addr string) (QuorumMember, error) {
	var m QuorumMember
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/cluster/quorum?local=true", nil)
	if err != nil {
		return m, err
	}
	resp, err := peerHTTPClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&m)
	return m, err
}

// writeJSON writes v as indented JSON.
func (b *Broker) writeJSON(w http.ResponseWriter, path string, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		b.logger.Debug("writing "+path, "err", err)
	}
}

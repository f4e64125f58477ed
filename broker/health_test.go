package broker

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cluster"
)

func TestJudgeHealth(t *testing.T) {
	brokers := []cluster.Broker{{ID: 1}, {ID: 2}, {ID: 3}}
	part := func(i, leader int32, replicas, isr []int32) cluster.Partition {
		return cluster.Partition{Index: i, Leader: leader, Replicas: replicas, ISR: isr}
	}
	healthyTopics := []cluster.Topic{{Name: "a", Partitions: []cluster.Partition{
		part(0, 1, []int32{1, 2}, []int32{1, 2}), part(1, 2, []int32{2, 3}, []int32{2, 3}),
	}}}
	alive := map[int32]bool{1: true, 2: true, 3: true}
	for _, tc := range []struct {
		name     string
		in       healthInput
		healthy  bool
		down     []int32
		leaderl  int
		urp      int
		reasonIn string
	}{
		{name: "healthy", in: healthInput{self: 1, ready: true, controller: 1, brokers: brokers, topics: healthyTopics, alive: alive}, healthy: true},
		{name: "no gossip view counts registrations only", in: healthInput{self: 1, ready: true, controller: 1, brokers: brokers, topics: healthyTopics}, healthy: true},
		{name: "fenced broker", in: healthInput{self: 1, ready: true, controller: 1,
			brokers: []cluster.Broker{{ID: 1}, {ID: 2, Fenced: true}, {ID: 3}}, topics: healthyTopics, alive: alive},
			down: []int32{2}, reasonIn: "1 of 3 brokers down: 2"},
		{name: "alive in gossip, fenced: cannot reach the controller", in: healthInput{self: 1, ready: true, controller: 1,
			brokers: []cluster.Broker{{ID: 1}, {ID: 2, Fenced: true}, {ID: 3}}, topics: healthyTopics, alive: alive},
			down: []int32{2}, reasonIn: "alive in gossip but fenced or unregistered (not heartbeating to the controller): 2"},
		{name: "alive in gossip, never registered", in: healthInput{self: 1, ready: true, controller: 1,
			brokers: brokers, topics: healthyTopics, alive: map[int32]bool{1: true, 2: true, 3: true, 4: true}},
			reasonIn: "unregistered (not heartbeating to the controller): 4"},
		{name: "dead in gossip, not fenced yet", in: healthInput{self: 1, ready: true, controller: 1, brokers: brokers, topics: healthyTopics,
			alive: map[int32]bool{1: true, 2: true}}, down: []int32{3}},
		{name: "no controller", in: healthInput{self: 1, ready: true, controller: cluster.NoLeader, brokers: brokers, topics: healthyTopics, alive: alive},
			reasonIn: "no controller"},
		{name: "no controller, a majority of voters up: an election", in: healthInput{self: 1, ready: true, controller: cluster.NoLeader,
			brokers: brokers, topics: healthyTopics, alive: map[int32]bool{1: true, 2: true}, voters: []int32{1, 2, 3}},
			down: []int32{3}, reasonIn: "no controller (an election is under way)"},
		{name: "quorum lost", in: healthInput{self: 1, ready: true, controller: cluster.NoLeader,
			brokers: brokers, topics: healthyTopics, alive: map[int32]bool{1: true}, voters: []int32{1, 2, 3}},
			down: []int32{2, 3}, reasonIn: "the metadata Raft quorum is lost, 2 of 3 voters down (2,3)"},
		{name: "not ready", in: healthInput{self: 1, controller: 1, brokers: brokers, topics: healthyTopics, alive: alive},
			reasonIn: "not loaded the metadata"},
		{name: "leaderless and under-replicated", in: healthInput{self: 1, ready: true, controller: 1, brokers: brokers, alive: alive,
			topics: []cluster.Topic{{Name: "b", Partitions: []cluster.Partition{
				part(0, cluster.NoLeader, []int32{3}, []int32{3}), part(1, 1, []int32{1, 2}, []int32{1}),
			}}}},
			leaderl: 1, urp: 1, reasonIn: "1 partitions without a leader"},
		{name: "offline partition explained", in: healthInput{self: 2, ready: true, controller: 2, alive: map[int32]bool{2: true, 3: true},
			brokers: []cluster.Broker{{ID: 1, Fenced: true}, {ID: 2, UncleanRestart: true}, {ID: 3}},
			topics: []cluster.Topic{{Name: "t", Partitions: []cluster.Partition{
				part(0, cluster.NoLeader, []int32{1, 2, 3}, []int32{1}),
			}}}},
			down: []int32{1}, leaderl: 1, urp: 1,
			reasonIn: "partition t-0 offline: no eligible replica (isr [1] down; broker 2 restarted uncleanly and has not caught up; broker 3 not in sync; unclean.leader.election.enable=false)"},
		{name: "no brokers", in: healthInput{self: 1, ready: true, controller: 1}, reasonIn: "no broker registered"},
		{name: "another broker's storage held", in: healthInput{self: 1, ready: true, controller: 1,
			brokers: []cluster.Broker{{ID: 1}, {ID: 2}, {ID: 3, StorageHeld: true}}, topics: healthyTopics, alive: alive},
			reasonIn: "broker 3 has its storage held"},
		{name: "own log offline", in: healthInput{self: 1, ready: true, controller: 1,
			brokers: brokers, topics: healthyTopics, alive: alive, offlineLogs: "1 partition log(s) offline"},
			reasonIn: "broker 1: 1 partition log(s) offline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := judgeHealth(tc.in)
			if h.IsHealthy != tc.healthy {
				t.Errorf("healthy = %v, want %v (reasons %q)", h.IsHealthy, tc.healthy, h.Reasons)
			}
			if h.IsHealthy != (len(h.Reasons) == 0) {
				t.Errorf("healthy %v with reasons %q", h.IsHealthy, h.Reasons)
			}
			if tc.down == nil {
				tc.down = []int32{}
			}
			if !slices.Equal(h.BrokersDown, tc.down) {
				t.Errorf("brokers down %v, want %v", h.BrokersDown, tc.down)
			}
			if h.LeaderlessCount != tc.leaderl || len(h.LeaderlessPartitions) != tc.leaderl {
				t.Errorf("leaderless %d %v, want %d", h.LeaderlessCount, h.LeaderlessPartitions, tc.leaderl)
			}
			if h.UnderReplicatedCount != tc.urp || len(h.UnderReplicatedPartitions) != tc.urp {
				t.Errorf("under-replicated %d %v, want %d", h.UnderReplicatedCount, h.UnderReplicatedPartitions, tc.urp)
			}
			if tc.reasonIn != "" && !strings.Contains(strings.Join(h.Reasons, "\n"), tc.reasonIn) {
				t.Errorf("reasons %q do not mention %q", h.Reasons, tc.reasonIn)
			}
		})
	}
}

func TestJudgeHealthCapsLists(t *testing.T) {
	var parts []cluster.Partition
	for i := range int32(300) {
		parts = append(parts, cluster.Partition{Index: i, Leader: cluster.NoLeader, Replicas: []int32{1, 2}, ISR: []int32{1}})
	}
	h := judgeHealth(healthInput{self: 1, ready: true, controller: 1, brokers: []cluster.Broker{{ID: 1}},
		topics: []cluster.Topic{{Name: "big", Partitions: parts}}})
	if h.LeaderlessCount != 300 || len(h.LeaderlessPartitions) != healthListCap {
		t.Errorf("leaderless %d listed %d, want 300 listed %d", h.LeaderlessCount, len(h.LeaderlessPartitions), healthListCap)
	}
	if h.UnderReplicatedCount != 300 || len(h.UnderReplicatedPartitions) != healthListCap {
		t.Errorf("under-replicated %d listed %d", h.UnderReplicatedCount, len(h.UnderReplicatedPartitions))
	}
}

// TestHealthAndQuorumEndpoints checks the HTTP answers of a single broker
// and the Raft metrics.
func TestHealthAndQuorumEndpoints(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get("http://" + b.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
	}
	var h ClusterHealth
	waitFor(t, 10*time.Second, "healthy", func() bool {
		get("/v1/cluster/health", &h)
		return h.IsHealthy
	})
	if h.ControllerID != 0 || !slices.Equal(h.Brokers, []int32{0}) || len(h.BrokersDown) != 0 {
		t.Errorf("health %+v", h)
	}
	var q QuorumStatus
	get("/v1/cluster/quorum", &q)
	if q.LeaderID != 0 || q.Term < 1 || len(q.Voters) != 1 || len(q.NonVoters) != 0 {
		t.Fatalf("quorum %+v", q)
	}
	if v := q.Voters[0]; v.ID != 0 || v.State != "leader" || !v.Reachable || v.Lag != 0 || v.LastLogIndex < 1 || v.LastContactMs != 0 {
		t.Errorf("voter %+v", v)
	}
	resp, err := http.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"barge_active_controller 1", "barge_under_min_isr_partitions 0",
		"barge_leader_elections_total 0", "barge_isr_shrinks_total 0", "barge_isr_expands_total 0", "barge_raft_commit_index "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if term, ok := metricValue(string(body), "barge_raft_term"); !ok || term < 1 {
		t.Errorf("barge_raft_term = %v (found %v), want >= 1", term, ok)
	}
}

// metricValue reads an unlabelled sample from a Prometheus text page.
func metricValue(page, name string) (float64, bool) {
	for _, line := range strings.Split(page, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// The address the cluster records for a broker's HTTP listener is the
// bound one: peers and `barge cluster quorum` dial it, and with --http on
// port 0 the configured ":0" reaches nothing.
func TestRegisteredHTTPAddrIsTheBoundOne(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	br, ok := b.Node().Image().Broker(b.cfg.ID)
	if !ok {
		t.Fatalf("broker %d not in the image", b.cfg.ID)
	}
	if br.HTTPAddr != b.HTTPAddr() || strings.HasSuffix(br.HTTPAddr, ":0") {
		t.Fatalf("image records http %q, the listener is bound to %q", br.HTTPAddr, b.HTTPAddr())
	}
}

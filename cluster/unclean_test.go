package cluster

import (
	"slices"
	"testing"
)

// The tests below follow one partition of three replicas (min.insync.replicas
// 2 by default) through fences and restarts. They look at the leader and the
// ISR only, so they also compile against the FSM before unclean restarts were
// handled, where the first three fail.

func uncleanRegister(id int32) RegisterBroker {
	r := registerCmd(id, "")
	r.UncleanShutdown = true
	return r
}

// lastMemberStanding fences 3, 2 and then 1, the leader: 2 leaves the ISR
// while it is below the minimum, so it stays eligible (ELR); 1 is the last
// ISR member and the partition goes offline.
func lastMemberStanding(t *testing.T) *imageBuilder {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}}})
	for _, id := range []int32{3, 2, 1} {
		b.must(FenceBroker{ID: id})
	}
	if p := b.part("t", 0); p.Leader != NoLeader || !slices.Equal(p.ISR, []int32{1}) {
		t.Fatalf("after fencing all: %+v, want offline with isr [1]", p)
	}
	return b
}

func TestUncleanRestartedLastISRMemberNotReelected(t *testing.T) {
	b := lastMemberStanding(t)
	b.must(uncleanRegister(1))
	p := b.part("t", 0)
	if p.Leader != NoLeader || slices.Contains(p.ISR, 1) {
		t.Fatalf("broker 1 restarted uncleanly while broker 2 may hold more: %+v, want offline without 1 in the isr", p)
	}
	// It stays out when broker 2 comes back and leads: only its leader's
	// AlterPartition can add it again.
	b.must(registerCmd(2, ""))
	p = b.part("t", 0)
	if p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
		t.Fatalf("after broker 2 returned: %+v, want leader 2 with isr [2]", p)
	}
}

func TestELRMemberElectedWhenISRHasNoLiveMember(t *testing.T) {
	b := lastMemberStanding(t)
	epoch := b.part("t", 0).LeaderEpoch
	// Broker 2 left the ISR while it was below the minimum: the high
	// watermark has not moved since, so it holds every committed record.
	b.must(registerCmd(2, ""))
	p := b.part("t", 0)
	if p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) || p.LeaderEpoch <= epoch {
		t.Fatalf("broker 2 (eligible) returned: %+v, want leader 2, isr [2], leader epoch above %d", p, epoch)
	}
	// Broker 3 left while the ISR still had two members; it is not eligible.
	b = lastMemberStanding(t)
	b.must(registerCmd(3, ""))
	if p := b.part("t", 0); p.Leader != NoLeader {
		t.Fatalf("broker 3 (out of sync) returned: %+v, want offline", p)
	}
}

func TestCleanRestartReelectsLastISRMember(t *testing.T) {
	b := lastMemberStanding(t)
	b.must(registerCmd(1, ""))
	if p := b.part("t", 0); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Fatalf("broker 1 restarted cleanly: %+v, want leader 1 with isr [1]", p)
	}
}

// A leader that restarts uncleanly before the failure detector fenced it
// hands leadership to the next ISR member at once.
func TestUncleanRestartOfLiveLeaderMovesLeadership(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}}})
	before := b.part("t", 0)
	b.must(uncleanRegister(1))
	p := b.part("t", 0)
	if p.Leader != 2 || !slices.Equal(p.ISR, []int32{2, 3}) || p.LeaderEpoch <= before.LeaderEpoch {
		t.Fatalf("leader 1 restarted uncleanly: %+v, want leader 2 with isr [2 3] at a new epoch", p)
	}
	// The same process registering again (here at a new address) is not
	// another restart: once its leader added it back, it stays.
	b = newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}}})
	reg := uncleanRegister(1)
	reg.Incarnation = "inc-a"
	b.must(reg)
	p = b.part("t", 0)
	b.must(AlterPartition{Topic: "t", Partition: 0, Leader: 2, LeaderEpoch: p.LeaderEpoch,
		PartitionEpoch: p.PartitionEpoch, ISR: []int32{1, 2, 3}})
	reg.KafkaAddr = "k2"
	b.must(reg)
	if p := b.part("t", 0); !slices.Equal(p.ISR, []int32{1, 2, 3}) {
		t.Fatalf("re-registration of the same incarnation dropped broker 1 again: %+v", p)
	}
}

// The e2e scenario: with 3 stopped, 2 restarts uncleanly and 1 dies. 1 is
// then the only replica that may hold every committed record; after its own
// unclean restart it leads, as no replica can do better. With unclean
// election on, 2 leads as soon as it is back, at the price of the records
// its log lost.
func TestUncleanRestartOfSoleCandidate(t *testing.T) {
	for _, unclean := range []bool{false, true} {
		b := newBuilder(t, 1, 2, 3)
		ct := CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}}}
		if unclean {
			ct.Configs = map[string]string{ConfigUncleanLeaderElection: "true"}
		}
		b.must(ct)
		b.must(FenceBroker{ID: 3})
		b.must(uncleanRegister(2))
		b.must(FenceBroker{ID: 1})
		b.must(registerCmd(3, ""))
		p := b.part("t", 0)
		if unclean {
			if p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
				t.Fatalf("unclean election on: %+v, want leader 2 alone", p)
			}
			continue
		}
		if p.Leader != NoLeader || !slices.Equal(p.ISR, []int32{1}) || len(p.ELR) != 0 {
			t.Fatalf("2 unclean, 3 out of sync, 1 fenced: %+v, want offline with isr [1] and no elr", p)
		}
		tp, _ := b.img.Topic("t")
		want := "partition t-0 offline: no eligible replica (isr [1] down; broker 2 restarted uncleanly and has not caught up; broker 3 not in sync; unclean.leader.election.enable=false)"
		if got := OfflineReason(tp, p, b.img.brokers); got != want {
			t.Fatalf("offline reason:\n got %s\nwant %s", got, want)
		}
		b.must(uncleanRegister(1))
		if p := b.part("t", 0); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
			t.Fatalf("sole candidate 1 restarted uncleanly: %+v, want leader 1", p)
		}
	}
}

func TestUncleanShutdownNeedsVersion2(t *testing.T) {
	b := newBuilder(t, 1)
	cmd := NewCommand(uncleanRegister(1))
	cmd.Version = 1
	if _, _, err := b.img.apply(b.img.index+1, cmd); err == nil {
		t.Fatal("version 1 register_broker with unclean_shutdown accepted")
	}
	cmd.Payload = registerCmd(1, "")
	if _, _, err := b.img.apply(b.img.index+1, cmd); err != nil {
		t.Fatalf("version 1 register_broker: %v", err)
	}
}

// The other order of the same crash: the controller fences 1 while the
// dead process of 2 still looks live, so 2 leads for a moment; its unclean
// registration then empties the ISR, and 1, the only eligible replica left,
// leads once it is back, unclean restart and all.
func TestUncleanRestartAfterZombieLeader(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}}})
	b.must(FenceBroker{ID: 3})
	b.must(FenceBroker{ID: 1})
	if p := b.part("t", 0); p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) || !slices.Equal(p.ELR, []int32{1}) {
		t.Fatalf("after fencing 3 and 1: %+v, want leader 2, isr [2], elr [1]", p)
	}
	b.must(uncleanRegister(2))
	p := b.part("t", 0)
	if p.Leader != NoLeader || len(p.ISR) != 0 || !slices.Equal(p.ELR, []int32{1}) {
		t.Fatalf("2 restarted uncleanly: %+v, want offline, isr [], elr [1]", p)
	}
	b.must(registerCmd(3, ""))
	if p := b.part("t", 0); p.Leader != NoLeader {
		t.Fatalf("3 (out of sync) returned: %+v, want offline", p)
	}
	b.must(uncleanRegister(1))
	if p := b.part("t", 0); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) || len(p.ELR) != 0 {
		t.Fatalf("1 (only eligible replica) restarted uncleanly: %+v, want leader 1, isr [1], no elr", p)
	}
}

// Package nemesis plans barge-jepsen's faults. A Schedule is a pure
// function of the seed and the run's shape, so the same seed gives the
// same faults at the same times against the same nodes; the runner
// applies it.
package nemesis

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Fault kinds.
const (
	Kill      = "kill"      // SIGKILL, restart at the window's end
	Pause     = "pause"     // SIGSTOP, SIGCONT at the window's end
	Partition = "partition" // cut one node off from the other brokers
)

// Kinds are the fault kinds, in flag order.
var Kinds = []string{Kill, Pause, Partition}

// Leader as a Fault's Node means the node that leads partition
// LeaderOf when the fault starts.
const Leader = -1

// Fault is one window: Kind applied to Node (an index into the nodes, or
// Leader) from Start to End, times from the start of the workload.
type Fault struct {
	Kind     string        `json:"kind"`
	Node     int           `json:"node"`
	LeaderOf int32         `json:"leader_of,omitempty"`
	Start    time.Duration `json:"start"`
	End      time.Duration `json:"end"`
}

func (f Fault) String() string {
	target := fmt.Sprintf("n%d", f.Node+1)
	if f.Node == Leader {
		target = fmt.Sprintf("leader of partition %d", f.LeaderOf)
	}
	return fmt.Sprintf("%s %s %v-%v", f.Kind, target, f.Start.Round(time.Millisecond), f.End.Round(time.Millisecond))
}

// Plan shapes a schedule.
type Plan struct {
	Seed       uint64
	Kinds      []string
	Nodes      int
	Partitions int
	Total      time.Duration // the workload's length
	// TargetLeader makes every kill hit the current leader of a
	// partition (the unsafe run's negative control: an acks=1 leader
	// killed right after acknowledging writes loses them).
	TargetLeader bool
}

// Bounds of the windows. The first fault waits for the workload to warm
// up; the last must end early enough for the cluster to heal before the
// workload stops; quiet periods between faults let ISRs fill again, so
// faults test recovery from one failure at a time (RF=3 tolerates one).
const (
	warmup    = 4 * time.Second
	cooldown  = 3 * time.Second
	minFault  = 3 * time.Second
	maxFault  = 7 * time.Second
	minQuiet  = 3 * time.Second
	maxQuiet  = 6 * time.Second
	maxFaults = 1000
)

// ParseKinds reads a comma-separated --nemesis value.
func ParseKinds(s string) ([]string, error) {
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if k == "" || k == "none" {
			continue
		}
		if !slices.Contains(Kinds, k) {
			return nil, fmt.Errorf("nemesis: unknown fault %q (want some of %s, or none)", k, strings.Join(Kinds, ","))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Schedule returns the faults of p, in time order, never overlapping.
func Schedule(p Plan) []Fault {
	if len(p.Kinds) == 0 || p.Nodes == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	var out []Fault
	t := warmup
	// Kinds come in rounds, each a seeded shuffle of all of them, so a
	// short run still has every kind asked for.
	var round []string
	for len(out) < maxFaults {
		if len(round) == 0 {
			round = slices.Clone(p.Kinds)
			rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		}
		f := Fault{Kind: round[0], Node: rng.IntN(p.Nodes), Start: t}
		round = round[1:]
		f.End = t + between(minFault, maxFault)
		if f.End > p.Total-cooldown {
			break
		}
		if p.TargetLeader && f.Kind == Kill && p.Partitions > 0 {
			f.Node, f.LeaderOf = Leader, int32(rng.IntN(p.Partitions))
		}
		out = append(out, f)
		t = f.End + between(minQuiet, maxQuiet)
	}
	return out
}

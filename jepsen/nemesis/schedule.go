// Package nemesis plans barge-jepsen's faults. A Schedule is a pure
// function of the seed and the run's shape, so the same seed gives the
// same faults at the same times against the same nodes; the runner
// applies it.
package nemesis

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Fault kinds.
const (
	Kill      = "kill"       // SIGKILL, restart at the window's end
	Pause     = "pause"      // SIGSTOP, SIGCONT at the window's end
	Partition = "partition"  // iptables rules between brokers (Shape says which)
	Netem     = "netem"      // delay or packet loss on one broker's link
	PowerLoss = "power-loss" // SIGKILL, then cut the tail of its newest segments
	DiskFull  = "disk-full"  // fill the broker's (tmpfs) data file system
	Clock     = "clock"      // refused: see ErrClock
)

// Kinds are the fault kinds barge-jepsen applies, in flag order.
var Kinds = []string{Kill, Pause, Partition, Netem, PowerLoss, DiskFull}

// ErrClock explains why clock faults are refused.
var ErrClock = errors.New("nemesis: clock bumps need a fake clock in the broker process, and there is none: " +
	"barge is a static Go binary (no libfaketime via LD_PRELOAD), Go reads time through the vDSO, and time " +
	"namespaces shift only the monotonic and boot clocks, once, at creation")

// Shapes: whom a fault hits. Nodes chosen at random are fixed in the
// schedule; leader and controller are looked up when the fault starts.
const (
	One        = "one"        // Nodes[0]
	Minority   = "minority"   // Nodes: fewer than half
	All        = "all"        // every node
	Leader     = "leader"     // the leader of partition LeaderOf
	Controller = "controller" // the Raft leader (Metadata's controller id)
	// Partition shapes.
	Isolate = "isolate" // Nodes[0] (or the leader, or the controller) cut off from every other broker
	Halves  = "halves"  // Nodes (a minority) cut off from the rest
	Bridge  = "bridge"  // Nodes[0] sees everyone; the others split in two halves that do not see each other
	Ring    = "ring"    // Nodes in a ring order, each seeing only its two neighbours
	OneWay  = "one-way" // Nodes[0] can receive from the other brokers but not send to them
	// Netem shapes.
	Delay = "delay"
	Loss  = "loss"
)

// Fault is one window: Kind applied from Start to End (times from the
// start of the workload) to the nodes Shape and Nodes name.
type Fault struct {
	Kind  string `json:"kind"`
	Shape string `json:"shape"`
	// Target selects who is hit when Shape needs more than Nodes: One,
	// Leader or Controller (for an isolate partition, a pause, a kill).
	Target   string        `json:"target,omitempty"`
	Nodes    []int         `json:"nodes,omitempty"`
	LeaderOf int32         `json:"leader_of,omitempty"`
	Start    time.Duration `json:"start"`
	End      time.Duration `json:"end"`
}

func (f Fault) String() string {
	who := ""
	switch f.Target {
	case Leader:
		who = fmt.Sprintf(" leader of partition %d", f.LeaderOf)
	case Controller:
		who = " controller"
	default:
		var ns []string
		for _, n := range f.Nodes {
			ns = append(ns, fmt.Sprintf("n%d", n+1))
		}
		if len(ns) > 0 {
			who = " " + strings.Join(ns, ",")
		}
	}
	return fmt.Sprintf("%s %s%s %v-%v", f.Kind, f.Shape, strings.TrimRight(who, " "), f.Start.Round(time.Millisecond), f.End.Round(time.Millisecond))
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
	// PowerLossReplicas above 1 is the power-loss limit test: every
	// broker is killed and that many of them lose their tails at once,
	// more than min.insync.replicas - 1 = 1 tolerates.
	PowerLossReplicas int
}

// Bounds of the windows. The first fault waits for the workload to warm
// up; the last must end early enough for the cluster to heal before the
// workload stops; quiet periods between faults let ISRs fill again, so
// faults test recovery from one failure at a time (RF=3 tolerates one).
// About one quiet period in six is long (as Bufstream's suite leaves a
// quarter of its periods fault-free), to see the cluster settle.
const (
	warmup       = 4 * time.Second
	cooldown     = 3 * time.Second
	minFault     = 3 * time.Second
	maxFault     = 7 * time.Second
	minQuiet     = 3 * time.Second
	maxQuiet     = 6 * time.Second
	longQuietMin = 10 * time.Second
	longQuietMax = 15 * time.Second
	maxFaults    = 2000
)

// ParseKinds reads a comma-separated --nemesis value ("all" for every
// kind).
func ParseKinds(s string) ([]string, error) {
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case k == "" || k == "none":
			continue
		case k == "all":
			for _, a := range Kinds {
				if !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
			continue
		case k == Clock:
			return nil, ErrClock
		case !slices.Contains(Kinds, k):
			return nil, fmt.Errorf("nemesis: unknown fault %q (want some of %s, all, or none)", k, strings.Join(Kinds, ","))
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
		f := shape(rng, p, round[0])
		round = round[1:]
		f.Start, f.End = t, t+between(minFault, maxFault)
		if f.End > p.Total-cooldown {
			break
		}
		out = append(out, f)
		if rng.IntN(6) == 0 {
			t = f.End + between(longQuietMin, longQuietMax)
		} else {
			t = f.End + between(minQuiet, maxQuiet)
		}
	}
	return out
}

// shape picks whom a fault of kind hits.
func shape(rng *rand.Rand, p Plan, kind string) Fault {
	f := Fault{Kind: kind, Shape: One, Nodes: []int{rng.IntN(p.Nodes)}}
	leader := func() {
		f.Target, f.Nodes, f.LeaderOf = Leader, nil, int32(rng.IntN(max(1, p.Partitions)))
	}
	pick := func(n int) []int { return rng.Perm(p.Nodes)[:n] }
	minority := max(1, (p.Nodes-1)/2)
	switch kind {
	case Kill:
		switch r := rng.IntN(10); {
		case p.TargetLeader:
			f.Shape = One
			leader()
		case r < 2:
			f.Shape = One
			leader()
		case r < 4:
			f.Shape, f.Nodes = Minority, pick(minority)
		case r < 5:
			f.Shape, f.Nodes = All, nil
		}
	case Pause:
		if rng.IntN(3) == 0 {
			leader()
		}
	case Partition:
		shapes := []string{Isolate, Isolate, Halves, Bridge, OneWay}
		if p.Nodes >= 5 {
			shapes = append(shapes, Ring)
		}
		f.Shape = shapes[rng.IntN(len(shapes))]
		switch f.Shape {
		case Isolate:
			switch rng.IntN(3) {
			case 0:
				leader()
			case 1:
				f.Target, f.Nodes = Controller, nil
			}
		case Halves:
			f.Nodes = pick(minority)
		case Ring:
			f.Nodes = rng.Perm(p.Nodes)
		}
	case Netem:
		f.Shape = []string{Delay, Loss}[rng.IntN(2)]
	case PowerLoss:
		if k := min(p.PowerLossReplicas, p.Nodes); k > 1 {
			f.Shape, f.Nodes = All, pick(k)
		}
	}
	return f
}

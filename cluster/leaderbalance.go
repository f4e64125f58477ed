package cluster

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Automatic preferred-leader rebalancing (Kafka's auto.leader.rebalance.enable,
// leader.imbalance.per.broker.percentage and
// leader.imbalance.check.interval.seconds). After a failover the surviving
// replicas keep the leadership they took over, so the brokers that came back
// lead nothing and the load stays skewed; every check interval the
// controller hands leadership back to the preferred replica (the first of
// the replica list) where that is safe.
//
// The per-broker percentage gate is the ZooKeeper controller's rule; KRaft's
// controller has none and rebalances every misplaced leader it can, which
// is what percentage 0 does here.

// LeaderRebalance configures the controller's automatic preferred-leader
// elections. The zero value disables them, so that tests and tools that
// build a Node by hand see leadership move only when they move it; `barge
// serve` enables them by default, as Kafka does.
type LeaderRebalance struct {
	// Enabled is auto.leader.rebalance.enable.
	Enabled bool
	// ImbalancePercentage is leader.imbalance.per.broker.percentage: a
	// broker's partitions are rebalanced only once more than this share
	// (in percent) of the partitions it is the preferred replica of are
	// led by another broker. 0 rebalances any imbalance.
	ImbalancePercentage int
	// CheckInterval is leader.imbalance.check.interval.seconds; 0 takes
	// DefaultLeaderImbalanceCheckInterval.
	CheckInterval time.Duration
}

// Kafka's defaults.
const (
	DefaultLeaderImbalancePercentage    = 10
	DefaultLeaderImbalanceCheckInterval = 300 * time.Second
)

// maxRebalanceElections bounds the elections of one plan, so a cluster
// with many thousands of misplaced leaders moves them in several batches
// (planned again at once, from the newer image) rather than in one long
// burst of commits (KRaft caps its batch the same way).
const maxRebalanceElections = 1000

// planLeaderRebalance returns the preferred-leader elections one check
// makes, in topic then partition order. For each broker it counts the
// partitions whose preferred replica it is and, of those, the ones another
// broker leads (or nobody: an offline partition counts as imbalanced, as
// in Kafka); when the imbalanced share exceeds percentage, each of those
// partitions whose preferred replica may lead now is elected back to it.
// "May lead" is exactly what the FSM's ElectPreferred accepts: the broker
// is registered, unfenced, and in the partition's ISR. So leadership never
// goes to a replica that has not caught up, to a fenced broker, or to one
// in controlled shutdown (it fences itself first). Offline partitions are
// left to the controller's clean elections (planMetadata). Pure and
// deterministic: the same image gives the same plan on every controller.
func planLeaderRebalance(img *Image, percentage int) []ElectLeader {
	type counts struct{ preferred, imbalanced int }
	per := map[int32]*counts{}
	var candidates []ElectLeader
	for _, t := range img.Topics() { // sorted by name
		for _, p := range t.Partitions {
			if len(p.Replicas) == 0 || p.Reassigning() {
				// A partition being moved gets its leader from the move's
				// completion; as in Kafka, rebalancing leaves it alone.
				continue
			}
			pref := p.Replicas[0]
			c := per[pref]
			if c == nil {
				c = &counts{}
				per[pref] = c
			}
			c.preferred++
			if p.Leader == pref {
				continue
			}
			c.imbalanced++
			if p.Leader == NoLeader || !img.isLive(pref) || !slices.Contains(p.ISR, pref) {
				continue
			}
			candidates = append(candidates, ElectLeader{Topic: t.Name, Partition: p.Index, Election: ElectPreferred})
		}
	}
	var out []ElectLeader
	for _, e := range candidates {
		p, _ := img.Partition(e.Topic, e.Partition)
		c := per[p.Replicas[0]]
		// imbalanced/preferred > percentage/100, in integers.
		if c.imbalanced*100 <= percentage*c.preferred {
			continue
		}
		out = append(out, e)
		if len(out) == maxRebalanceElections {
			break
		}
	}
	return out
}

// leaderRebalanceLoop runs the rebalance check every CheckInterval while
// this broker is the controller. It is its own loop, not a step of
// reconcile, so that a check over many partitions never delays fencing a
// dead broker.
func (n *Node) leaderRebalanceLoop() {
	defer n.wg.Done()
	rb := n.cfg.LeaderRebalance
	tick := time.NewTicker(rb.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		// A full batch leaves more to do: plan again at once.
		for n.IsController() && n.rebalanceLeaders(rb.ImbalancePercentage) == maxRebalanceElections {
			select {
			case <-n.stop:
				return
			default:
			}
		}
	}
}

// rebalanceLeaders carries out one plan and returns how many elections
// succeeded (a full batch of successes leaves more to do). A refused
// election (the image moved on between the plan and the commit) is logged
// and skipped: the next check plans from the new image.
func (n *Node) rebalanceLeaders(percentage int) int {
	plan := planLeaderRebalance(n.Image(), percentage)
	if len(plan) == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Timeouts.Submit)
	defer cancel()
	moved := 0
	for _, e := range plan {
		if _, err := n.commit(ctx, NewCommand(e)); err != nil {
			if errors.Is(err, ErrNotController) || errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return 0
			}
			n.log.Info("preferred leader election skipped", "topic", e.Topic, "partition", e.Partition, "err", err)
			continue
		}
		moved++
	}
	n.log.Info("leader rebalance: elected preferred leaders", "partitions", moved, "planned", len(plan))
	return moved
}

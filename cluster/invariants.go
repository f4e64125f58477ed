package cluster

import (
	"fmt"
	"slices"
)

// assertf reports a broken invariant: a bug, never an operating error. In
// race-enabled builds (tests, `make test`) it panics; otherwise the caller
// handles the failure as an error.
func assertf(ok bool, format string, args ...any) {
	if !ok && raceEnabled {
		panic(fmt.Sprintf("cluster: invariant violated: "+format, args...))
	}
}

// checkELR checks the static KIP-966 invariants of a partition: the ELR
// holds distinct replicas outside the ISR, and some replica is always known
// to hold every committed record (ISR ∪ ELR is never empty), except on an
// offline partition whose last such replica came back with a wiped data
// directory (dropReplacedReplica): then none is, and it stays offline until
// an unclean election.
func checkELR(p Partition) error {
	if hasDuplicates(p.ELR) {
		return fmt.Errorf("elr %v has duplicates", p.ELR)
	}
	for _, r := range p.ELR {
		if !slices.Contains(p.Replicas, r) || slices.Contains(p.ISR, r) {
			return fmt.Errorf("elr %v not a subset of replicas %v disjoint from isr %v", p.ELR, p.Replicas, p.ISR)
		}
	}
	if len(p.ISR) == 0 && len(p.ELR) == 0 && p.Leader != NoLeader {
		return fmt.Errorf("isr and elr both empty")
	}
	return nil
}

// checkLeaderTransition checks one partition's step from a to b: a new
// leader comes from the previous ISR or ELR, the replicas that may hold
// every committed record, unless the election was allowed to be unclean.
func checkLeaderTransition(a, b Partition, uncleanAllowed bool) error {
	if b.Leader == NoLeader || b.Leader == a.Leader || uncleanAllowed {
		return nil
	}
	if !slices.Contains(a.ISR, b.Leader) && !slices.Contains(a.ELR, b.Leader) {
		return fmt.Errorf("leader %d was in neither isr %v nor elr %v", b.Leader, a.ISR, a.ELR)
	}
	return nil
}

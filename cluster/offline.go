package cluster

import (
	"fmt"
	"slices"
	"strings"
)

// OfflineReason explains, for health reports, why partition p of topic t has
// no leader, in the terms of the election rules (elect): which ISR and ELR
// members are down, and why each other replica may not lead. brokers holds
// the registered brokers by id. It is "" for a partition with a leader.
func OfflineReason(t Topic, p Partition, brokers map[int32]Broker) string {
	if p.Leader != NoLeader {
		return ""
	}
	var why []string
	switch {
	case len(p.ISR) == 0:
		why = append(why, "isr empty")
	default:
		why = append(why, fmt.Sprintf("isr %v down", p.ISR))
	}
	if len(p.ELR) > 0 {
		why = append(why, fmt.Sprintf("eligible replicas %v down", p.ELR))
	}
	for _, r := range p.Replicas {
		if slices.Contains(p.ISR, r) || slices.Contains(p.ELR, r) {
			continue
		}
		b, ok := brokers[r]
		switch {
		case !ok || b.Fenced:
			why = append(why, fmt.Sprintf("broker %d down and not in sync", r))
		case b.UncleanRestart:
			why = append(why, fmt.Sprintf("broker %d restarted uncleanly and has not caught up", r))
		default:
			why = append(why, fmt.Sprintf("broker %d not in sync", r))
		}
	}
	if !t.uncleanAllowed() {
		why = append(why, ConfigUncleanLeaderElection+"=false")
	}
	return fmt.Sprintf("partition %s-%d offline: no eligible replica (%s)", t.Name, p.Index, strings.Join(why, "; "))
}

package checker

import (
	"sort"

	"github.com/barge-broker/barge/jepsen/history"
)

// checkGroup checks the consumer group's commits: when the group commits
// offset c for a partition, every record known below c was given to some
// member of the group before (SAFETY.md §4.10: a member that resumes at
// the commit after a rebalance or restart then skips nothing). Each
// record skipped counts once. Members are the processes with assign
// entries. It returns how many polls the members made and how many
// commits succeeded.
func checkGroup(ops []history.Op, atPos map[pos]map[string]bool, add func(string, string)) (polls, commits int) {
	members := map[int]bool{}
	for _, op := range ops {
		if op.F == history.FAssign {
			members[op.Process] = true
		}
	}
	if len(members) == 0 {
		return 0, 0
	}
	known := map[int32][]int64{}
	for p := range atPos {
		known[p.partition] = append(known[p.partition], p.offset)
	}
	for part := range known {
		sort.Slice(known[part], func(i, j int) bool { return known[part][i] < known[part][j] })
	}
	given := map[pos]bool{}
	next := map[int32]int{} // partition → index into known of the first offset not yet vouched for
	for _, op := range ops {
		if !members[op.Process] || op.Type == history.Invoke {
			continue
		}
		switch op.F {
		case history.FPoll:
			polls++
			for part, recs := range op.Reads {
				for _, r := range recs {
					given[pos{part, r.Offset}] = true
				}
			}
		case history.FCommit:
			if op.Type != history.OK {
				continue
			}
			commits++
			parts := make([]int32, 0, len(op.Commits))
			for p := range op.Commits {
				parts = append(parts, p)
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
			for _, part := range parts {
				c := op.Commits[part]
				offs := known[part]
				for next[part] < len(offs) && offs[next[part]] < c {
					o := offs[next[part]]
					if !given[pos{part, o}] {
						add(CommittedSkip, sprintf("process %d committed partition %d at %d, but offset %d was never given to the group (op %d)",
							op.Process, part, c, o, op.Index))
					}
					next[part]++
				}
			}
		}
	}
	return polls, commits
}

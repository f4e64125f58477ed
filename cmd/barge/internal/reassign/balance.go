package reassign

import (
	"cmp"
	"slices"
	"strconv"
)

// Broker is a broker a balance plan may place replicas on.
type Broker struct {
	ID   int32
	Rack string
}

// Partition is a partition as the balance planner sees it.
type Partition struct {
	Topic     string
	Partition int32
	Replicas  []int32
	// Moving partitions (a move in flight) are left as they are.
	Moving bool
}

// Balance plans moves that even out, over brokers, first the replicas per
// broker (to within one), then the preferred leaders (first replicas) per
// broker, moving as few replicas as it can: one replica at a time from the
// broker holding the most to the one holding the fewest, never to a broker
// the partition already uses, and never lowering the number of racks a
// partition spans (brokers without a rack count as racks of their own).
// Leaders are evened by reordering replicas, which copies nothing; the
// leadership itself follows at the next preferred election. Pure and
// deterministic; a replica on a broker not in brokers is left alone.
func Balance(brokers []Broker, parts []Partition) []Move {
	if len(brokers) < 2 {
		return nil
	}
	rack := map[int32]string{}
	for _, b := range brokers {
		rack[b.ID] = b.Rack
		if b.Rack == "" {
			rack[b.ID] = "\x00" + strconv.Itoa(int(b.ID))
		}
	}
	work := make([][]int32, len(parts))
	replicas, leaders := map[int32]int{}, map[int32]int{}
	for _, b := range brokers {
		replicas[b.ID], leaders[b.ID] = 0, 0
	}
	for i, p := range parts {
		work[i] = slices.Clone(p.Replicas)
		for j, r := range p.Replicas {
			if _, ok := replicas[r]; ok {
				replicas[r]++
				if j == 0 {
					leaders[r]++
				}
			}
		}
	}
	order := func(load map[int32]int) []int32 {
		ids := make([]int32, 0, len(brokers))
		for _, b := range brokers {
			ids = append(ids, b.ID)
		}
		slices.SortFunc(ids, func(a, b int32) int { return cmp.Or(cmp.Compare(load[a], load[b]), cmp.Compare(a, b)) })
		return ids
	}
	racksOf := func(rs []int32) int {
		seen := map[string]bool{}
		for _, r := range rs {
			seen[rack[r]] = true
		}
		return len(seen)
	}
	// tryMove moves one replica of some partition from hi to lo.
	tryMove := func(hi, lo int32) bool {
		for i, p := range parts {
			rs := work[i]
			at := slices.Index(rs, hi)
			if p.Moving || at < 0 || slices.Contains(rs, lo) {
				continue
			}
			after := slices.Clone(rs)
			after[at] = lo
			if racksOf(after) < racksOf(rs) {
				continue
			}
			work[i] = after
			replicas[hi]--
			replicas[lo]++
			if at == 0 {
				leaders[hi]--
				leaders[lo]++
			}
			return true
		}
		return false
	}
	total := 0
	for _, n := range replicas {
		total += n
	}
	for range total + 1 {
		ids := order(replicas)
		moved := false
		for h := len(ids) - 1; h >= 0 && !moved; h-- {
			for l := 0; l < h && !moved; l++ {
				if replicas[ids[h]]-replicas[ids[l]] <= 1 {
					break
				}
				moved = tryMove(ids[h], ids[l])
			}
		}
		if !moved {
			break
		}
	}
	// Leaders: swap the first replica with a less-leading one.
	trySwap := func(hi, lo int32) bool {
		for i, p := range parts {
			rs := work[i]
			at := slices.Index(rs, lo)
			if p.Moving || len(rs) == 0 || rs[0] != hi || at < 0 {
				continue
			}
			rs[0], rs[at] = rs[at], rs[0]
			leaders[hi]--
			leaders[lo]++
			return true
		}
		return false
	}
	for range len(parts) + 1 {
		ids := order(leaders)
		moved := false
		for h := len(ids) - 1; h >= 0 && !moved; h-- {
			for l := 0; l < h && !moved; l++ {
				if leaders[ids[h]]-leaders[ids[l]] <= 1 {
					break
				}
				moved = trySwap(ids[h], ids[l])
			}
		}
		if !moved {
			break
		}
	}
	var out []Move
	for i, p := range parts {
		if !slices.Equal(work[i], p.Replicas) {
			out = append(out, Move{Topic: p.Topic, Partition: p.Partition, Replicas: p.Replicas, Target: work[i]})
		}
	}
	return out
}

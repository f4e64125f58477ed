package cluster

import (
	"slices"
	"strconv"
)

// assignReplicas returns replica lists for n new partitions of rf replicas
// each, over the given brokers (the controller passes the live ones). It is
// deterministic: the same image and brokers give the same assignment.
//
// Leaders (first replicas) go to the broker leading the fewest partitions in
// the image so far; followers go to brokers whose rack the partition does not
// use yet, then to those holding the fewest replicas, walking the ring of
// broker ids from the leader so that follower sets vary. Brokers without a
// rack each count as a rack of their own. The caller checks rf <= len(brokers).
func assignReplicas(img *Image, brokers []Broker, n, rf int) [][]int32 {
	leaders := map[int32]int{}
	replicas := map[int32]int{}
	for _, t := range img.topics {
		for _, p := range t.Partitions {
			leaders[p.Replicas[0]]++
			for _, r := range p.Replicas {
				replicas[r]++
			}
		}
	}
	brokers = slices.Clone(brokers)
	slices.SortFunc(brokers, func(a, b Broker) int { return int(a.ID - b.ID) })
	rackOf := func(b Broker) string {
		if b.Rack == "" {
			return "\x00" + strconv.Itoa(int(b.ID))
		}
		return b.Rack
	}
	out := make([][]int32, n)
	for i := range out {
		lead := 0
		for j := range brokers {
			a, b := brokers[j].ID, brokers[lead].ID
			if leaders[a] < leaders[b] || leaders[a] == leaders[b] && replicas[a] < replicas[b] {
				lead = j
			}
		}
		chosen := []int32{brokers[lead].ID}
		racks := map[string]int{rackOf(brokers[lead]): 1}
		for len(chosen) < rf {
			best := -1
			for step := 1; step < len(brokers); step++ {
				j := (lead + step) % len(brokers)
				b := brokers[j]
				if slices.Contains(chosen, b.ID) {
					continue
				}
				if best < 0 {
					best = j
					continue
				}
				c := brokers[best]
				if ra, rc := racks[rackOf(b)], racks[rackOf(c)]; ra != rc {
					if ra < rc {
						best = j
					}
					continue
				}
				if replicas[b.ID] < replicas[c.ID] {
					best = j
				}
			}
			chosen = append(chosen, brokers[best].ID)
			racks[rackOf(brokers[best])]++
		}
		leaders[chosen[0]]++
		for _, r := range chosen {
			replicas[r]++
		}
		out[i] = chosen
	}
	return out
}

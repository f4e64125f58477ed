package reassign

import (
	"fmt"
	"slices"
	"testing"
)

// apply returns the replica lists after the moves.
func applyMoves(parts []Partition, moves []Move) [][]int32 {
	out := make([][]int32, len(parts))
	for i, p := range parts {
		out[i] = p.Replicas
		for _, m := range moves {
			if m.Topic == p.Topic && m.Partition == p.Partition {
				out[i] = m.Target
			}
		}
	}
	return out
}

func spread(lists [][]int32) (map[int32]int, map[int32]int) {
	replicas, leaders := map[int32]int{}, map[int32]int{}
	for _, rs := range lists {
		for j, r := range rs {
			replicas[r]++
			if j == 0 {
				leaders[r]++
			}
		}
	}
	return replicas, leaders
}

func within1(m map[int32]int, ids []int32) bool {
	lo, hi := 1<<30, -1
	for _, id := range ids {
		lo, hi = min(lo, m[id]), max(hi, m[id])
	}
	return hi-lo <= 1
}

// A fourth broker added to three that hold an RF=3 topic gets its share of
// replicas and leaders; each partition keeps three distinct replicas.
func TestBalanceNewBroker(t *testing.T) {
	var parts []Partition
	for i := range 6 {
		rs := []int32{1, 2, 3}
		for range i % 3 {
			rs = append(rs[1:], rs[0])
		}
		parts = append(parts, Partition{Topic: "t", Partition: int32(i), Replicas: rs})
	}
	brokers := []Broker{{1, ""}, {2, ""}, {3, ""}, {4, ""}}
	moves := Balance(brokers, parts)
	after := applyMoves(parts, moves)
	replicas, leaders := spread(after)
	ids := []int32{1, 2, 3, 4}
	if !within1(replicas, ids) || !within1(leaders, ids) {
		t.Fatalf("replicas %v leaders %v after %v", replicas, leaders, moves)
	}
	for _, rs := range after {
		if len(rs) != 3 || len(slices.Compact(slices.Sorted(slices.Values(rs)))) != 3 {
			t.Fatalf("bad replica list %v", rs)
		}
	}
	if again := Balance(brokers, toParts(parts, after)); len(again) != 0 {
		t.Fatalf("balanced cluster planned again: %v", again)
	}
}

// Rack diversity is never lowered: with racks a, a, b the partition that
// spans both racks keeps doing so.
func TestBalanceKeepsRacks(t *testing.T) {
	brokers := []Broker{{1, "a"}, {2, "b"}, {3, "a"}, {4, "a"}}
	parts := []Partition{{Topic: "t", Partition: 0, Replicas: []int32{1, 2}}, {Topic: "t", Partition: 1, Replicas: []int32{2, 1}},
		{Topic: "t", Partition: 2, Replicas: []int32{1, 2}}}
	for _, rs := range applyMoves(parts, Balance(brokers, parts)) {
		if !slices.Contains(rs, 2) {
			t.Fatalf("partition lost its rack-b replica: %v", rs)
		}
	}
}

// A partition with a move in flight is left alone.
func TestBalanceSkipsMoving(t *testing.T) {
	brokers := []Broker{{1, ""}, {2, ""}}
	parts := []Partition{{Topic: "t", Partition: 0, Replicas: []int32{1}, Moving: true}, {Topic: "t", Partition: 1, Replicas: []int32{1}, Moving: true}}
	if moves := Balance(brokers, parts); len(moves) != 0 {
		t.Fatalf("moved partitions in flight: %v", moves)
	}
}

func toParts(parts []Partition, lists [][]int32) []Partition {
	out := slices.Clone(parts)
	for i := range out {
		out[i].Replicas = lists[i]
	}
	return out
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "10MiB": 10 << 20, "500KiB": 500 << 10, "2M": 2 << 20, "1G": 1 << 30} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1.5M"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
	_ = fmt.Sprint
}

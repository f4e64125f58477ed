package group

import (
	"fmt"
	"slices"
	"testing"
)

func TestCommittedOffsets(t *testing.T) {
	h := newHarness(t, testConfig())
	if got := h.c.CommittedOffsets(); len(got) != 0 {
		t.Fatalf("committed offsets of an empty coordinator: %+v", got)
	}
	l, _, gen := h.stableGroup("live")
	h.commit("live", l, gen, map[string]map[int32]int64{"orders": {0: 4, 1: 9}})
	h.commit("idle", "", -1, map[string]map[int32]int64{"orders": {0: 2}, "audit": {3: 7}})
	render := func() []string {
		var out []string
		for _, o := range h.c.CommittedOffsets() {
			out = append(out, fmt.Sprintf("%s %s/%d %d", o.Group, o.Topic, o.Partition, o.Offset))
		}
		slices.Sort(out)
		return out
	}
	want := []string{"idle audit/3 7", "idle orders/0 2", "live orders/0 4", "live orders/1 9"}
	if got := render(); !slices.Equal(got, want) {
		t.Fatalf("committed offsets %v, want %v", got, want)
	}
	// The same after a rebuild from the log.
	h.restart()
	if got := render(); !slices.Equal(got, want) {
		t.Fatalf("committed offsets after a rebuild %v, want %v", got, want)
	}
	// An unloaded partition's groups are no longer this broker's.
	h.c.Unload(0)
	if got := h.c.CommittedOffsets(); len(got) != 0 {
		t.Fatalf("committed offsets after unload: %+v", got)
	}
}

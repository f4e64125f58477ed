package nemesis

import (
	"reflect"
	"testing"
	"time"
)

func TestScheduleIsAFunctionOfTheSeed(t *testing.T) {
	p := Plan{Seed: 7, Kinds: Kinds, Nodes: 3, Partitions: 3, Total: 60 * time.Second}
	a, b := Schedule(p), Schedule(p)
	if len(a) < 3 || !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different or too few faults:\n%v\n%v", a, b)
	}
	p.Seed = 8
	if reflect.DeepEqual(a, Schedule(p)) {
		t.Fatal("seeds 7 and 8 gave the same schedule")
	}
	for i, f := range a {
		if f.End <= f.Start || f.End > p.Total-cooldown || (i > 0 && f.Start < a[i-1].End+minQuiet) {
			t.Fatalf("fault %d (%v) overlaps, is empty or ends too late", i, f)
		}
		if f.Node < 0 || f.Node >= 3 {
			t.Fatalf("fault %d targets node %d", i, f.Node)
		}
	}
	kinds := map[string]bool{}
	for _, f := range a[:3] {
		kinds[f.Kind] = true
	}
	if len(kinds) != 3 {
		t.Fatalf("the first three faults are not one of each kind: %v", a)
	}
	t.Logf("seed 7: %v", a)
}

func TestScheduleTargetsLeaderForKills(t *testing.T) {
	for _, f := range Schedule(Plan{Seed: 1, Kinds: []string{Kill}, Nodes: 3, Partitions: 3, Total: 40 * time.Second, TargetLeader: true}) {
		if f.Node != Leader || f.LeaderOf < 0 || f.LeaderOf >= 3 {
			t.Fatalf("kill not aimed at a leader: %+v", f)
		}
	}
}

func TestParseKinds(t *testing.T) {
	if k, err := ParseKinds("kill, pause,kill"); err != nil || !reflect.DeepEqual(k, []string{Kill, Pause}) {
		t.Fatalf("got %v, %v", k, err)
	}
	if _, err := ParseKinds("kill,clock"); err == nil {
		t.Fatal("clock accepted")
	}
}

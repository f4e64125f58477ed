package nemesis

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestScheduleIsAFunctionOfTheSeed(t *testing.T) {
	p := Plan{Seed: 7, Kinds: Kinds, Nodes: 3, Partitions: 3, Total: 300 * time.Second}
	a, b := Schedule(p), Schedule(p)
	if len(a) < len(Kinds) || !reflect.DeepEqual(a, b) {
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
		for _, n := range f.Nodes {
			if n < 0 || n >= 3 {
				t.Fatalf("fault %d targets node %d", i, n)
			}
		}
		if f.Target == "" && len(f.Nodes) == 0 && f.Shape != All && f.Shape != Bridge && f.Shape != OneWay {
			t.Fatalf("fault %d (%+v) hits nobody", i, f)
		}
	}
	kinds := map[string]bool{}
	for _, f := range a[:len(Kinds)] {
		kinds[f.Kind] = true
	}
	if len(kinds) != len(Kinds) {
		t.Fatalf("the first round is not one fault of each kind: %v", a)
	}
	t.Logf("seed 7: %v", a)
}

func TestScheduleShapes(t *testing.T) {
	// Over a long run every partition shape and netem shape shows up.
	seen := map[string]bool{}
	for _, f := range Schedule(Plan{Seed: 3, Kinds: Kinds, Nodes: 5, Partitions: 3, Total: 2 * time.Hour}) {
		seen[f.Kind+" "+f.Shape+" "+f.Target] = true
	}
	for _, want := range []string{"partition isolate leader", "partition isolate controller", "partition isolate ",
		"partition halves ", "partition bridge ", "partition ring ", "partition one-way ",
		"netem delay ", "netem loss ", "kill all ", "kill minority ", "kill one leader", "pause one leader", "power-loss one ", "disk-full one "} {
		if !seen[want] {
			t.Errorf("no %q fault in two hours: %v", want, seen)
		}
	}
}

func TestScheduleTargetsLeaderForKills(t *testing.T) {
	for _, f := range Schedule(Plan{Seed: 1, Kinds: []string{Kill}, Nodes: 3, Partitions: 3, Total: 40 * time.Second, TargetLeader: true}) {
		if f.Target != Leader || f.LeaderOf < 0 || f.LeaderOf >= 3 {
			t.Fatalf("kill not aimed at a leader: %+v", f)
		}
	}
}

func TestParseKinds(t *testing.T) {
	if k, err := ParseKinds("kill, pause,kill"); err != nil || !reflect.DeepEqual(k, []string{Kill, Pause}) {
		t.Fatalf("got %v, %v", k, err)
	}
	if k, err := ParseKinds("all"); err != nil || !reflect.DeepEqual(k, Kinds) {
		t.Fatalf("all: got %v, %v", k, err)
	}
	if _, err := ParseKinds("kill,clock"); !errors.Is(err, ErrClock) {
		t.Fatalf("clock: %v, want ErrClock", err)
	}
	if _, err := ParseKinds("kill,bogus"); err == nil {
		t.Fatal("bogus accepted")
	}
}

func TestSchedulePowerLossLimit(t *testing.T) {
	faults := Schedule(Plan{Seed: 2, Kinds: []string{PowerLoss}, Nodes: 3, Partitions: 3, Total: time.Minute, PowerLossReplicas: 2})
	if len(faults) == 0 {
		t.Fatal("no faults")
	}
	for _, f := range faults {
		if f.Shape != All || len(f.Nodes) != 2 || f.Nodes[0] == f.Nodes[1] {
			t.Fatalf("limit test power loss %+v: want every broker killed and two distinct ones cut", f)
		}
	}
	for _, f := range Schedule(Plan{Seed: 2, Kinds: []string{PowerLoss}, Nodes: 3, Partitions: 3, Total: time.Minute}) {
		if f.Shape != One || len(f.Nodes) != 1 {
			t.Fatalf("default power loss %+v: want one broker", f)
		}
	}
}

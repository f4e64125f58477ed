package partition

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

func TestParseTargets(t *testing.T) {
	got, err := parseTargets([]string{"orders", "orders:3", "a.b-c_d:0"})
	want := []target{{"orders", -1}, {"orders", 3}, {"a.b-c_d", 0}}
	if err != nil || len(got) != len(want) {
		t.Fatalf("parseTargets: %v, %v; want %v", got, err, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{":1", "orders:", "orders:x", "orders:-1", "orders:1:2"} {
		_, err := parseTargets([]string{bad})
		var usage *cli.UsageError
		if !errors.As(err, &usage) {
			t.Errorf("parseTargets(%q): %v, want a usage error", bad, err)
		}
	}
}

// The plan applies the controller's rules to the metadata: each row is one
// case of cluster.ElectLeader.
func TestPlanPartition(t *testing.T) {
	live := map[int32]bool{1: true, 2: true, 3: true}
	for _, tc := range []struct {
		name      string
		p         kadm.PartitionDetail
		unclean   bool
		action    string
		newLeader int32
		errHas    string
	}{
		{"preferred leads", kadm.PartitionDetail{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1}, false, "none", 1, ""},
		{"preferred in isr", kadm.PartitionDetail{Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3, 1}, Leader: 2}, false, "elect", 1, ""},
		{"preferred out of isr", kadm.PartitionDetail{Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}, Leader: 2}, false, "refused", 2, "not in the ISR"},
		{"preferred down", kadm.PartitionDetail{Replicas: []int32{4, 2, 3}, ISR: []int32{2, 3}, Leader: 2}, false, "refused", 2, "down or fenced"},
		{"unclean with a leader", kadm.PartitionDetail{Replicas: []int32{1, 2, 3}, ISR: []int32{1}, Leader: 1}, true, "refused", 1, "only for a partition without a live leader"},
		{"unclean offline", kadm.PartitionDetail{Replicas: []int32{4, 5, 2}, ISR: []int32{4}, Leader: -1}, true, "elect", 2, ""},
		{"unclean nobody live", kadm.PartitionDetail{Replicas: []int32{4, 5}, ISR: []int32{4}, Leader: -1}, true, "refused", -1, "no replica"},
	} {
		e := planPartition("t", tc.p, live, tc.unclean)
		if e.Action != tc.action || e.NewLeader != tc.newLeader || !strings.Contains(e.Error, tc.errHas) || (tc.errHas == "") != (e.Error == "") {
			t.Errorf("%s: %+v, want action %s, new leader %d, error with %q", tc.name, e, tc.action, tc.newLeader, tc.errHas)
		}
	}
}

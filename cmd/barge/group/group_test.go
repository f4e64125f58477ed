package group

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/offsets"
)

func TestParseSeekTarget(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]seekTarget{
		"start":         {spec: offsets.Spec{Kind: offsets.Start}},
		"end":           {spec: offsets.Spec{Kind: offsets.End}},
		"42":            {spec: offsets.Spec{Kind: offsets.Exact, N: 42}},
		"-3":            {spec: offsets.Spec{Kind: offsets.BeforeEnd, N: 3}},
		"@-1h":          {spec: offsets.Spec{Kind: offsets.Time, Millis: now.Add(-time.Hour).UnixMilli()}},
		"group:billing": {group: "billing"},
	} {
		got, err := parseSeekTarget(in, now)
		if err != nil || got != want {
			t.Errorf("parseSeekTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "group:", "bogus", "@yesterday"} {
		var usage *cli.UsageError
		if _, err := parseSeekTarget(in, now); !errors.As(err, &usage) {
			t.Errorf("parseSeekTarget(%q) = %v, want a usage error", in, err)
		}
	}
}

// TestSeekTo resolves new offsets against a partition's bounds
// [10, 100]: clamped specs, a time, another group's offset.
func TestSeekTo(t *testing.T) {
	listed := func(off int64) kadm.ListedOffsets {
		var l kadm.ListedOffsets = map[string]map[int32]kadm.ListedOffset{"t": {0: {Topic: "t", Partition: 0, Offset: off}}}
		return l
	}
	starts, ends, times := listed(10), listed(100), listed(57)
	source := kadm.OffsetResponses{"t": {0: {Offset: kadm.Offset{Topic: "t", Partition: 0, At: 500}}}}
	for _, tc := range []struct {
		to   string
		want int64
	}{
		{"start", 10}, {"end", 100}, {"50", 50}, {"5", 10}, {"-10", 90}, {"@1717243200", 57}, {"group:other", 100},
	} {
		tgt, err := parseSeekTarget(tc.to, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got, why := seekTo("g", tgt, source, starts, ends, times, "t", 0)
		if got != tc.want || why != "" {
			t.Errorf("seek to %s: %d (%q), want %d", tc.to, got, why, tc.want)
		}
	}
	// A partition the other group has no offset for; a topic gone.
	if _, why := seekTo("g", seekTarget{group: "other"}, kadm.OffsetResponses{}, starts, ends, nil, "t", 0); !strings.Contains(why, "no committed offset") {
		t.Errorf("seek to a group without the partition: %q", why)
	}
	gone := kadm.ListedOffsets{"old": {-1: {Topic: "old", Partition: -1, Err: kerr.UnknownTopicOrPartition}}}
	if _, why := seekTo("g", seekTarget{spec: offsets.Spec{Kind: offsets.Start}}, nil, gone, gone, nil, "old", 3); !strings.Contains(why, `topic "old" does not exist`) ||
		!strings.Contains(why, "offset-delete g --topic old") {
		t.Errorf("seek of a deleted topic: %q", why)
	}
}

// TestDescribedLag: lag counts committed partitions only; a partition
// assigned but not committed has unknown lag; one neither assigned nor
// committed is not the group's; errors mark their partition.
func TestDescribedLag(t *testing.T) {
	member := kadm.DescribedGroupMember{MemberID: "m1", ClientID: "c", ClientHost: "/127.0.0.1"}
	end := func(o int64) kadm.ListedOffset { return kadm.ListedOffset{Offset: o} }
	l := kadm.DescribedGroupLag{
		Group: "g", Coordinator: kadm.BrokerDetail{NodeID: 2}, State: "Stable", ProtocolType: "consumer", Protocol: "range",
		Members: []kadm.DescribedGroupMember{member},
		Lag: kadm.GroupLag{
			"a": {
				0: {Member: &member, Topic: "a", Partition: 0, Commit: kadm.Offset{At: 4}, End: end(10), Lag: 6},
				1: {Member: &member, Topic: "a", Partition: 1, Commit: kadm.Offset{At: -1}, End: end(10), Lag: 10},
				2: {Topic: "a", Partition: 2, Commit: kadm.Offset{At: -1}, End: end(10), Lag: 10},
			},
			"b": {
				0: {Topic: "b", Partition: 0, Commit: kadm.Offset{At: 1}, End: end(3), Lag: 2},
				1: {Topic: "b", Partition: 1, Commit: kadm.Offset{At: 1}, End: kadm.ListedOffset{Err: kerr.NotLeaderForPartition}, Lag: -1, Err: kerr.NotLeaderForPartition},
			},
		},
	}
	d := described(l)
	if d.Coordinator != 2 || d.State != "Stable" || d.Protocol != "range" || d.LagTotal != 8 || d.LagByTopic["a"] != 6 || d.LagByTopic["b"] != 2 {
		t.Errorf("described: %+v", d)
	}
	if len(d.Offsets) != 4 {
		t.Fatalf("offsets: %+v", d.Offsets)
	}
	if o := d.Offsets[1]; o.Partition != 1 || o.Committed != -1 || o.Lag != -1 || o.MemberID != "m1" {
		t.Errorf("assigned, uncommitted partition: %+v", o)
	}
	if o := d.Offsets[3]; o.Topic != "b" || o.End != -1 || o.Lag != -1 || o.Error == "" {
		t.Errorf("partition without an end: %+v", o)
	}
	if !d.failed() {
		t.Error("a partition error does not fail the group")
	}
	if d := described(kadm.DescribedGroupLag{Group: "gone", State: "Dead"}); !strings.Contains(d.Error, "does not exist") || !d.failed() {
		t.Errorf("a dead group: %+v", d)
	}
}

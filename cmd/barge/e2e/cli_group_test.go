package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// JSON shapes of `barge group`, spelled out: they are the CLI's stable API.

type cliGroupDescribed struct {
	Groups []cliGroupDesc `json:"groups"`
}

type cliGroupDesc struct {
	Group        string `json:"group"`
	Coordinator  int32  `json:"coordinator"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Protocol     string `json:"protocol"`
	Members      []struct {
		MemberID    string `json:"member_id"`
		InstanceID  string `json:"instance_id"`
		ClientID    string `json:"client_id"`
		Host        string `json:"host"`
		Assignments []struct {
			Topic      string  `json:"topic"`
			Partitions []int32 `json:"partitions"`
		} `json:"assignments"`
	} `json:"members"`
	Offsets []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Committed int64  `json:"committed"`
		End       int64  `json:"end"`
		Lag       int64  `json:"lag"`
		MemberID  string `json:"member_id"`
		Error     string `json:"error"`
	} `json:"offsets"`
	LagTotal   int64            `json:"lag_total"`
	LagByTopic map[string]int64 `json:"lag_by_topic"`
	Error      string           `json:"error"`
}

type cliGroupListed struct {
	Groups []struct {
		Group        string `json:"group"`
		State        string `json:"state"`
		ProtocolType string `json:"protocol_type"`
		Coordinator  int32  `json:"coordinator"`
		MemberCount  int    `json:"member_count"`
		LagTotal     int64  `json:"lag_total"`
		Error        string `json:"error"`
	} `json:"groups"`
}

type cliGroupSeek struct {
	Group      string `json:"group"`
	To         string `json:"to"`
	Executed   bool   `json:"executed"`
	Partitions []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Current   int64  `json:"current"`
		New       int64  `json:"new"`
		Error     string `json:"error"`
	} `json:"partitions"`
}

type cliGroupDeleted struct {
	Groups []struct {
		Group string `json:"group"`
		Error string `json:"error"`
	} `json:"groups"`
}

type cliGroupOffsetsDeleted struct {
	Group      string `json:"group"`
	Partitions []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Error     string `json:"error"`
	} `json:"partitions"`
}

// cliGroupArgs make group tests quick (no 3 s initial rebalance wait) and
// turn the lag metric on.
var cliGroupArgs = append(slices.Clone(groupBrokerArgs), "--group-lag-metrics")

// cliGroupDescribe describes one group that must exist.
func cliGroupDescribe(t *testing.T, env cliEnv, group string) cliGroupDesc {
	t.Helper()
	var d cliGroupDescribed
	cliRun(t, env, "group", "describe", group, "-o", "json").must(t, 0).json(t, &d)
	if len(d.Groups) != 1 || d.Groups[0].Group != group || d.Groups[0].Error != "" {
		t.Fatalf("describe %s: %+v", group, d)
	}
	return d.Groups[0]
}

// cliGroupCommitted is a described group's committed offsets, lags and
// ends by partition of topic, as "committed/end/lag".
func cliGroupCommitted(d cliGroupDesc, topic string) map[int32]string {
	out := map[int32]string{}
	for _, o := range d.Offsets {
		if o.Topic == topic {
			out[o.Partition] = fmt.Sprintf("%d/%d/%d", o.Committed, o.End, o.Lag)
		}
	}
	return out
}

// cliGroupSeekRun runs a seek that must exit code and decodes its JSON.
func cliGroupSeekRun(t *testing.T, env cliEnv, code int, args ...string) cliGroupSeek {
	t.Helper()
	var s cliGroupSeek
	r := cliRun(t, env, append(append([]string{"group", "seek"}, args...), "-o", "json")...).must(t, code)
	if code == 0 {
		r.json(t, &s)
	}
	return s
}

// cliGroupParse decodes a successful describe of one group.
func cliGroupParse(r cliResult) (cliGroupDesc, bool) {
	var d cliGroupDescribed
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &d) != nil || len(d.Groups) != 1 {
		return cliGroupDesc{}, false
	}
	return d.Groups[0], true
}

// cliGroupNews renders a seek's plan as "topic/partition:current->new".
func cliGroupNews(s cliGroupSeek) string {
	var parts []string
	for _, p := range s.Partitions {
		parts = append(parts, fmt.Sprintf("%s/%d:%d->%d%s", p.Topic, p.Partition, p.Current, p.New, p.Error))
	}
	return strings.Join(parts, " ")
}

func cliGroupLagSeries(group, topic string) string {
	return fmt.Sprintf(`barge_consumer_group_lag{group=%q,topic=%q}`, group, topic)
}

func cliGroupListedNames(l cliGroupListed) []string {
	var out []string
	for _, g := range l.Groups {
		out = append(out, g.Group)
	}
	return out
}

// TestCLIGroupSingleNode runs every `barge group` verb against one broker:
// seek (dry run, --execute, each kind of --to, refusal while a consumer is
// in the group), describe and list with lag, the lag metric,
// offset-delete and delete, and the usage and unreachable exit codes.
func TestCLIGroupSingleNode(t *testing.T) {
	b := harness.StartBroker(t, harness.Options{ExtraArgs: cliGroupArgs})
	env := cliEnvOf(b)
	const topic = "cli-group-orders"
	cliRun(t, env, "topic", "create", topic, "-p", "3").must(t, 0)
	var lastEarly int64 // timestamp of the last record produced below
	for p := range 3 {
		r := cliRunIn(t, env, strings.Repeat("v\n", 10), "produce", topic, "-p", strconv.Itoa(p), "-o", "json").must(t, 0)
		for _, pr := range cliJSONLines[cliProduced](t, r) {
			lastEarly = max(lastEarly, pr.Timestamp)
		}
	}

	// A dry run changes nothing: the group does not even come to exist.
	const ga, gb = "cli-group-a", "cli-group-b"
	s := cliGroupSeekRun(t, env, 0, ga, "--to", "start", "--topic", topic)
	if s.Group != ga || s.To != "start" || s.Executed || cliGroupNews(s) != topic+"/0:-1->0 "+topic+"/1:-1->0 "+topic+"/2:-1->0" {
		t.Fatalf("seek dry run: %+v", s)
	}
	r := cliRun(t, env, "group", "seek", ga, "--to", "start", "--topic", topic).must(t, 0)
	mustContain(t, "seek dry run table", r.stdout, "TOPIC", "PARTITION", "CURRENT", "NEW", topic)
	mustContain(t, "seek dry run", r.stderr, "Dry run", "--execute")
	var l cliGroupListed
	cliRun(t, env, "group", "list", "-o", "json").must(t, 0).json(t, &l)
	if len(l.Groups) != 0 {
		t.Fatalf("groups after a dry run: %+v", l)
	}
	cliRun(t, env, "group", "describe", ga).must(t, 1)

	// --execute positions a new group.
	s = cliGroupSeekRun(t, env, 0, ga, "--to", "start", "--topic", topic, "--execute")
	if !s.Executed || len(s.Partitions) != 3 {
		t.Fatalf("seek --execute: %+v", s)
	}
	d := cliGroupDescribe(t, env, ga)
	if d.State != "Empty" || d.Coordinator != 0 || len(d.Members) != 0 || d.LagTotal != 30 || d.LagByTopic[topic] != 30 || len(d.LagByTopic) != 1 {
		t.Fatalf("describe after seek: %+v", d)
	}
	if got := cliGroupCommitted(d, topic); len(got) != 3 || got[0] != "0/10/10" || got[1] != "0/10/10" || got[2] != "0/10/10" {
		t.Fatalf("offsets after seek to start: %v", got)
	}
	if got := cliScrape(t, b)[cliGroupLagSeries(ga, topic)]; got != 30 {
		t.Errorf("lag metric %v, want 30", got)
	}

	// An offset, N before the end, and a time, one partition each.
	cliGroupSeekRun(t, env, 0, ga, "--to", "4", "-t", topic, "-p", "1", "--execute")
	cliGroupSeekRun(t, env, 0, ga, "--to", "-3", "-t", topic, "-p", "2", "--execute")
	for time.Now().UnixMilli() <= lastEarly {
		time.Sleep(time.Millisecond)
	}
	late := cliJSONLines[cliProduced](t, cliRunIn(t, env, "late\n", "produce", topic, "-p", "0", "-o", "json").must(t, 0))
	s = cliGroupSeekRun(t, env, 0, ga, "--to", "@"+strconv.FormatInt(late[0].Timestamp, 10), "-t", topic, "-p", "0", "--execute")
	if cliGroupNews(s) != topic+"/0:0->10" {
		t.Errorf("seek to a time: %s", cliGroupNews(s))
	}
	d = cliGroupDescribe(t, env, ga)
	if got := cliGroupCommitted(d, topic); got[0] != "10/11/1" || got[1] != "4/10/6" || got[2] != "7/10/3" || d.LagTotal != 10 {
		t.Fatalf("offsets after seeks: %v, lag %d", got, d.LagTotal)
	}
	r = cliRun(t, env, "group", "describe", ga).must(t, 0)
	mustContain(t, "describe table", r.stdout, "SUMMARY", "COORDINATOR", "Empty", "OFFSETS", "COMMITTED", "LAG BY TOPIC", topic)
	// Without --topic, the committed partitions; a dry run again.
	s = cliGroupSeekRun(t, env, 0, ga, "--to", "@-1h")
	if cliGroupNews(s) != topic+"/0:10->0 "+topic+"/1:4->0 "+topic+"/2:7->0" || s.Executed {
		t.Errorf("seek the whole group to an hour ago, dry run: %s", cliGroupNews(s))
	}
	// Another group's offsets.
	s = cliGroupSeekRun(t, env, 0, gb, "--to", "group:"+ga, "--execute")
	if cliGroupNews(s) != topic+"/0:-1->10 "+topic+"/1:-1->4 "+topic+"/2:-1->7" {
		t.Errorf("seek to another group: %s", cliGroupNews(s))
	}

	// A consumer in the group: seek, delete and offset-delete refuse.
	cmd, _, stderr := cliCommand(t, env, "", "consume", topic, "-g", ga, "-f", `%p %o\n`)
	var consumed cliBuffer
	cmd.Stdout = &consumed
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer cmd.Process.Kill()
	cliWait(t, 20*time.Second, "the consumer to join", func() cliResult {
		return cliRun(t, env, "group", "describe", ga, "-o", "json")
	}, func(r cliResult) bool {
		d, ok := cliGroupParse(r)
		return ok && d.State == "Stable" && len(d.Members) == 1 && len(d.Members[0].Assignments) == 1
	})
	d = cliGroupDescribe(t, env, ga)
	m := d.Members[0]
	if m.MemberID == "" || m.ClientID == "" || !strings.Contains(m.Host, "127.0.0.1") || m.Assignments[0].Topic != topic ||
		!slices.Equal(m.Assignments[0].Partitions, []int32{0, 1, 2}) || d.ProtocolType != "consumer" || d.Protocol == "" {
		t.Errorf("active group: %+v", d)
	}
	for _, o := range d.Offsets {
		if o.MemberID != m.MemberID {
			t.Errorf("partition %d assigned to %q, want %q", o.Partition, o.MemberID, m.MemberID)
		}
	}
	r = cliRun(t, env, "group", "describe", ga).must(t, 0)
	mustContain(t, "describe table of an active group", r.stdout, "MEMBERS", "ASSIGNMENTS", m.MemberID, topic+":0,1,2", "Stable")
	for _, args := range [][]string{{"--to", "start", "--execute"}, {"--to", "end"}} {
		r = cliRun(t, env, append([]string{"group", "seek", ga}, args...)...).must(t, 1)
		mustContain(t, "seek of an active group", r.stderr, "1 active member", "Stable", "stop them first")
		if r.stdout != "" {
			t.Errorf("refused seek printed %q", r.stdout)
		}
	}
	cliRun(t, env, "group", "list", "-o", "json").must(t, 0).json(t, &l)
	if i := slices.Index(cliGroupListedNames(l), ga); i < 0 || l.Groups[i].State != "Stable" || l.Groups[i].MemberCount != 1 || l.Groups[i].ProtocolType != "consumer" {
		t.Errorf("list with an active group: %+v", l)
	}
	r = cliRun(t, env, "group", "delete", ga).must(t, 1)
	mustContain(t, "delete of an active group", r.stdout, "active members")
	r = cliRun(t, env, "group", "offset-delete", ga, "--topic", topic, "-o", "json").must(t, 1)
	mustContain(t, "offset-delete of a consumed topic", r.stdout, "consume topic")

	// The consumer reads from the group's offsets (1+6+3 records), commits
	// and leaves on SIGINT; then the empty group moves.
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(consumed.String(), "\n") < 10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if code := exitCode(t, err); code != 0 {
			t.Fatalf("consume exited %d; stderr:\n%s", code, stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("consume did not stop within 15s of SIGINT")
	}
	if n := strings.Count(consumed.String(), "\n"); n != 10 {
		t.Errorf("the group consumer read %d records, want 10:\n%s", n, consumed.String())
	}
	cliWait(t, 20*time.Second, "the group to be empty", func() cliResult {
		return cliRun(t, env, "group", "describe", ga, "-o", "json")
	}, func(r cliResult) bool {
		d, ok := cliGroupParse(r)
		return ok && d.State == "Empty"
	})
	if d := cliGroupDescribe(t, env, ga); d.LagTotal != 0 || cliGroupCommitted(d, topic)[0] != "11/11/0" {
		t.Errorf("after the consumer: %+v", d)
	}
	s = cliGroupSeekRun(t, env, 0, ga, "--to", "start", "--execute")
	if cliGroupNews(s) != topic+"/0:11->0 "+topic+"/1:10->0 "+topic+"/2:10->0" {
		t.Errorf("seek of the emptied group: %s", cliGroupNews(s))
	}
	if d := cliGroupDescribe(t, env, ga); d.LagTotal != 31 {
		t.Errorf("lag after seeking back: %d", d.LagTotal)
	}
	metrics := cliScrape(t, b)
	if got := metrics[cliGroupLagSeries(ga, topic)]; got != 31 {
		t.Errorf("lag metric of %s: %v, want 31", ga, got)
	}
	if got := metrics[cliGroupLagSeries(gb, topic)]; got != 10 {
		t.Errorf("lag metric of %s: %v, want 10", gb, got)
	}

	// list: lags, filters, table.
	cliRun(t, env, "group", "list", "-o", "json").must(t, 0).json(t, &l)
	if !slices.Equal(cliGroupListedNames(l), []string{ga, gb}) || l.Groups[0].LagTotal != 31 || l.Groups[1].LagTotal != 10 ||
		l.Groups[0].State != "Empty" || l.Groups[0].Coordinator != 0 || l.Groups[0].Error != "" {
		t.Errorf("list: %+v", l)
	}
	cliRun(t, env, "group", "list", "--min-lag", "20", "-o", "json").must(t, 0).json(t, &l)
	if !slices.Equal(cliGroupListedNames(l), []string{ga}) {
		t.Errorf("list --min-lag 20: %+v", l)
	}
	cliRun(t, env, "group", "list", "--state", "stable", "-o", "json").must(t, 0).json(t, &l)
	if len(l.Groups) != 0 {
		t.Errorf("list --state stable: %+v", l)
	}
	r = cliRun(t, env, "group", "list").must(t, 0)
	mustContain(t, "list table", r.stdout, "GROUP", "STATE", "MEMBERS", "LAG", ga, gb, "31")
	r = cliRun(t, env, "group", "list", "-o", "yaml").must(t, 0)
	mustContain(t, "list yaml", r.stdout, "group: "+ga, "lag_total: 31")

	// offset-delete, then delete.
	var od cliGroupOffsetsDeleted
	cliRun(t, env, "group", "offset-delete", gb, "--topic", topic, "-p", "0", "-o", "json").must(t, 0).json(t, &od)
	if od.Group != gb || len(od.Partitions) != 1 || od.Partitions[0].Partition != 0 || od.Partitions[0].Error != "" {
		t.Errorf("offset-delete: %+v", od)
	}
	if got := cliGroupCommitted(cliGroupDescribe(t, env, gb), topic); len(got) != 2 || got[1] != "4/10/6" {
		t.Errorf("offsets after offset-delete: %v", got)
	}
	r = cliRun(t, env, "group", "offset-delete", gb, "--topic", topic, "-p", "1").must(t, 0)
	mustContain(t, "offset-delete table", r.stdout, "PARTITION", "deleted")
	r = cliRun(t, env, "group", "offset-delete", gb, "--topic", "cli-group-nope").must(t, 1)
	mustContain(t, "offset-delete of a topic without offsets", r.stderr, "no committed offsets", "cli-group-nope")

	var del cliGroupDeleted
	cliRun(t, env, "group", "delete", gb, "cli-group-nobody", "-o", "json").must(t, 1).json(t, &del)
	if len(del.Groups) != 2 || del.Groups[0].Error != "" || !strings.Contains(del.Groups[1].Error, "does not exist") {
		t.Errorf("delete: %+v", del)
	}
	r = cliRun(t, env, "group", "describe", gb).must(t, 1)
	mustContain(t, "describe of a deleted group", r.stdout, "does not exist")
	r = cliRun(t, env, "group", "delete", ga).must(t, 0)
	mustContain(t, "delete table", r.stdout, ga, "deleted")
	cliRun(t, env, "group", "list", "-o", "json").must(t, 0).json(t, &l)
	if len(l.Groups) != 0 {
		t.Errorf("groups left after delete: %+v", l)
	}
	if _, ok := cliScrape(t, b)[cliGroupLagSeries(ga, topic)]; ok {
		t.Error("a deleted group still has a lag series")
	}

	// Usage errors exit 2; an unreachable cluster 3.
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"group", "seek", ga}, "--to is required"},
		{[]string{"group", "seek", ga, "--to", "bogus"}, `"bogus"`},
		{[]string{"group", "seek", ga, "--to", "group:"}, "needs a group name"},
		{[]string{"group", "seek", ga, "--to", "start", "-p", "0"}, "exactly one --topic"},
		{[]string{"group", "offset-delete", ga}, "--topic is required"},
		{[]string{"group", "list", "--state", "sleepy"}, "want one of"},
		{[]string{"group", "describe"}, "requires at least 1 arg"},
		{[]string{"group", "lst"}, `did you mean "list"?`},
	} {
		r := cliRun(t, env, tc.args...).must(t, 2)
		mustContain(t, strings.Join(tc.args, " "), r.stderr, tc.says)
	}
	dead := cliEnv{brokers: []string{"127.0.0.1:" + strconv.Itoa(harness.FreePort(t))}}
	r = cliRun(t, dead, "group", "list").must(t, 3)
	mustContain(t, "group list of an unreachable cluster", r.stderr, "no broker reachable")
}

// TestCLIGroupThreeBrokers runs the group verbs against three brokers: the
// groups and the topic's partitions are spread over them, so every verb
// goes to the group's coordinator, and each broker's lag metric counts
// only the partitions it hosts.
func TestCLIGroupThreeBrokers(t *testing.T) {
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: cliGroupArgs})
	env := cliEnvOf(brokers...)
	const topic = "cli-group-spread"
	// One replica each, so which broker hosts a partition is its leader.
	cliRun(t, env, "topic", "create", topic, "-p", "6", "-r", "1").must(t, 0)
	cliGroupWaitTopic(t, brokers, topic, 6)
	for p := range 6 {
		cliRunIn(t, env, strings.Repeat("v\n", 5), "produce", topic, "-p", strconv.Itoa(p), "-q").must(t, 0)
	}
	leaders := map[int32]int32{}
	for _, p := range cliDescribe(t, env, topic).Partitions {
		leaders[p.Partition] = p.Leader
	}

	// Several groups, so that more than one broker coordinates some.
	groups := []string{"cli-group-c0", "cli-group-c1", "cli-group-c2", "cli-group-c3"}
	for _, g := range groups {
		s := cliGroupSeekRun(t, env, 0, g, "--to", "-2", "--topic", topic, "--execute")
		if len(s.Partitions) != 6 || !s.Executed {
			t.Fatalf("seek %s: %+v", g, s)
		}
	}
	coordinators := map[string]int32{}
	for _, g := range groups {
		d := cliGroupDescribe(t, env, g)
		coordinators[g] = d.Coordinator
		if d.State != "Empty" || d.LagTotal != 12 || len(d.Offsets) != 6 || d.Coordinator < 0 || d.Coordinator > 2 {
			t.Errorf("describe %s: %+v", g, d)
		}
		for _, o := range d.Offsets {
			if o.Committed != 3 || o.End != 5 || o.Lag != 2 || o.Error != "" {
				t.Errorf("%s partition %d: %+v", g, o.Partition, o)
			}
		}
	}
	// list asks every broker.
	var l cliGroupListed
	cliRun(t, env, "group", "list", "-o", "json").must(t, 0).json(t, &l)
	if !slices.Equal(cliGroupListedNames(l), groups) {
		t.Fatalf("list: %+v", l)
	}
	for _, g := range l.Groups {
		if g.Coordinator != coordinators[g.Group] || g.LagTotal != 12 || g.Error != "" {
			t.Errorf("listed %+v, coordinator %d", g, coordinators[g.Group])
		}
	}
	r := cliRun(t, env, "group", "list").must(t, 0)
	mustContain(t, "list table", r.stdout, "COORDINATOR", groups[0], "12")

	// Each coordinator's metric sums the partitions it hosts (lag 2 each);
	// other brokers have no series for the group.
	t.Logf("coordinators %v; partition leaders %v", coordinators, leaders)
	checked := 0
	for _, b := range brokers {
		page := cliScrape(t, b)
		for _, g := range groups {
			want := 0.0
			for _, leader := range leaders {
				if leader == int32(b.ID) {
					want += 2
				}
			}
			got, ok := page[cliGroupLagSeries(g, topic)]
			switch {
			case coordinators[g] != int32(b.ID) && ok:
				t.Errorf("broker %d exports lag of %s, coordinated by %d", b.ID, g, coordinators[g])
			case coordinators[g] == int32(b.ID) && want > 0:
				checked++
				if got != want {
					t.Errorf("broker %d: lag of %s = %v (present %v), want %v", b.ID, g, got, ok, want)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no coordinator hosts a partition of the topic: the lag metric went unchecked")
	}

	// Copy a group, trim one partition's offset, delete.
	s := cliGroupSeekRun(t, env, 0, "cli-group-copy", "--to", "group:"+groups[0], "--execute")
	if len(s.Partitions) != 6 || s.Partitions[5].New != 3 {
		t.Errorf("seek to another group: %s", cliGroupNews(s))
	}
	s = cliGroupSeekRun(t, env, 0, "cli-group-copy", "--to", "end", "-t", topic, "-p", "5")
	if cliGroupNews(s) != topic+"/5:3->5" {
		t.Errorf("seek --to end dry run: %s", cliGroupNews(s))
	}
	var od cliGroupOffsetsDeleted
	cliRun(t, env, "group", "offset-delete", "cli-group-copy", "-t", topic, "-p", "0,1", "-o", "json").must(t, 0).json(t, &od)
	if len(od.Partitions) != 2 || od.Partitions[0].Error != "" || od.Partitions[1].Error != "" {
		t.Errorf("offset-delete: %+v", od)
	}
	if d := cliGroupDescribe(t, env, "cli-group-copy"); len(d.Offsets) != 4 || d.LagTotal != 8 {
		t.Errorf("after offset-delete: %+v", d)
	}
	var del cliGroupDeleted
	cliRun(t, env, append(append([]string{"group", "delete"}, groups...), "cli-group-copy", "-o", "json")...).must(t, 0).json(t, &del)
	if len(del.Groups) != 5 {
		t.Errorf("delete: %+v", del)
	}
	cliRun(t, env, "group", "list", "-o", "json").must(t, 0).json(t, &l)
	if len(l.Groups) != 0 {
		t.Errorf("groups left: %+v", l)
	}
}

// cliGroupWaitTopic waits until every broker's Metadata answer has topic
// with its partitions: `produce` checks the partition against the
// metadata of whichever broker it asks, which may not have applied a
// topic just created.
func cliGroupWaitTopic(t *testing.T, brokers []*harness.Broker, topic string, partitions int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := harness.Context(t, 20*time.Second)
	for _, b := range brokers {
		b.WaitFor(20*time.Second, fmt.Sprintf("broker %d to know topic %s", b.ID, topic), func() bool {
			req := kmsg.NewPtrMetadataRequest()
			req.AllowAutoTopicCreation = false // look, do not create
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl.Broker(b.ID))
			return err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0 && len(resp.Topics[0].Partitions) == partitions
		})
	}
}

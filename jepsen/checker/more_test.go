package checker

import (
	"testing"

	"github.com/barge-broker/barge/jepsen/history"
)

// Builders for the entries the tests in checker_test.go do not need:
// sends from a given process, split invocations, group-member entries and
// white-box samples.

func (h *hb) invoke(proc int, part int32, val string) *hb {
	h.add(history.Op{Process: proc, Type: history.Invoke, F: history.FSend, Partition: part, Value: val})
	return h
}

func (h *hb) ack(proc int, part int32, val string, off int64) *hb {
	h.add(history.Op{Process: proc, Type: history.OK, F: history.FSend, Partition: part, Value: val, Offset: &off})
	return h
}

func (h *hb) sendBy(proc int, part int32, val string, off int64) *hb {
	return h.invoke(proc, part, val).ack(proc, part, val, off)
}

func (h *hb) member(proc int, f string, parts ...int32) *hb {
	reads := map[int32][]history.Record{}
	for _, p := range parts {
		reads[p] = nil
	}
	h.add(history.Op{Process: proc, Type: history.Invoke, F: f})
	h.add(history.Op{Process: proc, Type: history.OK, F: f, Reads: reads})
	return h
}

func (h *hb) commit(proc int, commits map[int32]int64) *hb {
	h.add(history.Op{Process: proc, Type: history.Invoke, F: history.FCommit, Commits: commits})
	h.add(history.Op{Process: proc, Type: history.OK, F: history.FCommit, Commits: commits})
	return h
}

func (h *hb) observe(obs ...history.Observation) *hb {
	h.add(history.Op{Process: 400, Type: history.Invoke, F: history.FObserve})
	h.add(history.Op{Process: 400, Type: history.OK, F: history.FObserve, Observations: obs})
	return h
}

func (h *hb) fault(kind, target string) *hb {
	h.add(history.Op{Process: history.NemesisProcess, Type: history.Invoke, F: kind, Target: target})
	h.add(history.Op{Process: history.NemesisProcess, Type: history.OK, F: kind, Target: target})
	return h
}

func (h *hb) final(reads map[int32][]history.Record) *hb { return h.read(history.FFinal, 200, reads) }

func obs(broker, part, leader, epoch int32, hw int64) history.Observation {
	return history.Observation{Broker: broker, Partition: part, Leader: leader, Epoch: epoch, HW: hw}
}

func abc() map[int32][]history.Record {
	return map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c")}
}

func TestCheckMore(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    *hb
		want map[string]int
	}{
		{"aborted read (G1a)", base().send(0, "d", history.Fail, 0).
			final(map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c", 3, "d")}),
			map[string]int{AbortedRead: 1}},
		{"nonmonotonic send: one producer's sends land in reverse", (&hb{}).
			invoke(0, 0, "a").invoke(0, 0, "b").ack(0, 0, "b", 0).ack(0, 0, "a", 1).
			final(map[int32][]history.Record{0: recs(0, "b", 1, "a")}),
			map[string]int{NonmonotonicSend: 1}},
		{"concurrent sends of two producers may land in any order", (&hb{}).
			invoke(0, 0, "a").invoke(1, 0, "b").ack(1, 0, "b", 0).ack(0, 0, "a", 1).
			final(map[int32][]history.Record{0: recs(0, "b", 1, "a")}), nil},
		{"realtime order: a send after an ack lands below it", (&hb{}).
			sendBy(0, 0, "a", 1).sendBy(1, 0, "b", 0).
			final(map[int32][]history.Record{0: recs(0, "b", 1, "a")}),
			// porcupine finds no order either
			map[string]int{RealtimeOrder: 1, NonlinearAppend: 1}},
		{"realtime order: an info send found below an earlier ack", (&hb{}).
			sendBy(0, 0, "a", 1).send(0, "b", history.Info, 0).
			final(map[int32][]history.Record{0: recs(0, "b", 1, "a")}),
			map[string]int{RealtimeOrder: 1, NonlinearAppend: 1}},
		{"group: a commit past a record nobody in the group got", base().
			member(300, history.FAssign, 0).
			read(history.FPoll, 300, map[int32][]history.Record{0: recs(0, "a")}).
			commit(300, map[int32]int64{0: 2}).
			final(abc()),
			map[string]int{CommittedSkip: 1}},
		{"group: another member's poll counts, and a reassigned member may reread", base().
			member(300, history.FAssign, 0).
			read(history.FPoll, 300, map[int32][]history.Record{0: recs(0, "a", 1, "b")}).
			member(300, history.FRevoke, 0).
			member(301, history.FAssign, 0).
			read(history.FPoll, 301, map[int32][]history.Record{0: recs(1, "b", 2, "c")}).
			commit(301, map[int32]int64{0: 3}).
			member(301, history.FRevoke, 0).member(300, history.FAssign, 0).
			read(history.FPoll, 300, map[int32][]history.Record{0: recs(1, "b")}).
			final(abc()), nil},
		{"group: a reread inside one assignment is still nonmonotonic", base().
			member(300, history.FAssign, 0).
			read(history.FPoll, 300, map[int32][]history.Record{0: recs(0, "a", 1, "b")}).
			read(history.FPoll, 300, map[int32][]history.Record{0: recs(1, "b")}).
			final(abc()),
			map[string]int{NonmonotonicPoll: 1}},
		{"multiple leaders in one epoch", base().
			observe(obs(1, 0, 1, 3, 1), obs(2, 0, 2, 3, -1)).final(abc()),
			map[string]int{MultipleLeaders: 1}},
		{"epoch regression in one broker's metadata", base().
			observe(obs(2, 0, 1, 4, -1)).observe(obs(2, 0, 3, 3, -1)).final(abc()),
			map[string]int{EpochRegression: 1}},
		{"a restarted broker may answer from an older epoch", base().
			observe(obs(2, 0, 1, 4, -1)).fault("kill", "n2").fault("heal", "kill n2").observe(obs(2, 0, 3, 3, -1)).final(abc()), nil},
		{"hw regression across a failover", base().
			observe(obs(1, 0, 1, 3, 3)).observe(obs(2, 0, 2, 4, 2)).final(abc()),
			map[string]int{HWRegression: 1}},
		{"broker alert from the log scan", func() *hb {
			h := base().final(abc())
			h.add(history.Op{Process: history.NemesisProcess, Type: history.OK, F: history.FLogScan,
				Alerts: []string{"n2.log: panic: storage: invariant broken: x"}})
			return h
		}(), map[string]int{BrokerAlert: 1}},
		{"a clean log scan", func() *hb {
			h := base().final(abc())
			h.add(history.Op{Process: history.NemesisProcess, Type: history.OK, F: history.FLogScan})
			return h
		}(), nil},
		{"a stale leader of an older epoch is no hw regression", base().
			observe(obs(2, 0, 2, 4, 3)).observe(obs(1, 0, 1, 3, 2)).final(abc()), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Check(tc.h.ops)
			for _, n := range Names {
				if v.Anomalies[n] != tc.want[n] {
					t.Errorf("%s = %d, want %d (examples %q)", n, v.Anomalies[n], tc.want[n], v.Examples)
				}
			}
			if v.Valid != (len(tc.want) == 0) {
				t.Errorf("valid = %v with anomalies %v", v.Valid, v.Anomalies)
			}
		})
	}
}

// TestPorcupineChunks: a long valid history spanning several chunks is
// linearizable, and one swapped pair deep inside it is found.
func TestPorcupineChunks(t *testing.T) {
	build := func(swap bool) []history.Op {
		h := &hb{}
		final := []history.Record{}
		n := 3*appendChunk + 17
		for i := range n {
			off := int64(i)
			if swap && i == 2*appendChunk+5 {
				off++
			} else if swap && i == 2*appendChunk+6 {
				off--
			}
			v := sprintf("v%d", i)
			h.sendBy(i%4, 0, v, off)
			final = append(final, history.Record{Offset: off, Value: v})
		}
		h.final(map[int32][]history.Record{0: final})
		return h.ops
	}
	if v := Check(build(false)); !v.Valid || v.Porcupine != "ok" {
		t.Fatalf("valid history: porcupine %q, anomalies %v", v.Porcupine, v.Anomalies)
	}
	v := Check(build(true))
	if v.Porcupine != "illegal" || v.Anomalies[NonlinearAppend] != 1 || v.Anomalies[RealtimeOrder] != 1 {
		t.Fatalf("swapped pair: porcupine %q, anomalies %v, examples %v", v.Porcupine, v.Anomalies, v.Examples)
	}
}

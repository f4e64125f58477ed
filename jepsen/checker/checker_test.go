package checker

import (
	"testing"

	"github.com/barge-broker/barge/jepsen/history"
)

// A tiny history builder: sends, polls and a final read, each an invoke
// and a completion, with times 1 ms apart.
type hb struct{ ops []history.Op }

func (h *hb) add(op history.Op) {
	op.Index = len(h.ops)
	op.Time = int64(len(h.ops)) * 1e6
	h.ops = append(h.ops, op)
}

func (h *hb) send(part int32, val, typ string, off int64) *hb {
	h.add(history.Op{Process: 0, Type: history.Invoke, F: history.FSend, Partition: part, Value: val})
	op := history.Op{Process: 0, Type: typ, F: history.FSend, Partition: part, Value: val}
	if typ == history.OK {
		op.Offset = &off
	}
	h.add(op)
	return h
}

func (h *hb) read(f string, proc int, reads map[int32][]history.Record) *hb {
	h.add(history.Op{Process: proc, Type: history.Invoke, F: f})
	h.add(history.Op{Process: proc, Type: history.OK, F: f, Reads: reads})
	return h
}

func recs(pairs ...any) []history.Record {
	var out []history.Record
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, history.Record{Offset: int64(pairs[i].(int)), Value: pairs[i+1].(string)})
	}
	return out
}

// base: three acknowledged sends to partition 0 at offsets 0-2.
func base() *hb {
	return (&hb{}).send(0, "a", history.OK, 0).send(0, "b", history.OK, 1).send(0, "c", history.OK, 2)
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    *hb
		want map[string]int // anomalies expected non-zero; every other must be 0
	}{
		{"valid", base().
			read(history.FPoll, 100, map[int32][]history.Record{0: recs(0, "a", 1, "b")}).
			read(history.FPoll, 100, map[int32][]history.Record{0: recs(2, "c")}).
			// an info send that landed, and a failed one that did not
			send(0, "d", history.Info, 0).send(0, "e", history.Fail, 0).
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c", 3, "d")}), nil},
		{"lost write", base().
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 2, "c")}),
			map[string]int{LostWrite: 1}},
		{"lost info write that a poll saw", base().send(0, "d", history.Info, 0).
			read(history.FPoll, 100, map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c", 3, "d")}).
			send(0, "e", history.OK, 4).
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c", 4, "e")}),
			map[string]int{LostWrite: 1}},
		{"unseen", base().
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 1, "b")}),
			map[string]int{Unseen: 1}},
		{"duplicate", base().send(0, "d", history.Info, 0).
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c", 3, "d", 4, "d")}),
			map[string]int{Duplicate: 1}},
		{"inconsistent: one offset, two values", base().send(0, "d", history.Info, 0).
			read(history.FPoll, 100, map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c", 3, "d")}).
			send(0, "e", history.Info, 0).
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c", 3, "e")}),
			// d was seen and is gone: lost too; and no order of the
			// appends puts two at offset 3
			map[string]int{InconsistentOffsets: 1, LostWrite: 1, NonlinearAppend: 1}},
		{"inconsistent: acknowledged at one offset, read at another", base().
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 1, "c", 2, "b")}),
			// offsets 1 and 2 each hold two values (ack and read), and b
			// and c each sit elsewhere than acknowledged
			map[string]int{InconsistentOffsets: 4}},
		{"nonmonotonic poll", base().
			read(history.FPoll, 100, map[int32][]history.Record{0: recs(0, "a", 1, "b")}).
			read(history.FPoll, 100, map[int32][]history.Record{0: recs(1, "b", 2, "c")}).
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c")}),
			map[string]int{NonmonotonicPoll: 1}},
		{"poll skip", base().
			read(history.FPoll, 100, map[int32][]history.Record{0: recs(0, "a")}).
			read(history.FPoll, 100, map[int32][]history.Record{0: recs(2, "c")}).
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c")}),
			map[string]int{PollSkip: 1}},
		{"a gap without records is no skip", (&hb{}).send(0, "a", history.OK, 0).send(0, "b", history.OK, 5).
			read(history.FPoll, 100, map[int32][]history.Record{0: recs(0, "a")}).
			read(history.FPoll, 100, map[int32][]history.Record{0: recs(5, "b")}).
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 5, "b")}), nil},
		{"phantom", base().
			read(history.FFinal, 200, map[int32][]history.Record{0: recs(0, "a", 1, "b", 2, "c", 3, "zz")}),
			map[string]int{Phantom: 1}},
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

func TestWorstUnavailabilityAndCounts(t *testing.T) {
	off := func(o int64) *int64 { return &o }
	ops := []history.Op{
		{Process: 0, Type: history.Invoke, F: history.FSend, Value: "a", Time: 0},
		{Process: 0, Type: history.OK, F: history.FSend, Value: "a", Offset: off(0), Time: 10e6},
		{Process: history.NemesisProcess, Type: history.Invoke, F: "kill", Target: "n1", Time: 11e6},
		{Process: 0, Type: history.Invoke, F: history.FSend, Value: "b", Time: 12e6},
		{Process: 0, Type: history.OK, F: history.FSend, Value: "b", Offset: off(1), Time: 510e6},
		{Process: history.NemesisProcess, Type: history.Invoke, F: history.FHeal, Time: 520e6},
		{Process: 0, Type: history.Invoke, F: history.FSend, Value: "c", Time: 600e6},
		{Process: 0, Type: history.Info, F: history.FSend, Value: "c", Time: 700e6},
		{Process: 200, Type: history.Invoke, F: history.FFinal, Time: 800e6},
		{Process: 200, Type: history.OK, F: history.FFinal, Time: 900e6, Reads: map[int32][]history.Record{0: recs(0, "a", 1, "b")}},
	}
	v := Check(ops)
	if !v.Valid || v.WorstUnavailabilityMs != 500 || v.Faults != 1 || v.Ops != 4 || v.SendsOK != 2 || v.SendsInfo != 1 {
		t.Fatalf("verdict %+v", v)
	}
}

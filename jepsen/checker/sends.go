package checker

import (
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/barge-broker/barge/jepsen/history"
)

// sendInfo is what the checker knows of one send.
type sendInfo struct {
	process   int
	partition int32
	value     string
	invoked   int64 // time
	done      int64 // completion time; 0 while none
	typ       string
	offset    int64 // acknowledged, or the one offset a read saw it at
	known     bool
}

// sendsOf collects every send with its offset: the acknowledged one, or
// for an unacknowledged send that reads returned at exactly one offset,
// that one (two offsets are a duplicate, reported elsewhere).
func sendsOf(ops []history.Op, acked map[string]int64, readAt map[string]map[pos]bool) []*sendInfo {
	byValue := map[string]*sendInfo{}
	var out []*sendInfo
	for _, op := range ops {
		if op.F != history.FSend || op.Process == history.NemesisProcess {
			continue
		}
		if op.Type == history.Invoke {
			s := &sendInfo{process: op.Process, partition: op.Partition, value: op.Value, invoked: op.Time}
			byValue[op.Value] = s
			out = append(out, s)
			continue
		}
		if s := byValue[op.Value]; s != nil {
			s.done, s.typ = op.Time, op.Type
		}
	}
	for _, s := range out {
		if off, ok := acked[s.value]; ok && s.typ == history.OK {
			s.offset, s.known = off, true
		} else if ps := readAt[s.value]; len(ps) == 1 {
			for p := range ps {
				if p.partition == s.partition {
					s.offset, s.known = p.offset, true
				}
			}
		}
	}
	return out
}

// checkSends checks the order sends landed in, in linear time:
// nonmonotonic-send (one producer's acknowledged sends to a partition, in
// the order it sent them, get increasing offsets) and realtime-order (a
// send invoked after another to the same partition was acknowledged lands
// above it; this covers unacknowledged sends a read found too, as
// Redpanda's checker does).
func checkSends(ops []history.Op, acked map[string]int64, readAt map[string]map[pos]bool, add func(string, string)) {
	sends := sendsOf(ops, acked, readAt)
	type key struct {
		process   int
		partition int32
	}
	last := map[key]*sendInfo{}
	for _, s := range sends { // invoke order
		if s.typ != history.OK || !s.known {
			continue
		}
		k := key{s.process, s.partition}
		if prev := last[k]; prev != nil && s.offset <= prev.offset {
			add(NonmonotonicSend, sprintf("process %d partition %d: %q sent after %q landed at offset %d, at or below %d",
				s.process, s.partition, s.value, prev.value, s.offset, prev.offset))
		}
		last[k] = s
	}

	// Sweep invocations and acknowledgements in time order: each send's
	// floor is the highest offset acknowledged on its partition before it
	// was invoked.
	type event struct {
		t      int64
		invoke bool
		s      *sendInfo
	}
	var evs []event
	for _, s := range sends {
		evs = append(evs, event{s.invoked, true, s})
		if s.typ == history.OK && s.known {
			evs = append(evs, event{s.done, false, s})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].t < evs[j].t })
	type floor struct {
		offset int64
		value  string
	}
	highest := map[int32]floor{}
	floors := map[*sendInfo]floor{}
	for _, e := range evs {
		p := e.s.partition
		if e.invoke {
			if f, ok := highest[p]; ok {
				floors[e.s] = f
			}
			continue
		}
		if f, ok := highest[p]; !ok || e.s.offset > f.offset {
			highest[p] = floor{e.s.offset, e.s.value}
		}
	}
	for _, s := range sends {
		f, ok := floors[s]
		if !ok || !s.known || s.offset > f.offset {
			continue
		}
		add(RealtimeOrder, sprintf("partition %d: %q (%s) invoked after %q was acknowledged at offset %d, landed at %d",
			s.partition, s.value, s.typ, f.value, f.offset, s.offset))
	}
}

// appendChunk is how many consecutive log positions porcupine checks at
// once. A contiguous range of positions of a linearizable history is
// linearizable too, so chunks never report a false anomaly; they keep
// porcupine's search (exponential at worst, and its state a bitset of the
// whole chunk) small.
const appendChunk = 2000

// porcupineBudget bounds porcupine's total time over a history.
const porcupineBudget = 60 * time.Second

// checkAppends runs porcupine over each partition's appends with a model
// whose state is the log's length: an append is legal only at the
// position right after the log's end. Positions are the ranks of the
// offsets known (so holes in Kafka offsets do not matter); a send with no
// acknowledgement that a read found may take effect at any time after its
// invocation. Needs a complete final read (every landed send known).
func checkAppends(ops []history.Op, acked map[string]int64, readAt map[string]map[pos]bool, finalSeen map[int32]bool, add func(string, string)) string {
	complete := false
	for _, op := range ops {
		if op.F == history.FFinal && op.Type != history.Invoke {
			complete = op.Type == history.OK
		}
	}
	if !complete {
		return "skipped"
	}
	byPart := map[int32][]*sendInfo{}
	for _, s := range sendsOf(ops, acked, readAt) {
		if s.known && s.done > 0 {
			byPart[s.partition] = append(byPart[s.partition], s)
		}
	}
	model := porcupine.Model{
		Init: func() interface{} { return int64(0) },
		Step: func(state, _, output interface{}) (bool, interface{}) {
			n := state.(int64)
			return output.(int64) == n, n + 1
		},
		Equal: func(a, b interface{}) bool { return a.(int64) == b.(int64) },
	}
	deadline := time.Now().Add(porcupineBudget)
	result := "ok"
	parts := make([]int32, 0, len(byPart))
	for p := range byPart {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		sends := byPart[p]
		offs := make([]int64, 0, len(sends))
		for _, s := range sends {
			offs = append(offs, s.offset)
		}
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		rank := map[int64]int64{}
		for _, o := range offs {
			if _, ok := rank[o]; !ok {
				rank[o] = int64(len(rank))
			}
		}
		chunks := map[int64][]porcupine.Operation{}
		for _, s := range sends {
			r := rank[s.offset]
			ret := s.done
			if s.typ != history.OK {
				ret = math.MaxInt64
			}
			c := r / appendChunk
			chunks[c] = append(chunks[c], porcupine.Operation{ClientId: s.process, Call: s.invoked, Output: r - c*appendChunk, Return: ret, Metadata: s})
		}
		ids := make([]int64, 0, len(chunks))
		for c := range chunks {
			ids = append(ids, c)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, c := range ids {
			left := time.Until(deadline)
			if left <= 0 {
				return "unknown"
			}
			switch porcupine.CheckOperationsTimeout(model, chunks[c], left) {
			case porcupine.Illegal:
				result = "illegal"
				lo := offs[0]
				for o, r := range rank {
					if r == c*appendChunk {
						lo = o
					}
				}
				add(NonlinearAppend, sprintf("partition %d: no order of the %d appends from offset %d on matches their offsets and real time",
					p, len(chunks[c]), lo))
			case porcupine.Unknown:
				return "unknown"
			}
		}
	}
	return result
}

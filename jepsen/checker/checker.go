// Package checker decides whether a barge-jepsen history is valid. It is a
// pure function of the history, linear in its size (maps keyed by value
// and by partition and offset; no search), and checks what Jepsen's Kafka
// workload checks for sends, assign-mode polls and a final full read:
//
//   - inconsistent-offsets: one offset of a partition holds two values
//     (divergent logs), or one value is known at two offsets where at
//     most one of them was read (an acknowledged offset that the log does
//     not hold the value at);
//   - duplicate: one value read at two offsets;
//   - lost-write: a committed send (ok, or any send whose value some read
//     returned) missing from the final read, which read past its offset;
//   - unseen: a committed send missing from the final read that did not
//     reach its offset (loss and delay cannot be told apart);
//   - nonmonotonic-poll: a consumer's poll of a partition starts at or
//     before where its previous one ended, or goes back inside one poll;
//   - poll-skip: a consumer's poll jumps over offsets that exist in the log;
//   - phantom: a read returned a value nobody sent;
//   - G1a (aborted read): a read returned a value whose send definitely
//     failed;
//   - nonmonotonic-send: a producer's later send to a partition landed
//     below its earlier one;
//   - realtime-order: a send invoked after another send to the same
//     partition was acknowledged landed at or below it;
//   - nonlinearizable-append: porcupine found no linear order of a
//     partition's appends matching offsets and real time (sends.go);
//   - committed-offset-skip: a consumer group committed an offset past a
//     record no member of the group was given (group.go);
//   - multiple-leaders, epoch-regression, hw-regression: white-box
//     samples of the brokers' Metadata and ListOffsets (whitebox.go);
//   - broker-alert: a broker log line meaning a bug (a panic, a broken
//     invariant, a data race), from the scan after the run.
//
// The assign-mode consumer never reassigns, so all its polls count as one
// assignment; a group member's assignment ends at each assign or revoke,
// and its poll order is checked only within one.
package checker

import (
	"sort"

	"github.com/barge-broker/barge/jepsen/history"
)

// Anomaly names, the keys of Verdict.Anomalies.
const (
	LostWrite           = "lost-write"
	Duplicate           = "duplicate"
	InconsistentOffsets = "inconsistent-offsets"
	NonmonotonicPoll    = "nonmonotonic-poll"
	PollSkip            = "poll-skip"
	Unseen              = "unseen"
	Phantom             = "phantom"
	AbortedRead         = "G1a"
	NonmonotonicSend    = "nonmonotonic-send"
	RealtimeOrder       = "realtime-order"
	NonlinearAppend     = "nonlinearizable-append"
	CommittedSkip       = "committed-offset-skip"
	MultipleLeaders     = "multiple-leaders"
	EpochRegression     = "epoch-regression"
	HWRegression        = "hw-regression"
	BrokerAlert         = "broker-alert"
)

// Names lists every anomaly the checker counts, in report order.
var Names = []string{LostWrite, Duplicate, InconsistentOffsets, NonmonotonicPoll, PollSkip, Unseen, Phantom,
	AbortedRead, NonmonotonicSend, RealtimeOrder, NonlinearAppend, CommittedSkip,
	MultipleLeaders, EpochRegression, HWRegression, BrokerAlert}

// maxExamples bounds the examples kept per anomaly.
const maxExamples = 10

// Verdict is verdict.json; its field names are a stable API.
type Verdict struct {
	Valid bool `json:"valid"`
	// Ops counts completed client operations (sends, polls, final reads).
	Ops int `json:"ops"`
	// Sends by completion type.
	SendsOK   int `json:"sends_ok"`
	SendsFail int `json:"sends_fail"`
	SendsInfo int `json:"sends_info"`
	// Faults counts nemesis faults begun.
	Faults int `json:"faults"`
	// Anomalies maps each name in Names to its count (zeros included).
	Anomalies map[string]int `json:"anomalies"`
	// Examples are a few instances of each anomaly found, for humans.
	Examples map[string][]string `json:"examples,omitempty"`
	// WorstUnavailabilityMs is the longest stretch, between the first send
	// invoked and the last, without a send acknowledged.
	WorstUnavailabilityMs int64 `json:"worst_unavailability_ms"`
	// UnavailabilityByPartition is the same per partition (its own sends
	// and acknowledgements).
	UnavailabilityByPartition map[int32]int64 `json:"unavailability_ms_by_partition,omitempty"`
	// FaultsByKind counts faults begun per nemesis kind.
	FaultsByKind map[string]int `json:"faults_by_kind,omitempty"`
	// Clients counts acknowledged sends per client library.
	Clients map[string]int `json:"acks_by_client,omitempty"`
	// Porcupine is the append model's outcome: "ok", "illegal",
	// "unknown" (timed out) or "skipped" (no complete final read).
	Porcupine string `json:"porcupine,omitempty"`
	// Observations counts white-box samples.
	Observations int `json:"observations"`
	// GroupPolls and Commits count the group consumers' work.
	GroupPolls int `json:"group_polls"`
	Commits    int `json:"commits"`
}

type pos struct {
	partition int32
	offset    int64
}

// Check computes the verdict of a history.
func Check(ops []history.Op) Verdict {
	v := Verdict{Anomalies: map[string]int{}, Examples: map[string][]string{}, FaultsByKind: map[string]int{}, Clients: map[string]int{}}
	for _, n := range Names {
		v.Anomalies[n] = 0
	}
	add := func(name, example string) {
		v.Anomalies[name]++
		if len(v.Examples[name]) < maxExamples {
			v.Examples[name] = append(v.Examples[name], example)
		}
	}

	sent := map[string]int32{}      // value → partition of its send
	sendDone := map[string]string{} // value → completion type
	acked := map[string]int64{}     // value → acknowledged offset (ok sends)
	var ackedOrder []string         // ok sends in completion order
	// Everything known of the log: offsets of acks and of reads.
	atPos := map[pos]map[string]bool{}
	readAt := map[string]map[pos]bool{} // value → positions reads saw it at
	finalAt := map[string]bool{}        // values of the final read
	finalEnd := map[int32]int64{}       // partition → highest offset of the final read
	finalSeen := map[int32]bool{}
	note := func(p pos, val string) {
		if atPos[p] == nil {
			atPos[p] = map[string]bool{}
		}
		atPos[p][val] = true
	}
	var firstSend, lastSend int64 = -1, -1
	var okTimes []int64

	for _, op := range ops {
		if op.Process == history.NemesisProcess {
			if op.F == history.FLogScan {
				for _, a := range op.Alerts {
					add(BrokerAlert, a)
				}
				continue
			}
			if op.Type == history.Invoke && op.F != history.FHeal {
				v.Faults++
				v.FaultsByKind[op.F]++
			}
			continue
		}
		if op.Type != history.Invoke {
			v.Ops++
		}
		switch op.F {
		case history.FSend:
			if op.Type == history.Invoke {
				sent[op.Value] = op.Partition
				if firstSend < 0 {
					firstSend = op.Time
				}
				lastSend = op.Time
				continue
			}
			sendDone[op.Value] = op.Type
			switch op.Type {
			case history.OK:
				v.SendsOK++
				if op.Client != "" {
					v.Clients[op.Client]++
				}
				okTimes = append(okTimes, op.Time)
				if op.Offset != nil {
					acked[op.Value] = *op.Offset
					ackedOrder = append(ackedOrder, op.Value)
					note(pos{op.Partition, *op.Offset}, op.Value)
				}
			case history.Fail:
				v.SendsFail++
			case history.Info:
				v.SendsInfo++
			}
		case history.FPoll, history.FFinal:
			if op.Type == history.Invoke {
				continue
			}
			for part, recs := range op.Reads {
				for _, r := range recs {
					p := pos{part, r.Offset}
					note(p, r.Value)
					if readAt[r.Value] == nil {
						readAt[r.Value] = map[pos]bool{}
					}
					readAt[r.Value][p] = true
					if op.F == history.FFinal {
						finalAt[r.Value] = true
						if !finalSeen[part] || r.Offset > finalEnd[part] {
							finalEnd[part] = r.Offset
						}
						finalSeen[part] = true
					}
				}
			}
		}
	}

	// One offset, two values. Positions are sorted so examples (and so
	// verdict.json) are the same for the same history.
	positions := make([]pos, 0, len(atPos))
	for p := range atPos {
		positions = append(positions, p)
	}
	sort.Slice(positions, func(i, j int) bool {
		if positions[i].partition != positions[j].partition {
			return positions[i].partition < positions[j].partition
		}
		return positions[i].offset < positions[j].offset
	})
	for _, p := range positions {
		if vals := atPos[p]; len(vals) > 1 {
			add(InconsistentOffsets, sprintf("partition %d offset %d holds %v", p.partition, p.offset, sortedKeys(vals)))
		}
	}

	// Values read: at two offsets (duplicate), at an offset other than the
	// acknowledged one (inconsistent), or never sent (phantom).
	readValues := make([]string, 0, len(readAt))
	for val := range readAt {
		readValues = append(readValues, val)
	}
	sort.Strings(readValues)
	for _, val := range readValues {
		ps := readAt[val]
		if _, ok := sent[val]; !ok {
			add(Phantom, sprintf("%q read at %v, never sent", val, posList(ps)))
			continue
		}
		if sendDone[val] == history.Fail {
			add(AbortedRead, sprintf("%q read at %v, its send failed", val, posList(ps)))
		}
		if len(ps) > 1 {
			add(Duplicate, sprintf("%q read at %v", val, posList(ps)))
			continue
		}
		if off, ok := acked[val]; ok && !ps[pos{sent[val], off}] {
			add(InconsistentOffsets, sprintf("%q acknowledged at partition %d offset %d, read at %v", val, sent[val], off, posList(ps)))
		}
	}

	// Committed sends missing from the final read. An ok send's offset is
	// the acknowledged one; an unacknowledged send that some read returned
	// is committed too, at the offset it was read at.
	committed := append([]string(nil), ackedOrder...)
	for _, val := range readValues {
		if _, ok := acked[val]; !ok {
			if _, ok := sent[val]; ok {
				committed = append(committed, val)
			}
		}
	}
	for _, val := range committed {
		if finalAt[val] {
			continue
		}
		part := sent[val]
		off, ok := acked[val]
		if !ok {
			for p := range readAt[val] {
				off = p.offset
			}
		}
		if finalSeen[part] && finalEnd[part] >= off {
			add(LostWrite, sprintf("%q (%s) at partition %d offset %d missing from the final read, which reached offset %d", val, sendDone[val], part, off, finalEnd[part]))
		} else {
			add(Unseen, sprintf("%q (%s) at partition %d offset %d missing from the final read, which ended before it", val, sendDone[val], part, off))
		}
	}

	checkPolls(ops, atPos, add)
	checkSends(ops, acked, readAt, add)
	v.Porcupine = checkAppends(ops, acked, readAt, finalSeen, add)
	v.GroupPolls, v.Commits = checkGroup(ops, atPos, add)
	v.Observations = checkWhitebox(ops, add)

	// Worst unavailability: the longest stretch of the sending window
	// with no acknowledgement. Completion times of ok sends are in order
	// already (the recorder stamps them as they are added).
	if firstSend >= 0 {
		prev := firstSend
		worst := int64(0)
		for _, t := range okTimes {
			if t-prev > worst {
				worst = t - prev
			}
			prev = max(prev, t)
		}
		if lastSend-prev > worst {
			worst = lastSend - prev
		}
		v.WorstUnavailabilityMs = worst / 1e6
	}
	v.UnavailabilityByPartition = unavailabilityByPartition(ops)

	// Unseen counts against validity too: the final read gave up before
	// those acknowledged writes, so the run cannot show they survived.
	v.Valid = true
	for _, n := range Names {
		if v.Anomalies[n] > 0 {
			v.Valid = false
		}
	}
	return v
}

// checkPolls checks each consumer process's polls, per partition: each
// poll continues right after the offset the previous record of that
// partition had, and skips no offset known to hold a value.
func checkPolls(ops []history.Op, atPos map[pos]map[string]bool, add func(string, string)) {
	// Offsets known per partition, sorted, to tell a skip over existing
	// records from a gap with none (Kafka offsets may have holes).
	known := map[int32][]int64{}
	for p := range atPos {
		known[p.partition] = append(known[p.partition], p.offset)
	}
	for part := range known {
		sort.Slice(known[part], func(i, j int) bool { return known[part][i] < known[part][j] })
	}
	// existsBetween reports whether a known offset lies strictly between a and b.
	existsBetween := func(part int32, a, b int64) bool {
		offs := known[part]
		i := sort.Search(len(offs), func(i int) bool { return offs[i] > a })
		return i < len(offs) && offs[i] < b
	}
	type key struct {
		process   int
		partition int32
	}
	last := map[key]int64{}
	for _, op := range ops {
		if (op.F == history.FAssign || op.F == history.FRevoke) && op.Type != history.Invoke {
			// A new assignment: the member may resume anywhere at or
			// before its group's commit (group.go checks that part).
			for k := range last {
				if k.process == op.Process {
					delete(last, k)
				}
			}
			continue
		}
		if op.F != history.FPoll || op.Type == history.Invoke {
			continue
		}
		parts := make([]int32, 0, len(op.Reads))
		for p := range op.Reads {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		for _, part := range parts {
			k := key{op.Process, part}
			for _, r := range op.Reads[part] {
				prev, ok := last[k]
				switch {
				case !ok:
				case r.Offset <= prev:
					add(NonmonotonicPoll, sprintf("process %d partition %d: offset %d after %d (op %d)", op.Process, part, r.Offset, prev, op.Index))
				case existsBetween(part, prev, r.Offset):
					add(PollSkip, sprintf("process %d partition %d: offset %d after %d skips records (op %d)", op.Process, part, r.Offset, prev, op.Index))
				}
				last[k] = r.Offset
			}
		}
	}
}

// unavailabilityByPartition is, per partition, the longest stretch between
// its first send and its last without an acknowledgement.
func unavailabilityByPartition(ops []history.Op) map[int32]int64 {
	first, lastSend, prev, worst := map[int32]int64{}, map[int32]int64{}, map[int32]int64{}, map[int32]int64{}
	for _, op := range ops {
		if op.F != history.FSend || op.Process == history.NemesisProcess {
			continue
		}
		p := op.Partition
		switch op.Type {
		case history.Invoke:
			if _, ok := first[p]; !ok {
				first[p], prev[p] = op.Time, op.Time
			}
			lastSend[p] = op.Time
		case history.OK:
			if _, ok := prev[p]; ok {
				worst[p] = max(worst[p], op.Time-prev[p])
				prev[p] = max(prev[p], op.Time)
			}
		}
	}
	out := map[int32]int64{}
	for p := range first {
		out[p] = max(worst[p], lastSend[p]-prev[p]) / 1e6
	}
	return out
}

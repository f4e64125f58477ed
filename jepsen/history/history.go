// Package history is the record of a barge-jepsen run: every operation's
// invocation and completion, as Jepsen keeps them, one JSON object a line
// in history.jsonl. The workload and the nemesis append to it; the checker
// reads it.
package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Types of an operation's entries: an invocation, then one completion.
// ok: it happened; fail: it certainly did not; info: unknown (a timeout,
// a lost connection), so it may or may not have taken effect.
const (
	Invoke = "invoke"
	OK     = "ok"
	Fail   = "fail"
	Info   = "info"
)

// Functions of operations.
const (
	FSend  = "send"  // produce one value to one partition
	FPoll  = "poll"  // one poll of an assign-mode consumer
	FFinal = "final" // the full read of every partition after healing
	// Group-mode consumers (subscribe): FAssign when the group gives a
	// member partitions (Reads' keys name them, with no records), FRevoke
	// when it takes them away, FCommit for an offset commit (Commits).
	FAssign = "assign"
	FRevoke = "revoke"
	FCommit = "commit"
	// FObserve is a white-box sample taken from outside: what one broker's
	// Metadata and the leaders' ListOffsets said (Observations).
	FObserve = "observe"
	// FLogScan is the scan of the node logs after the run (Alerts).
	FLogScan = "log-scan"
	// Nemesis operations carry the fault's name (kill, pause, partition)
	// or FHeal.
	FHeal = "heal"
)

// NemesisProcess is the process of fault entries.
const NemesisProcess = -1

// Record is one record a poll or final read returned.
type Record struct {
	Offset int64  `json:"offset"`
	Value  string `json:"value"`
}

// Observation is what one broker said about one partition: its leader
// and leader epoch (Metadata), and the high watermark its leader reported
// (ListOffsets latest; -1 when not asked or not answered).
type Observation struct {
	Broker    int32 `json:"broker"`
	Partition int32 `json:"partition"`
	Leader    int32 `json:"leader"`
	Epoch     int32 `json:"epoch"`
	HW        int64 `json:"hw"`
}

// Op is one history entry. Time is nanoseconds since the run's start on
// the monotonic clock, so gaps and order are exact even if the wall clock
// jumps.
type Op struct {
	Index   int    `json:"index"`
	Process int    `json:"process"`
	Type    string `json:"type"`
	F       string `json:"f"`
	Time    int64  `json:"time"`
	// Sends: the partition and the value; an ok send has the offset the
	// broker acknowledged.
	Partition int32  `json:"partition,omitempty"`
	Value     string `json:"value,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	// Polls and final reads: what each partition returned, in order.
	Reads map[int32][]Record `json:"reads,omitempty"`
	// Commits: partition → the committed offset (the next one to read).
	Commits map[int32]int64 `json:"commits,omitempty"`
	// Observe entries: one sample per partition.
	Observations []Observation `json:"observations,omitempty"`
	// Alerts: log lines of the brokers that mean a bug (panics, broken
	// invariants, data races).
	Alerts []string `json:"alerts,omitempty"`
	// Client names the library of a client process ("franz-go", "sarama").
	Client string `json:"client,omitempty"`
	// Nemesis entries: the node(s) hit, e.g. "n2".
	Target string `json:"target,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Recorder appends entries to a history, giving each an index and a time.
// It is safe for concurrent use by the workload's goroutines and the
// nemesis; entries are kept in memory (a run is bounded) and written out
// with WriteFile.
type Recorder struct {
	start time.Time

	mu  sync.Mutex // guards ops
	ops []Op
}

// NewRecorder starts a history whose times count from now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Add stamps op with the next index and the time since the start, appends
// it and returns the stamped copy.
func (r *Recorder) Add(op Op) Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Time = time.Since(r.start).Nanoseconds()
	op.Index = len(r.ops)
	r.ops = append(r.ops, op)
	return op
}

// Ops returns a copy of the entries so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// WriteFile writes the entries so far to path, one JSON object a line.
func (r *Recorder) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("history: create %s: %w", path, err)
	}
	w := bufio.NewWriter(f)
	if err := Write(w, r.Ops()); err != nil {
		f.Close()
		return fmt.Errorf("history: write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("history: write %s: %w", path, err)
	}
	return f.Close()
}

// Write encodes ops to w, one JSON object a line.
func Write(w io.Writer, ops []Op) error {
	enc := json.NewEncoder(w)
	for i := range ops {
		if err := enc.Encode(&ops[i]); err != nil {
			return err
		}
	}
	return nil
}

// ReadFile reads a history.jsonl.
func ReadFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	var ops []Op
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var op Op
		if err := dec.Decode(&op); err == io.EOF {
			return ops, nil
		} else if err != nil {
			return nil, fmt.Errorf("history: %s entry %d: %w", path, len(ops), err)
		}
		ops = append(ops, op)
	}
}

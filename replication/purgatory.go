package replication

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Purgatory bounds the acks=all produces parked until the high watermark
// passes them. A parked produce costs a Wait and one timer, no goroutine;
// it is completed by whoever advances the HW (a follower fetch), demotes the
// leader, or by its timer.
type Purgatory struct {
	slots chan struct{}
}

// NewPurgatory makes a purgatory for at most max parked produces.
func NewPurgatory(max int) *Purgatory {
	return &Purgatory{slots: make(chan struct{}, max)}
}

// Wait is one parked produce request: several partitions, each waiting for
// its replica's HW to reach an offset. done is called exactly once, from the
// goroutine that resolves the last partition or from the timer, with one
// error code per partition slot (0 for success).
type Wait struct {
	p    *Purgatory
	done func(codes []int16)

	mu        sync.Mutex
	codes     []int16     // guarded by mu
	replicas  []*Replica  // guarded by mu: the replica of each slot still waiting, nil once resolved
	resolved  []bool      // guarded by mu
	remaining int         // guarded by mu
	finished  bool        // guarded by mu
	timer     *time.Timer // guarded by mu
	started   time.Time
}

// hwWait is one partition slot of a Wait parked on a replica.
type hwWait struct {
	w      *Wait
	slot   int
	offset int64 // the HW that completes it: last offset + 1
	code   int16 // outcome, set when it is taken off the replica
}

// Begin reserves room for one parked produce of n partitions, blocking
// while the purgatory is full (back-pressure on the connection) until ctx
// ends. done receives the outcome of each slot.
func (p *Purgatory) Begin(ctx context.Context, n int, done func(codes []int16)) (*Wait, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &Wait{p: p, done: done, codes: make([]int16, n), replicas: make([]*Replica, n), resolved: make([]bool, n), remaining: n, started: time.Now()}, nil
}

// Resolve sets a slot's outcome without waiting (an error, or acks=all not
// needed for it).
func (w *Wait) Resolve(slot int, code int16) {
	w.resolve(slot, code)
}

// Park parks slot on r until its HW reaches offset. It resolves at once
// when the HW is already there, or r does not lead.
func (w *Wait) Park(slot int, r *Replica, offset int64) {
	r.mu.Lock()
	switch {
	case r.role != RoleLeader:
		r.mu.Unlock()
		w.resolve(slot, kerr.NotLeaderForPartition.Code)
		return
	case r.hw.Load() >= offset:
		code := int16(0)
		if len(r.maximal) < r.effectiveMinISRLocked() {
			code = kerr.NotEnoughReplicasAfterAppend.Code
		}
		r.mu.Unlock()
		w.resolve(slot, code)
		return
	}
	w.mu.Lock()
	w.replicas[slot] = r
	w.mu.Unlock()
	r.waits = append(r.waits, hwWait{w: w, slot: slot, offset: offset})
	r.mu.Unlock()
}

// Start arms the timeout once every slot is parked or resolved: at the
// timeout each slot still waiting ends REQUEST_TIMED_OUT, or
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when its ISR is below the minimum.
//
// Every slot must be resolved or parked before Start; a Wait of zero slots
// is finished by Start.
func (w *Wait) Start(timeout time.Duration) {
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		return
	}
	if w.remaining == 0 {
		w.finished = true
		codes := w.codes
		w.mu.Unlock()
		<-w.p.slots
		w.done(codes)
		return
	}
	w.timer = time.AfterFunc(timeout, w.expire)
	w.mu.Unlock()
}

// Elapsed is the time since Begin.
func (w *Wait) Elapsed() time.Duration { return time.Since(w.started) }

func (w *Wait) expire() {
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		return
	}
	waiting := map[int]*Replica{}
	for slot, r := range w.replicas {
		if r != nil {
			waiting[slot] = r
		}
	}
	w.mu.Unlock()
	for slot, r := range waiting {
		r.mu.Lock()
		r.waits = removeWait(r.waits, w, slot)
		code := kerr.RequestTimedOut.Code
		if len(r.isr) < r.effectiveMinISRLocked() || len(r.maximal) < r.effectiveMinISRLocked() {
			code = kerr.NotEnoughReplicasAfterAppend.Code
		}
		r.mu.Unlock()
		w.resolve(slot, code)
	}
}

func removeWait(waits []hwWait, w *Wait, slot int) []hwWait {
	return deleteFunc(waits, func(x hwWait) bool { return x.w == w && x.slot == slot })
}

func deleteFunc(waits []hwWait, del func(hwWait) bool) []hwWait {
	kept := waits[:0]
	for _, x := range waits {
		if !del(x) {
			kept = append(kept, x)
		}
	}
	clear(waits[len(kept):])
	return kept
}

// resolve records a slot's outcome; the last one finishes the wait.
func (w *Wait) resolve(slot int, code int16) {
	w.mu.Lock()
	if w.finished || w.resolved[slot] {
		w.mu.Unlock()
		return
	}
	w.resolved[slot] = true
	w.codes[slot] = code
	w.replicas[slot] = nil
	w.remaining--
	if w.remaining > 0 {
		w.mu.Unlock()
		return
	}
	w.finished = true
	if w.timer != nil {
		w.timer.Stop()
	}
	codes := w.codes
	w.mu.Unlock()
	<-w.p.slots
	w.done(codes)
}

// finishWaits resolves waits taken off a replica; called without its mu.
func finishWaits(ws []hwWait) {
	for _, x := range ws {
		x.w.resolve(x.slot, x.code)
	}
}

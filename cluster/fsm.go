package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// snapshotVersion is the version of the snapshot format fsmSnapshot writes.
const snapshotVersion = 1

// fsm is the raft.FSM holding the metadata image. Raft calls Apply,
// Snapshot and Restore from its single FSM goroutine; readers on any
// goroutine load the current image with one atomic load, so request
// handlers never wait on Raft.
type fsm struct {
	log   *slog.Logger
	image atomic.Pointer[Image]

	// mu orders publication: the image swap, the applied index, and the
	// fan-out to subscribers happen under it, so a new subscriber sees
	// exactly the changes after the image it was handed.
	mu      sync.Mutex
	applied uint64                     // guarded by mu: index of the last applied log entry
	subs    map[*Subscription]struct{} // guarded by mu
	notify  chan struct{}              // guarded by mu: closed and replaced when applied grows
}

func newFSM(log *slog.Logger) *fsm {
	f := &fsm{log: log, subs: map[*Subscription]struct{}{}, notify: make(chan struct{})}
	f.image.Store(emptyImage())
	return f
}

// applyResult is what Apply returns to raft, and raft hands to the
// ApplyFuture on the leader: the command's validation error, if any.
type applyResult struct{ err error }

// Apply implements raft.FSM. A refused command leaves the image as it was;
// its error goes back to the submitter through the future.
func (f *fsm) Apply(l *raft.Log) any {
	cmd, err := decodeCommand(l.Data)
	cur := f.image.Load()
	var next *Image
	var ch *Change
	if err == nil {
		next, ch, err = cur.apply(l.Index, cmd)
	}
	if err != nil {
		f.log.Debug("metadata command refused", "index", l.Index, "type", cmd.Type(), "err", err)
	} else if ch != nil {
		f.log.Debug("metadata command applied", "index", l.Index, "type", cmd.Type())
	}
	f.mu.Lock()
	if ch != nil {
		f.image.Store(next)
		for s := range f.subs {
			s.publish(ch)
		}
	}
	f.advanceLocked(l.Index)
	f.mu.Unlock()
	return applyResult{err: err}
}

func (f *fsm) advanceLocked(index uint64) {
	if index > f.applied {
		f.applied = index
	}
	close(f.notify)
	f.notify = make(chan struct{})
}

// appliedIndex returns the index of the last log entry applied.
func (f *fsm) appliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// appliedNotify returns the applied index and a channel closed once it
// grows past it.
func (f *fsm) appliedNotify() (uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, f.notify
}

// waitApplied blocks until the entry at index is applied or ctx ends.
func (f *fsm) waitApplied(ctx context.Context, index uint64) error {
	for {
		f.mu.Lock()
		done, ch := f.applied >= index, f.notify
		f.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// subscribe registers a subscriber and returns it with the image its first
// change follows.
func (f *fsm) subscribe(buffer int) (*Subscription, *Image) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := newSubscription(f, buffer)
	f.subs[s] = struct{}{}
	return s, f.image.Load()
}

func (f *fsm) unsubscribe(s *Subscription) {
	f.mu.Lock()
	delete(f.subs, s)
	f.mu.Unlock()
}

// snapshotDoc is the snapshot format: a version, the applied index, and the
// whole image.
type snapshotDoc struct {
	Version int      `json:"version"`
	Applied uint64   `json:"applied"`
	Image   imageDoc `json:"image"`
}

// Snapshot implements raft.FSM. The image is immutable, so the snapshot
// just keeps a pointer to it; Persist encodes it on raft's snapshot
// goroutine while Apply goes on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &fsmSnapshot{img: f.image.Load(), applied: f.applied}, nil
}

// Restore implements raft.FSM: it replaces the image with a snapshot's, on
// start-up or when the leader installs a snapshot. Subscribers get a resync.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var doc snapshotDoc
	if err := json.NewDecoder(rc).Decode(&doc); err != nil {
		return fmt.Errorf("cluster: decode snapshot: %w", err)
	}
	if doc.Version != snapshotVersion {
		return fmt.Errorf("cluster: snapshot version %d, this broker reads %d", doc.Version, snapshotVersion)
	}
	img, err := imageFromDoc(doc.Image)
	if err != nil {
		return fmt.Errorf("cluster: snapshot image: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.image.Store(img)
	f.applied = 0
	f.advanceLocked(doc.Applied)
	for s := range f.subs {
		s.publish(&Change{Index: img.index, Resync: true, Image: img})
	}
	f.log.Info("metadata image restored from snapshot", "applied", doc.Applied, "image", img.String())
	return nil
}

type fsmSnapshot struct {
	img     *Image
	applied uint64
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := json.NewEncoder(sink).Encode(snapshotDoc{Version: snapshotVersion, Applied: s.applied, Image: s.img.doc()})
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("cluster: write snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// closeSubscriptions ends every subscription; the node calls it on Close.
func (f *fsm) closeSubscriptions() {
	f.mu.Lock()
	subs := make([]*Subscription, 0, len(f.subs))
	for s := range f.subs {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
}

package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/replication"
	"github.com/barge-broker/barge/storage"
)

// topicPartition names a partition in maps.
type topicPartition struct {
	topic     string
	partition int32
}

// partition is one partition replica hosted on this broker: its log and its
// replica (role, leader epoch, high watermark), which the replication
// package owns. The replica manager's apply goroutine changes the role.
type partition struct {
	topic   string
	topicID cluster.TopicID
	index   int32
	log     *storage.Log
	rep     *replication.Replica

	compacted atomic.Bool // cleanup.policy includes compact: every record needs a key

	mu      sync.Mutex
	waiters map[chan struct{}]fetchWaiter // guarded by mu: fetches parked for new data
}

// highWatermark is the offset below which records are committed: the
// replica's high watermark (§2.2 of REPLICATION.md).
func (p *partition) highWatermark() int64 { return p.rep.HighWatermark() }

// leads reports whether this broker leads the partition now. The produce
// path does not rely on it: AppendAsLeader checks again in the same step as
// the append.
func (p *partition) leads() bool { return p.rep.IsLeader() }

// leaderEpoch is the partition's leader epoch as this broker applied it.
func (p *partition) leaderEpoch() int32 { return p.rep.LeaderEpoch() }

// fetchWaiter is a fetch parked on a partition: it is woken only once the
// partition has records for it past offset (up to the log end for a
// follower, the high watermark for a consumer), so an append does not wake
// consumers that cannot read it yet (acks=all: the HW moves later) and one
// partition's traffic does not make every parked fetch re-read.
type fetchWaiter struct {
	offset   int64
	follower bool
}

// addWaiter registers ch to be signalled (non-blocking, cap 1) when the
// partition has records at or past offset that the fetch may read, or
// stops being led here; removeWaiter undoes it.
//
// The fetch read the partition before it registers, so an append in
// between would find no one to wake and the fetch would sleep out its
// max_wait with data there (an acks=all write stalled 500 ms, a follower's
// whole fetch wait, in about three of ten leader moves under -race). So
// once registered it looks again: an append after that look sees it.
func (p *partition) addWaiter(ch chan struct{}, offset int64, follower bool) {
	w := fetchWaiter{offset: offset, follower: follower}
	p.mu.Lock()
	if p.waiters == nil {
		p.waiters = map[chan struct{}]fetchWaiter{}
	}
	p.waiters[ch] = w
	p.mu.Unlock()
	if w.wakes(p.log.LogEndOffset(), p.highWatermark(), p.leads()) {
		signal(ch)
	}
}

func (p *partition) removeWaiter(ch chan struct{}) {
	p.mu.Lock()
	delete(p.waiters, ch)
	p.mu.Unlock()
}

// appended wakes the parked fetches that can now read something: called
// after every append and high-watermark advance, and when the replica stops
// leading (then every one wakes, to answer NOT_LEADER_OR_FOLLOWER).
func (p *partition) appended() {
	leo, hw, leads := p.log.LogEndOffset(), p.highWatermark(), p.leads()
	p.mu.Lock()
	for ch, w := range p.waiters {
		if w.wakes(leo, hw, leads) {
			signal(ch)
		}
	}
	p.mu.Unlock()
}

// wakes reports whether a fetch parked on w has something to answer with,
// given the partition's log end, high watermark and leadership: records it
// may read, or the news that the partition is no longer led here.
func (w fetchWaiter) wakes(leo, hw int64, leads bool) bool {
	end := hw
	if w.follower {
		end = leo
	}
	return !leads || w.offset < end
}

// wakeAll wakes every parked fetch, whatever it waits for: the log start
// moved (followers carry it at once) or the partition is gone.
func (p *partition) wakeAll() {
	p.mu.Lock()
	for ch := range p.waiters {
		signal(ch)
	}
	p.mu.Unlock()
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// replicaManager owns the partitions hosted on this broker and keeps them in
// line with the metadata image: it opens logs for partitions assigned here,
// marks which it leads, applies topic config changes and deletes the logs of
// deleted topics. One goroutine (run) applies changes; handlers look
// partitions up concurrently.
type replicaManager struct {
	repl        *replication.Manager
	brokerID    int32
	dataDir     string
	logDefaults storage.Config
	fs          storage.FileSystem // nil: the real file system
	offline     *offlineLogs       // told of every log a write error takes offline
	logger      *slog.Logger

	mu    sync.RWMutex
	parts map[topicPartition]*partition // guarded by mu

	// currentTopicID, when set, gives the id the latest metadata image
	// has for a topic name. The image moves ahead of reconcile (which
	// follows it on the apply goroutine), so get checks hosted partitions
	// against it. Set once before requests are served.
	currentTopicID func(topic string) (cluster.TopicID, bool)

	// roleChanged, when set, is called on the apply goroutine after a
	// hosted partition becomes leader (leading=true) or stops leading or
	// hosting it (leading=false). The group coordinator uses it to load and
	// unload __consumer_offsets partitions.
	roleChanged func(p *partition, leading bool)

	// cleanStart is set before the logs open when the previous process
	// shut down cleanly (the broker-wide marker was there).
	cleanStart bool

	// applied is the last image reconcile finished with: the metadata this
	// broker's partitions match. appliedCh is closed and replaced after
	// each reconcile, waking waitApplied.
	applied   atomic.Pointer[cluster.Image]
	appliedMu sync.Mutex
	appliedCh chan struct{} // guarded by appliedMu
}

// appliedImage is the metadata the hosted partitions match, or nil before
// the first reconcile.
func (rm *replicaManager) appliedImage() *cluster.Image { return rm.applied.Load() }

// waitApplied waits until reconcile has applied an image at or past index,
// or ctx ends; it reports whether it got there. Admin handlers call it after
// a metadata change, so a client that creates a topic and produces at once
// finds the partitions open instead of NOT_LEADER_OR_FOLLOWER.
func (rm *replicaManager) waitApplied(ctx context.Context, index uint64) bool {
	for {
		rm.appliedMu.Lock()
		if img := rm.applied.Load(); img != nil && img.Index() >= index {
			rm.appliedMu.Unlock()
			return true
		}
		if rm.appliedCh == nil {
			rm.appliedCh = make(chan struct{})
		}
		ch := rm.appliedCh
		rm.appliedMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (rm *replicaManager) setApplied(img *cluster.Image) {
	rm.appliedMu.Lock()
	rm.applied.Store(img)
	if rm.appliedCh != nil {
		close(rm.appliedCh)
		rm.appliedCh = nil
	}
	rm.appliedMu.Unlock()
}

func newReplicaManager(repl *replication.Manager, brokerID int32, dataDir string, logDefaults storage.Config, fs storage.FileSystem, offline *offlineLogs, logger *slog.Logger) *replicaManager {
	return &replicaManager{
		repl:        repl,
		fs:          fs,
		offline:     offline,
		brokerID:    brokerID,
		dataDir:     dataDir,
		logDefaults: logDefaults,
		logger:      logger.With("component", "replicas"),
		parts:       map[topicPartition]*partition{},
	}
}

// get returns the hosted partition, or nil. A hosted partition of a topic
// the latest metadata no longer has under that name (deleted, or deleted and
// created again with a new id, while reconcile has not caught up) is not
// returned: a produce must never be acknowledged from a log that reconcile
// is about to delete, nor a fetch of the new topic read the old records.
func (rm *replicaManager) get(topic string, index int32) *partition {
	rm.mu.RLock()
	p := rm.parts[topicPartition{topic, index}]
	rm.mu.RUnlock()
	if p != nil && rm.currentTopicID != nil {
		if id, ok := rm.currentTopicID(topic); !ok || id != p.topicID {
			return nil
		}
	}
	return p
}

// all returns every hosted partition.
func (rm *replicaManager) all() []*partition {
	rm.mu.RLock()
	defer rm.mu.RUnlock()
	out := make([]*partition, 0, len(rm.parts))
	for _, p := range rm.parts {
		out = append(out, p)
	}
	return out
}

// reconcile makes the hosted partitions match img: every partition that
// lists this broker as a replica has an open log and the right role; every
// hosted partition the image no longer assigns here is closed and deleted:
// its topic is gone, or a move took it off this broker (the move completed
// only once its target replicas were all in sync, or it was cancelled
// before this broker's copy counted). Called from the apply goroutine only.
func (rm *replicaManager) reconcile(img *cluster.Image) {
	rm.repl.SetThrottles(img.ThrottleRate(cluster.ConfigLeaderThrottledRate), img.ThrottleRate(cluster.ConfigFollowerThrottledRate))
	start := time.Now()
	opened := rm.openMissingLogs(img)
	nOpened, openTime := len(opened), time.Since(start)
	defer func() {
		// Slow only with many partitions to open (start, large topics).
		if d := time.Since(start); d > time.Second {
			rm.logger.Info("partitions reconciled with the metadata", "opened", nOpened, "open_duration", openTime, "duration", d)
		}
	}()
	want := map[topicPartition]bool{}
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if !containsID(p.Replicas, rm.brokerID) {
				continue
			}
			key := topicPartition{t.Name, p.Index}
			want[key] = true
			pre, ok := opened[key]
			delete(opened, key)
			if err := rm.ensure(t, p, t.MinInsyncReplicas(), pre, ok); err != nil {
				rm.logger.Error("cannot host partition", "topic", t.Name, "partition", p.Index, "err", err)
			}
		}
	}
	for key, o := range opened { // listed twice in img, say: never used
		if o.log != nil {
			o.log.Close()
		}
		rm.logger.Warn("closing a log opened ahead but not hosted", "topic", key.topic, "partition", key.partition)
	}
	for _, p := range rm.all() {
		if want[topicPartition{p.topic, p.index}] {
			continue
		}
		rm.drop(p, true)
	}
	rm.setApplied(img)
}

// ensure opens (or updates) the log of one partition assigned here and
// hands its metadata state to the replica: become leader, become follower,
// or an ISR change. With havePre, pre is the outcome of opening the log
// already (openMissingLogs).
func (rm *replicaManager) ensure(t cluster.Topic, meta cluster.Partition, minISR int, pre openedLog, havePre bool) error {
	key := topicPartition{t.Name, meta.Index}
	cfg := logConfigFor(rm.logDefaults, t.Configs)
	rm.mu.RLock()
	p := rm.parts[key]
	rm.mu.RUnlock()
	if p != nil && p.topicID != t.ID {
		rm.drop(p, true) // a deleted topic's replica under a recreated name
		p = nil
	}
	if havePre && p != nil { // hosted meanwhile: cannot happen on the apply goroutine
		if pre.log != nil {
			pre.log.Close()
		}
		havePre = false
	}
	if p == nil {
		log, err := pre.log, pre.err
		if !havePre {
			log, err = rm.openLog(t.Name, t.ID, meta.Index, cfg, meta.Leader == rm.brokerID, meta.LeaderEpoch)
		}
		if err != nil {
			return err
		}
		p = &partition{topic: t.Name, topicID: t.ID, index: meta.Index, log: log}
		p.rep = rm.repl.NewReplica(t.Name, t.ID, meta.Index, log, p.appended)
		rm.mu.Lock()
		rm.parts[key] = p
		rm.mu.Unlock()
	} else if err := p.log.SetConfig(cfg); err != nil {
		rm.logger.Warn("topic config not applied to log", "topic", t.Name, "partition", meta.Index, "err", err)
	}
	p.compacted.Store(compactedTopic(t.Configs))
	wasLeader, oldEpoch := p.rep.IsLeader(), p.rep.LeaderEpoch()
	err := rm.repl.Update(p.rep, replication.State{
		Leader: meta.Leader, LeaderEpoch: meta.LeaderEpoch, PartitionEpoch: meta.PartitionEpoch,
		Replicas: meta.Replicas, ISR: meta.ISR, MinISR: minISR, Adding: meta.AddingReplicas,
	})
	if errors.Is(err, replication.ErrClosed) {
		return nil // shutting down: the replicas stopped before the apply loop
	}
	if err != nil {
		return err
	}
	leads := p.rep.IsLeader()
	if leads && (!wasLeader || oldEpoch != meta.LeaderEpoch) {
		rm.logger.Info("leading partition", "topic", t.Name, "partition", meta.Index, "leader_epoch", meta.LeaderEpoch)
	}
	if rm.roleChanged != nil && (wasLeader != leads || (leads && oldEpoch != meta.LeaderEpoch)) {
		rm.roleChanged(p, leads)
	}
	return nil
}

// partitionMetadataFile records which topic id a partition directory
// belongs to, so a topic deleted and recreated under the same name while
// this broker was down never inherits the old records.
const partitionMetadataFile = "partition.metadata"

// openLog opens a partition's log. With lead, the log is opened with
// leaderEpoch assigned at its end, as the replica's become-leader step does
// next (KIP-101); that step then finds it in place and writes nothing, and
// a restart in the same epoch writes no epoch checkpoint at all. A
// follower's log that opens empty while the partition is in its first
// leader epoch (0, which began at offset 0 on its first leader) gets that
// entry too, so replicating the first batch writes none.
func (rm *replicaManager) openLog(topic string, id cluster.TopicID, index int32, cfg storage.Config, lead bool, leaderEpoch int32) (*storage.Log, error) {
	dir := storage.PartitionDir(rm.dataDir, topic, index)
	metaPath := filepath.Join(dir, partitionMetadataFile)
	want := "version: 0\ntopic_id: " + id.String() + "\n"
	if b, err := os.ReadFile(metaPath); err == nil && string(b) != want {
		rm.logger.Warn("deleting replica of an older topic with the same name", "dir", dir, "found", strings.TrimSpace(string(b)))
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("remove stale partition dir: %w", err)
		}
	}
	opts := storage.Options{Logger: rm.logger.With("topic", topic, "partition", index),
		AssignLeaderEpoch: lead || leaderEpoch == 0, LeaderEpoch: leaderEpoch, AssignOnlyIfEmpty: !lead, FS: rm.fs}
	if rm.offline != nil {
		opts.OnOffline = func(err error) { rm.offline.add(topic, index, err) }
	}
	log, err := storage.Open(dir, cfg, opts)
	if err != nil {
		return nil, err
	}
	if rm.cleanStart && !log.Recovery().Clean {
		// The broker registered as cleanly shut down, yet this log was
		// not closed cleanly (its files changed since, or its marker is
		// gone): its replica may lack records the controller counts on.
		rm.logger.Warn("log recovered after an unclean shutdown although the broker shut down cleanly",
			"topic", topic, "partition", index, "truncated_bytes", log.Recovery().TruncatedBytes)
	}
	if err := os.WriteFile(metaPath, []byte(want), 0o644); err != nil {
		log.Close()
		return nil, fmt.Errorf("write %s: %w", metaPath, err)
	}
	return log, nil
}

// drop stops hosting p; with deleteData its directory goes too.
func (rm *replicaManager) drop(p *partition, deleteData bool) error {
	rm.detach(p)
	return rm.closeLog(p, deleteData)
}

// detach stops hosting p without touching its log: it is no longer found,
// its replica is removed and parked requests wake. Apply goroutine only
// (roleChanged expects it).
func (rm *replicaManager) detach(p *partition) {
	rm.mu.Lock()
	if rm.parts[topicPartition{p.topic, p.index}] == p {
		delete(rm.parts, topicPartition{p.topic, p.index})
	}
	rm.mu.Unlock()
	wasLeader := p.rep.IsLeader()
	rm.repl.Remove(p.rep) // parked acks=all produces fail NOT_LEADER_OR_FOLLOWER
	if rm.roleChanged != nil && wasLeader {
		rm.roleChanged(p, false)
	}
	p.wakeAll() // wake parked fetches: they will find the partition gone
}

// closeLog closes a detached partition's log, deleting it with deleteData.
// Safe to run for several partitions at once.
func (rm *replicaManager) closeLog(p *partition, deleteData bool) error {
	var err error
	if deleteData {
		err = p.log.Delete()
		rm.logger.Info("deleted partition", "topic", p.topic, "partition", p.index)
	} else {
		err = p.log.Close()
	}
	if err != nil && !errors.Is(err, storage.ErrClosed) {
		rm.logger.Warn("closing partition log", "topic", p.topic, "partition", p.index, "err", err)
		return err
	}
	return nil
}

// closeAll closes every log cleanly (broker shutdown). It reports whether
// every log closed without an error, that is, wrote its clean-shutdown
// marker.
func (rm *replicaManager) closeAll() bool {
	ps := rm.all()
	for _, p := range ps {
		rm.detach(p)
	}
	return closeLogs(ps, func(p *partition) error { return rm.closeLog(p, false) })
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

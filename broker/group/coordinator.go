// Package group is Barge's group coordinator: the classic consumer group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), committed offsets
// (OffsetCommit, OffsetFetch, OffsetDelete) and group administration
// (ListGroups, DescribeGroups, DeleteGroups).
//
// Group metadata and committed offsets are records in the internal topic
// __consumer_offsets, written and read through the same storage as user
// data. A group lives in partition PartitionFor(group, partitions) of that
// topic, and its coordinator is the leader of that partition: when this
// broker becomes leader of one, Load rebuilds the partition's groups by
// reading it (requests for them meanwhile get COORDINATOR_LOAD_IN_PROGRESS);
// when it stops leading, Unload drops them (NOT_COORDINATOR).
//
// Each loaded partition is a shard: one mutex guards all of its groups, and
// one goroutine drives its deadlines (session and rebalance timeouts, the
// initial rebalance delay), offsets retention and compaction. The group
// state machine itself is plain code called under that mutex with the time
// passed in, so tests drive it with a fake clock.
package group

import (
	"log/slog"
	"sync"
	"time"

	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Log is what the coordinator needs of a __consumer_offsets partition log;
// *storage.Log implements it.
type Log interface {
	Append(buf []byte, leaderEpoch int32) (storage.AppendResult, error)
	ReadBatches(offset int64, maxBytes int, upTo int64) ([]byte, error)
	LogStartOffset() int64
	LogEndOffset() int64
	Size() int64
	Roll() error
	DeleteRecordsBefore(offset int64) (int64, error)
}

// Partition is a __consumer_offsets partition this broker now leads.
type Partition struct {
	Index       int32
	Log         Log
	LeaderEpoch int32 // stamped on the batches the coordinator writes
}

// Client describes the connection a request came on, as group members are
// described in DescribeGroups.
type Client struct {
	ID   string // client.id
	Host string // the client's address, Kafka style ("/127.0.0.1")
}

// Coordinator serves the group APIs for the __consumer_offsets partitions
// this broker leads. Its request methods are called on connection
// goroutines, concurrently; a method that takes a respond callback calls it
// exactly once, possibly later and from another goroutine (a JoinGroup is
// answered when its rebalance completes), and never while holding a lock.
type Coordinator struct {
	cfg    Config
	opts   Options
	logger *slog.Logger

	mu     sync.RWMutex
	shards map[int32]*shard // guarded by mu: the partitions loaded or loading
	closed bool             // guarded by mu
	wg     sync.WaitGroup   // the shards' goroutines

	// manualTimers leaves deadlines, retention and compaction to the
	// caller of runDueLocked: tests drive them with their fake clock.
	manualTimers bool
}

// New checks cfg and returns a coordinator that leads no partition yet.
func New(cfg Config, opts Options) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PartitionCount == nil {
		opts.PartitionCount = func() int32 { return 0 }
	}
	if opts.PartitionExists == nil {
		opts.PartitionExists = func(string, int32) bool { return true }
	}
	return &Coordinator{
		cfg:    cfg.withDefaults(),
		opts:   opts,
		logger: opts.Logger.With("component", "group-coordinator"),
		shards: map[int32]*shard{},
	}, nil
}

func (c *Coordinator) now() time.Time { return c.opts.Now() }

// Load makes this broker the coordinator of the groups in partition p: it
// starts reading p's log in the background and returns at once. A partition
// already loaded is unloaded and loaded again (a new leader epoch may
// follow writes by another leader). Called from the broker's metadata apply
// goroutine; a no-op after Close.
func (c *Coordinator) Load(p Partition) {
	c.Unload(p.Index)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	s := newShard(c, p)
	c.shards[p.Index] = s
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		s.run()
	}()
}

// Unload stops coordinating the groups of partition index: parked requests
// are answered NOT_COORDINATOR, and it returns once the partition's
// goroutine has stopped, so the caller may close the log. Called from the
// broker's metadata apply goroutine (and by Close).
func (c *Coordinator) Unload(index int32) {
	c.mu.Lock()
	s := c.shards[index]
	delete(c.shards, index)
	c.mu.Unlock()
	if s != nil {
		s.unload()
	}
}

// Close unloads every partition and waits for the coordinator's
// goroutines. Idempotent.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.closed = true
	var ids []int32
	for id := range c.shards {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.Unload(id)
	}
	c.wg.Wait()
}

// lockShard finds the shard of group and locks it. A non-zero code (with
// nothing locked) says why this broker cannot serve the group now. The
// caller releases the shard with unlock.
func (c *Coordinator) lockShard(group string) (*shard, int16) {
	n := c.opts.PartitionCount()
	if n <= 0 {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	c.mu.RLock()
	s := c.shards[PartitionFor(group, n)]
	c.mu.RUnlock()
	if s == nil {
		return nil, kerr.NotCoordinator.Code
	}
	s.mu.Lock()
	if code := s.availableLocked(); code != 0 {
		s.mu.Unlock()
		return nil, code
	}
	return s, 0
}

// loadedShards returns every shard and whether any is still loading, for
// ListGroups.
func (c *Coordinator) loadedShards() ([]*shard, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*shard
	loading := false
	for _, s := range c.shards {
		select {
		case <-s.loaded:
			out = append(out, s)
		default:
			loading = true
		}
	}
	return out, loading
}

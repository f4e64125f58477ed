package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// AlterPartitionRequest is an ISR change for the controller, carrying the
// leader epoch and partition epoch it was computed at (§3.3).
type AlterPartitionRequest struct {
	Topic          string
	Partition      int32
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []int32
}

// Config configures a Manager.
type Config struct {
	BrokerID int32
	// DataDir holds the high-watermark checkpoint file.
	DataDir string
	// BrokerAddr resolves a broker id to its inter-broker Kafka address.
	BrokerAddr func(id int32) (string, bool)
	// BrokerEligible, when set, reports whether a broker may join an ISR
	// (registered and not fenced, §3.2); a fenced follower still fetching
	// while it shuts down is then not proposed, only to be refused.
	BrokerEligible func(id int32) bool
	// AlterPartition submits an ISR change to the controller and returns
	// once it is committed (or refused). Called on the manager's alter
	// goroutine, one at a time.
	AlterPartition func(ctx context.Context, req AlterPartitionRequest) error
	// ReplicaLagMax is replica.lag.time.max.ms (default 30 s).
	ReplicaLagMax time.Duration
	// FetchMaxWait is replica.fetch.wait.max.ms (default 500 ms).
	FetchMaxWait time.Duration
	// FetchMaxBytes is replica.fetch.response.max.bytes (default 10 MiB);
	// PartitionMaxBytes is replica.fetch.max.bytes (default 1 MiB).
	FetchMaxBytes, PartitionMaxBytes int32
	// CheckpointInterval is replica.high.watermark.checkpoint.interval.ms
	// (default 5 s).
	CheckpointInterval time.Duration
	// NumFetchers is num.replica.fetchers (default 1): the fetchers, each
	// with its own connection, that pull from one source broker; a
	// partition always uses the same one.
	NumFetchers int
	// BrokerEpoch returns this broker's epoch (the Raft index of its
	// current registration, -1 before it registered), which follower
	// fetches carry so the leader knows them for this broker (KIP-903).
	BrokerEpoch func() int64
	// FetchesHeld, when set, reports that followers must not fetch now
	// (the data disk is below its free-space reserve); fetchers wait.
	FetchesHeld func() bool
	// Appended, when set, is told the bytes each follower fetch appended,
	// so the free-space reserve counts them between two reads of the disk
	// as it counts produced bytes.
	Appended func(bytes int)
	Logger   *slog.Logger
}

func (c *Config) withDefaults() error {
	if c.BrokerAddr == nil || c.AlterPartition == nil {
		return errors.New("replication: config needs BrokerAddr and AlterPartition")
	}
	if c.ReplicaLagMax <= 0 {
		c.ReplicaLagMax = 30 * time.Second
	}
	if c.FetchMaxWait <= 0 {
		c.FetchMaxWait = 500 * time.Millisecond
	}
	if c.FetchMaxWait >= c.ReplicaLagMax {
		c.FetchMaxWait = c.ReplicaLagMax / 2 // a waiting fetch must not look like lag
	}
	if c.FetchMaxBytes <= 0 {
		c.FetchMaxBytes = 10 << 20
	}
	if c.PartitionMaxBytes <= 0 {
		c.PartitionMaxBytes = 1 << 20
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 5 * time.Second
	}
	if c.NumFetchers <= 0 {
		c.NumFetchers = 1
	}
	if c.FetchesHeld == nil {
		c.FetchesHeld = func() bool { return false }
	}
	if c.Appended == nil {
		c.Appended = func(int) {}
	}
	if c.BrokerEpoch == nil {
		c.BrokerEpoch = func() int64 { return -1 }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Metrics are the manager's counters, read by the broker's /metrics.
type Metrics struct {
	ISRShrinks, ISRExpands atomic.Int64
	mu                     sync.Mutex
	fetchedBytes           map[int32]int64 // guarded by mu: by source broker
}

func (m *Metrics) fetched(source int32, n int) {
	if n == 0 {
		return
	}
	m.mu.Lock()
	if m.fetchedBytes == nil {
		m.fetchedBytes = map[int32]int64{}
	}
	m.fetchedBytes[source] += int64(n)
	m.mu.Unlock()
}

// FetchedBytes returns the bytes this broker's followers appended, by
// source broker.
func (m *Metrics) FetchedBytes() map[int32]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[int32]int64, len(m.fetchedBytes))
	for k, v := range m.fetchedBytes {
		out[k] = v
	}
	return out
}

// Manager owns the replicas on this broker, the follower fetchers (one per
// source broker), the ISR checks and the high-watermark checkpoint. Update
// and Remove are called on the broker's metadata apply goroutine; the rest
// of its methods are safe from any goroutine.
type Manager struct {
	cfg      Config
	logger   *slog.Logger
	clientID string
	metrics  Metrics

	// The replication throttles of this broker (throttle.go).
	leaderThrottle, followerThrottle Throttle

	checkpointed map[string]int64 // loaded at start: "topic partition" → HW

	mu        sync.Mutex
	replicas  map[*Replica]struct{}   // guarded by mu
	fetchers  map[fetcherKey]*fetcher // guarded by mu
	following map[*Replica]fetcherKey // guarded by mu: the fetcher of each follower
	closed    bool                    // guarded by mu

	alters chan alterProposal
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewManager validates cfg and loads the HW checkpoint; Start launches it.
func NewManager(cfg Config) (*Manager, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	hws, err := readCheckpoint(checkpointPath(cfg.DataDir))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		cfg:          cfg,
		logger:       cfg.Logger.With("component", "replication"),
		clientID:     "barge-replica-" + strconv.Itoa(int(cfg.BrokerID)),
		checkpointed: hws,
		replicas:     map[*Replica]struct{}{},
		fetchers:     map[fetcherKey]*fetcher{},
		following:    map[*Replica]fetcherKey{},
		alters:       make(chan alterProposal, 1024),
		ctx:          ctx,
		cancel:       cancel,
	}, nil
}

// Fetchers is the number of follower fetchers running (each source broker
// has up to NumFetchers).
func (m *Manager) Fetchers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.fetchers)
}

// Metrics returns the manager's counters.
func (m *Manager) Metrics() *Metrics { return &m.metrics }

// Start launches the ISR check, the AlterPartition sender and the
// checkpoint writer.
func (m *Manager) Start() {
	m.wg.Add(3)
	go func() { defer m.wg.Done(); m.isrLoop() }()
	go func() { defer m.wg.Done(); m.alterLoop() }()
	go func() { defer m.wg.Done(); m.checkpointLoop() }()
}

// Close stops the fetchers and loops, writes the checkpoint a last time and
// stops every replica. Idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	fetchers := m.fetchers
	m.fetchers = map[fetcherKey]*fetcher{}
	m.mu.Unlock()
	for _, f := range fetchers {
		f.stop()
	}
	m.cancel()
	m.wg.Wait()
	err := m.writeCheckpoint()
	m.mu.Lock()
	replicas := m.replicas
	m.replicas = map[*Replica]struct{}{}
	m.mu.Unlock()
	for r := range replicas {
		r.stop()
	}
	return err
}

// NewReplica makes the replica of a partition whose log is open, starting
// from its checkpointed high watermark. onHW is called after the HW
// advances (and when the replica stops leading), without locks held.
func (m *Manager) NewReplica(topic string, topicID [16]byte, partition int32, log Log, onHW func()) *Replica {
	hw := m.checkpointed[checkpointKey(topic, partition)]
	r := newReplica(m.cfg.BrokerID, topic, partition, log, hw, onHW)
	r.TopicID = topicID
	r.m = m
	m.mu.Lock()
	m.replicas[r] = struct{}{}
	m.mu.Unlock()
	return r
}

// Update applies a partition's metadata state to its replica: become
// leader, become follower (fetching from the new leader at the new epoch;
// the first fetch finds any divergence, §1.6) or stay. Called on the
// metadata apply goroutine, in log order.
func (m *Manager) Update(r *Replica, st State) error {
	// mu is held across the role change so a replica never takes a role
	// after Close stopped it (the broker's apply goroutine outlives it).
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	tr, err := r.update(st, time.Now())
	if err != nil {
		return err
	}
	cur, has := m.following[r]
	want := fetcherKey{source: tr.followLeader, slot: m.fetcherSlot(r)} // source NoLeader when leading or offline
	if want.source == m.cfg.BrokerID {
		want.source = NoLeader
	}
	if has && (cur != want || tr.followerChange) {
		if f := m.fetchers[cur]; f != nil {
			f.remove(r)
		}
		delete(m.following, r)
		has = false
	}
	if !has && want.source != NoLeader {
		f := m.fetchers[want]
		if f == nil {
			f = newFetcher(m, want.source)
			m.fetchers[want] = f
		}
		f.add(r, st.LeaderEpoch)
		m.following[r] = want
	}
	return nil
}

// fetcherKey names one fetcher: the broker it pulls from, and which of the
// NumFetchers for that broker.
type fetcherKey struct {
	source int32
	slot   int
}

// fetcherSlot spreads partitions over the fetchers of a source broker; a
// partition keeps its slot, so it is never fetched by two at once. The
// partition number is hashed with the name, not added to it: leaders are
// assigned round-robin, so with topic+partition modulo N every partition
// one leader holds would land on the same fetcher.
func (m *Manager) fetcherSlot(r *Replica) int {
	h := fnv.New32a()
	h.Write([]byte(r.Topic))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(r.Partition)))
	return int(h.Sum32() % uint32(m.cfg.NumFetchers))
}

// Remove stops a replica (its partition is no longer hosted here): its
// fetcher forgets it and its parked produces fail.
func (m *Manager) Remove(r *Replica) {
	m.mu.Lock()
	if cur, ok := m.following[r]; ok {
		if f := m.fetchers[cur]; f != nil {
			f.remove(r)
		}
		delete(m.following, r)
	}
	delete(m.replicas, r)
	m.mu.Unlock()
	r.stop()
}

// propose queues an ISR change; false when the queue is full (the replica
// proposes again later).
func (m *Manager) propose(p alterProposal) bool {
	select {
	case m.alters <- p:
		return true
	default:
		return false
	}
}

func (m *Manager) alterLoop() {
	for {
		select {
		case <-m.ctx.Done():
			return
		case p := <-m.alters:
			ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
			err := m.cfg.AlterPartition(ctx, AlterPartitionRequest{
				Topic: p.r.Topic, Partition: p.r.Partition, Leader: m.cfg.BrokerID,
				LeaderEpoch: p.leaderEpoch, PartitionEpoch: p.partitionEpoch, ISR: p.isr,
			})
			cancel()
			if err != nil {
				m.logger.Info("isr change refused", "topic", p.r.Topic, "partition", p.r.Partition,
					"isr", fmt.Sprint(p.isr), "leader_epoch", p.leaderEpoch, "partition_epoch", p.partitionEpoch, "err", err)
				p.r.alterFailed(p)
				continue
			}
			if p.expand {
				m.metrics.ISRExpands.Add(1)
			} else {
				m.metrics.ISRShrinks.Add(1)
			}
			m.logger.Info("isr changed", "topic", p.r.Topic, "partition", p.r.Partition, "isr", fmt.Sprint(p.isr))
		}
	}
}

// isrLoop checks every lag/2 for followers to drop from the ISR (§3.1).
func (m *Manager) isrLoop() {
	t := time.NewTicker(m.cfg.ReplicaLagMax / 2)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case now := <-t.C:
			for _, r := range m.all() {
				r.maybeShrink(now, m.cfg.ReplicaLagMax)
			}
		}
	}
}

func (m *Manager) all() []*Replica {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Replica, 0, len(m.replicas))
	for r := range m.replicas {
		out = append(out, r)
	}
	return out
}

// Replicas returns every replica the manager holds.
func (m *Manager) Replicas() []*Replica { return m.all() }

func (m *Manager) checkpointLoop() {
	t := time.NewTicker(m.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			if err := m.writeCheckpoint(); err != nil {
				m.logger.Warn("high watermark checkpoint not written", "err", err)
			}
		}
	}
}

func (m *Manager) writeCheckpoint() error {
	hws := map[string]int64{}
	for _, r := range m.all() {
		hws[checkpointKey(r.Topic, r.Partition)] = r.HighWatermark()
	}
	return writeCheckpoint(checkpointPath(m.cfg.DataDir), hws)
}

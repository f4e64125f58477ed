// Package broker assembles a Barge broker: the Kafka listener (netproto), the
// cluster metadata node (cluster), the partition logs hosted here (storage)
// and one handler per Kafka API, plus the HTTP endpoint for metrics and
// health. It is what `barge serve` runs.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/barge-broker/barge/broker/group"
	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/netproto"
	"github.com/barge-broker/barge/replication"
	"golang.org/x/sync/singleflight"
)

// Broker is one running broker. New validates the config; Start listens and
// serves; Shutdown stops it cleanly. All methods are safe for concurrent use.
type Broker struct {
	cfg    Config
	logger *slog.Logger

	node     *cluster.Node
	repl     *replication.Manager
	acks     *replication.Purgatory // acks=all produces parked on the high watermark
	replicas *replicaManager
	server   *netproto.Server
	pids     *producerIDs
	metrics  *metrics
	groups   *group.Coordinator
	disk     *diskGuard
	offline  offlineLogs // logs a write error took offline: the storage is held until restart
	// metaSync shares one metadata read barrier among the handlers that
	// find a partition unknown at the same moment (see leaderFor).
	metaSync singleflight.Group
	// metaSyncFailed is when the last shared barrier failed (unix ns), 0
	// after one succeeded: see catchUpMetadata.
	metaSyncFailed atomic.Int64

	// listeners are the Kafka listeners, bound by Start and fixed after
	// it; interBroker indexes the one followers of other brokers dial.
	listeners      []boundListener
	interBroker    int
	listenersNamed bool // --listeners, not the --kafka shorthand: registered in the image
	httpLn         net.Listener
	httpSrv        *http.Server

	ctx    context.Context // cancelled by Shutdown; owns the background goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ready atomic.Bool
	// caughtUp is closed once the metadata has caught up with the
	// controller after this process registered (applyMetadata); Kafka
	// requests other than ApiVersions wait for it.
	caughtUp chan struct{}
	// handingOver is set when a controlled shutdown begins; handedOver is
	// closed once every live broker has applied its fence (or that wait
	// ended): until then, NOT_LEADER_OR_FOLLOWER answers wait (leaderFor),
	// so no client is sent to a new leader that does not know it leads.
	handingOver atomic.Bool
	handedOver  chan struct{}
	// lastRequest is when the last Kafka request arrived (UnixNano), for
	// lingerForClients.
	lastRequest atomic.Int64
	stopOnce    sync.Once
	done        chan struct{}
	errMu       sync.Mutex
	err         error // guarded by errMu: why the broker stopped on its own
}

// New checks the configuration and prepares a broker; nothing listens yet.
func New(cfg Config) (*Broker, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		cfg:        cfg,
		logger:     cfg.Logger.With("broker", cfg.ID),
		ctx:        ctx,
		cancel:     cancel,
		done:       make(chan struct{}),
		caughtUp:   make(chan struct{}),
		handedOver: make(chan struct{}),
		disk:       newDiskGuard(cfg.DataDir, cfg.MinFreeBytes),
	}
	b.metrics = newMetrics(b)
	repl, err := replication.NewManager(replication.Config{
		BrokerID:       cfg.ID,
		DataDir:        cfg.DataDir,
		BrokerAddr:     b.brokerAddr,
		BrokerEligible: b.brokerEligible,
		AlterPartition: b.alterPartition,
		ReplicaLagMax:  cfg.ReplicaLagMax,
		FetchMaxWait:   cfg.ReplicaFetchMaxWait,
		NumFetchers:    cfg.NumReplicaFetchers,
		BrokerEpoch:    b.brokerEpoch,
		FetchesHeld:    b.storageHeld,
		Appended:       b.disk.appended,
		Logger:         b.logger,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.repl = repl
	b.acks = replication.NewPurgatory(cfg.MaxParkedProduces)
	b.replicas = newReplicaManager(repl, cfg.ID, cfg.DataDir, cfg.Log, cfg.StorageFS, &b.offline, b.logger)
	groups, err := newGroupCoordinator(b)
	if err != nil {
		cancel()
		return nil, err
	}
	b.groups = groups
	b.replicas.roleChanged = b.groupRoleChanged
	return b, nil
}

// Start opens the data directory, joins or forms the cluster, and begins
// serving Kafka and HTTP. It returns once the listeners accept.
func (b *Broker) Start() error {
	if err := os.MkdirAll(b.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("broker: create data dir: %w", err)
	}
	clean, err := takeCleanShutdown(b.cfg.DataDir)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(filepath.Join(b.cfg.DataDir, "raft"))
	switch {
	case clean:
		b.logger.Info("previous shutdown was clean")
	case errors.Is(statErr, os.ErrNotExist):
		// A first start registers as unclean too, harmlessly: a new broker
		// is in no ISR yet.
		b.logger.Info("first start in this data directory")
	default:
		b.logger.Warn("no clean-shutdown marker: registering as restarted uncleanly; the controller takes this broker out of every ISR until it has caught up")
	}
	b.replicas.cleanStart = clean
	if b.pids, err = openProducerIDs(b.cfg.DataDir, b.cfg.ID); err != nil {
		return err
	}
	if err := b.listen(); err != nil {
		return err
	}
	// The HTTP port is bound now, before joining, so that the address the
	// cluster records (and peers and `barge cluster quorum` dial) is the
	// bound one: with --http :0 it would otherwise be ":0".
	if b.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", b.cfg.HTTPAddr)
		if err != nil {
			b.closeListeners()
			return fmt.Errorf("broker: listen on --http %s: %w", b.cfg.HTTPAddr, err)
		}
		b.httpLn = ln
	}
	ib := b.listeners[b.interBroker]
	var registered string // the named listeners' advertised addresses, for the image
	if b.listenersNamed {
		names, addrs := make([]string, len(b.listeners)), make([]string, len(b.listeners))
		for i, l := range b.listeners {
			names[i], addrs[i] = l.name, l.advertised
		}
		registered = cluster.FormatListeners(names, addrs)
	}
	timeouts := cluster.DefaultTimeouts()
	if b.cfg.FastFailureDetection {
		timeouts = cluster.LoopbackTimeouts()
	}
	rebalance := cluster.LeaderRebalance{Enabled: b.cfg.AutoLeaderRebalance,
		ImbalancePercentage: b.cfg.LeaderImbalancePercentage, CheckInterval: b.cfg.LeaderImbalanceCheckInterval}
	b.node, err = cluster.New(cluster.Config{
		ID:                       b.cfg.ID,
		DataDir:                  b.cfg.DataDir,
		KafkaAddr:                ib.ln.Addr().String(),
		AdvertisedKafkaAddr:      ib.advertised,
		Listeners:                registered,
		RaftAddr:                 b.cfg.RaftAddr,
		GossipAddr:               b.cfg.GossipAddr,
		AdvertisedRaftAddr:       b.cfg.AdvertisedRaftAddr,
		AdvertisedGossipAddr:     b.cfg.AdvertisedGossipAddr,
		HTTPAddr:                 b.HTTPAddr(),
		Rack:                     b.cfg.Rack,
		UncleanShutdown:          !clean,
		StorageHeld:              b.storageHeld,
		Join:                     b.cfg.Join,
		BootstrapExpect:          b.cfg.BootstrapExpect,
		MaxVoters:                b.cfg.MaxVoters,
		RecoverQuorum:            b.cfg.RecoverQuorum,
		DefaultPartitions:        b.cfg.DefaultPartitions,
		DefaultReplicationFactor: b.cfg.DefaultReplicationFactor,
		LeaderRebalance:          rebalance,
		Timeouts:                 timeouts,
		Logger:                   b.cfg.Logger, // cluster adds its own broker and component keys
	})
	if err != nil {
		b.closeListeners()
		return fmt.Errorf("broker: %w", err)
	}
	b.replicas.currentTopicID = func(topic string) (cluster.TopicID, bool) {
		t, ok := b.node.Image().Topic(topic)
		return t.ID, ok
	}
	if err := b.node.Start(); err != nil {
		b.closeListeners()
		return fmt.Errorf("broker: start cluster node: %w", err)
	}
	if _, err := b.disk.check(); err != nil {
		b.logger.Warn("cannot read the data disk's free space", "err", err)
	}
	b.goBackground("disk space", b.diskLoop)
	b.repl.Start()
	sub, img := b.node.Subscribe(1024)
	b.goBackground("metadata", func() { b.applyMetadata(sub, img) })
	b.goBackground("retention", b.retentionLoop)

	b.server, err = netproto.NewServer(netproto.ServerConfig{
		Handler:               b,
		Versions:              versionsFor,
		MaxRequestBytes:       b.cfg.MaxRequestBytes,
		IdleTimeout:           b.cfg.IdleTimeout,
		MaxConnections:        b.cfg.MaxConnections,
		MaxConnectionsPerIP:   b.cfg.MaxConnectionsPerIP,
		QueuedMaxRequestBytes: b.cfg.QueuedMaxRequestBytes,
		SendTimeout:           b.cfg.SendTimeout,
		StreamProduceMinBytes: b.cfg.StreamProduceMinBytes,
		Observer:              b.metrics,
		Logger:                b.logger,
	})
	if err != nil {
		b.stopAll()
		return fmt.Errorf("broker: %w", err)
	}
	for _, l := range b.listeners {
		b.goBackground("kafka listener "+l.name, func() {
			if err := b.server.Serve(l.ln); err != nil && !errors.Is(err, netproto.ErrServerClosed) {
				b.fail(fmt.Errorf("kafka listener %s: %w", l.name, err))
			}
		})
	}
	if b.httpLn != nil {
		b.serveHTTP()
	}
	b.logger.Info("broker started", "kafka", b.KafkaAddr(), "advertised", ib.advertised, "listeners", b.listenerSummary(),
		"raft", b.node.RaftAddr(), "gossip", b.node.GossipAddr(), "http", b.HTTPAddr(), "data", b.cfg.DataDir)
	return nil
}

// survive, deferred directly by a goroutine a handler started (netproto
// recovers panics only on the connection's own goroutine), turns a panic
// into a logged stack and onPanic (which answers the request, closing its
// connection) instead of a crashed broker.
func (b *Broker) survive(what string, onPanic func()) {
	if p := recover(); p != nil {
		b.logger.Error("goroutine of a request panicked; closing its connection", "what", what, "panic", p, "stack", string(debug.Stack()))
		onPanic()
	}
}

// goBackground runs fn on a goroutine that Shutdown waits for.
func (b *Broker) goBackground(name string, fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn()
		b.logger.Debug("background task ended", "task", name)
	}()
}

// applyMetadata follows the metadata log and keeps the hosted partitions in
// line with it, in log order. It first passes a read barrier: no partition
// is hosted (so none is served as leader or follower) until the image holds
// this process's registration and then everything the controller had
// committed at that point (Node.Sync). The local image at start may be
// stale: a topic deleted and recreated while this broker was down would
// otherwise be served, and produces acknowledged, from the old log. Once
// caught up, the broker is ready when its reconciled image shows it
// registered, so a rolling restart that waits for /readyz finds every
// partition served.
func (b *Broker) applyMetadata(sub *cluster.Subscription, start *cluster.Image) {
	defer sub.Close()
	latest := start
	var barrier uint64 // the index Sync returned; 0 until it answered
	caughtUp := false
	for {
		if !caughtUp {
			if barrier == 0 && b.registeredSelf(latest) {
				ctx, cancel := context.WithTimeout(b.ctx, time.Second)
				idx, err := b.node.Sync(ctx)
				cancel()
				if err != nil {
					b.logger.Debug("metadata read barrier failed; retrying", "err", err)
				} else {
					barrier = max(idx, 1)
				}
			}
			if barrier > 0 && latest.Index() >= barrier {
				caughtUp = true
				b.replicas.reconcile(latest)
				close(b.caughtUp)
				b.logger.Info("metadata caught up with the controller; hosting partitions", "metadata_index", latest.Index())
			}
		}
		if _, registered := latest.Broker(b.cfg.ID); caughtUp && registered && !b.ready.Load() {
			b.ready.Store(true)
			b.logger.Info("broker ready", "metadata_index", latest.Index())
		}
		ctx := b.ctx
		var cancel context.CancelFunc = func() {}
		if !b.ready.Load() {
			// While not ready, look again now and then even without a change.
			ctx, cancel = context.WithTimeout(b.ctx, 50*time.Millisecond)
		}
		change, err := sub.Next(ctx)
		cancel()
		if b.ctx.Err() != nil || errors.Is(err, cluster.ErrClosed) {
			return
		}
		if err != nil {
			continue // the readiness timeout
		}
		latest = change.Image
		if caughtUp {
			b.replicas.reconcile(change.Image)
		}
		b.metrics.observeChange(b.cfg.ID, change)
	}
}

// registeredSelf reports whether img holds the registration of this very
// process (not an earlier one of this broker).
func (b *Broker) registeredSelf(img *cluster.Image) bool {
	br, ok := img.Broker(b.cfg.ID)
	return ok && br.Incarnation == b.node.Incarnation()
}

// retentionLoop applies retention.ms and retention.bytes to every hosted log
// every log.retention.check.interval.ms.
func (b *Broker) retentionLoop() {
	t := time.NewTicker(b.cfg.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
			start := time.Now()
			for _, p := range b.replicas.all() {
				if n, err := p.log.EnforceRetention(p.highWatermark()); err != nil {
					b.logger.Warn("retention failed", "topic", p.topic, "partition", p.index, "err", err)
				} else if n > 0 {
					b.logger.Info("retention deleted segments", "topic", p.topic, "partition", p.index, "segments", n)
				}
			}
			b.metrics.retentionPass.Observe(time.Since(start).Seconds())
		}
	}
}

// moveLeadershipAway asks the controller to fence this broker and waits (a
// few seconds at most) until that is applied here. A broker that cannot
// reach the controller shuts down anyway: failure detection moves its
// partitions then.
func (b *Broker) moveLeadershipAway(ctx context.Context) {
	if b.node == nil || len(b.node.Image().LiveBrokers()) < 2 {
		return // nobody to hand partitions to
	}
	b.handingOver.Store(true)
	defer close(b.handedOver)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// First the controller learns this process is going away, so the
	// fence below is not undone while it drains (cluster.PrepareShutdown).
	if err := b.node.PrepareShutdown(ctx); err != nil {
		b.logger.Info("controlled shutdown: controller not told", "err", err)
	}
	res, err := b.node.Submit(ctx, cluster.NewCommand(cluster.FenceBroker{ID: b.cfg.ID}))
	if err != nil {
		b.logger.Info("controlled shutdown: leadership not moved", "err", err)
		return
	}
	b.replicas.waitApplied(ctx, res.Index)
	// Parked produces are answered NOT_LEADER_OR_FOLLOWER next, and the
	// clients then ask any broker for the new leaders: wait until every
	// live broker has applied the fence, so that none answers with the
	// old ones (a client that got them would wait out its metadata
	// refresh backoff). Bounded; a broker that cannot confirm is not
	// waited for.
	waitStart := time.Now()
	replayCtx, cancelReplay := context.WithTimeout(ctx, 2*time.Second)
	err = b.node.AwaitReplay(replayCtx, res.Index)
	cancelReplay()
	if err != nil {
		b.logger.Info("controlled shutdown: not every broker confirmed the new leaders", "err", err)
	}
	b.logger.Info("controlled shutdown: leadership moved", "metadata_index", res.Index,
		"replay_wait", time.Since(waitStart).Round(time.Millisecond))
}

// Clients told NOT_LEADER_OR_FOLLOWER in a controlled shutdown ask some
// broker for the new leaders next, often this one: were its listener closed
// by then, they would wait out a retry backoff (franz-go: ~250 ms) for a
// connection refused. So after handing over, the broker keeps answering
// (Metadata from its current image, NOT_LEADER_OR_FOLLOWER for the
// partitions it left) until no request has come for shutdownQuiet, at most
// shutdownLinger.
const (
	shutdownQuiet  = 200 * time.Millisecond
	shutdownLinger = time.Second
)

// lingerForClients waits, during a controlled shutdown that handed over
// leadership, until the clients have stopped asking (see shutdownQuiet).
func (b *Broker) lingerForClients(ctx context.Context) {
	if !b.handingOver.Load() || b.server == nil {
		return
	}
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < shutdownLinger {
		if time.Since(time.Unix(0, b.lastRequest.Load())) >= shutdownQuiet {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	b.logger.Info("controlled shutdown: clients quiet", "lingered", time.Since(start).Round(time.Millisecond))
}

// brokerAddr is the Kafka address a follower fetches from broker id at.
func (b *Broker) brokerAddr(id int32) (string, bool) {
	if b.node == nil {
		return "", false
	}
	br, ok := b.node.Image().Broker(id)
	if !ok || br.KafkaAddr == "" {
		return "", false
	}
	return br.KafkaAddr, true
}

// brokerEligible reports whether broker id may join an ISR: registered and
// not fenced in the metadata this broker has.
// brokerEpoch is this broker's epoch as the cluster registered this very
// process, which its follower fetches carry (KIP-903); -1 until the
// registration of this process is applied, so fetches sent before it cannot
// pass for the previous process's, nor a zombie of that one for this.
func (b *Broker) brokerEpoch() int64 {
	if b.node == nil {
		return -1
	}
	br, ok := b.node.Image().Broker(b.cfg.ID)
	if !ok || br.Incarnation != b.node.Incarnation() {
		return -1
	}
	return br.Epoch
}

func (b *Broker) brokerEligible(id int32) bool {
	if b.node == nil {
		return false
	}
	br, ok := b.node.Image().Broker(id)
	return ok && !br.Fenced && !br.StorageHeld
}

// alterPartition submits a leader's ISR change to the controller (the
// command is forwarded when this broker is not the controller) and returns
// once it is committed and applied here, or refused.
func (b *Broker) alterPartition(ctx context.Context, req replication.AlterPartitionRequest) error {
	var epoch int64
	if br, ok := b.node.Image().Broker(b.cfg.ID); ok {
		epoch = br.Epoch
	}
	_, err := b.node.Submit(ctx, cluster.NewCommand(cluster.AlterPartition{
		Topic: req.Topic, Partition: req.Partition, Leader: req.Leader, BrokerEpoch: epoch,
		LeaderEpoch: req.LeaderEpoch, PartitionEpoch: req.PartitionEpoch, ISR: req.ISR,
	}))
	return err
}

// KafkaAddr is the address the inter-broker Kafka listener (the only one
// without --listeners) is bound to.
func (b *Broker) KafkaAddr() string {
	if len(b.listeners) == 0 {
		return ""
	}
	return b.listeners[b.interBroker].ln.Addr().String()
}

// HTTPAddr is the address the HTTP listener is bound to, or "".
func (b *Broker) HTTPAddr() string {
	if b.httpLn == nil {
		return ""
	}
	return b.httpLn.Addr().String()
}

// Ready reports whether the broker has loaded the metadata (it sees itself
// registered) and accepts Kafka connections.
func (b *Broker) Ready() bool { return b.ready.Load() }

// Node is the broker's cluster metadata node.
func (b *Broker) Node() *cluster.Node { return b.node }

// Done is closed when the broker stopped, by Shutdown or on a fatal error.
func (b *Broker) Done() <-chan struct{} { return b.done }

// Err is why the broker stopped on its own, or nil.
func (b *Broker) Err() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return b.err
}

func (b *Broker) fail(err error) {
	b.errMu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.errMu.Unlock()
	b.logger.Error("broker failed", "err", err)
	go b.Shutdown(context.Background())
}

// Shutdown stops accepting requests, lets in-flight ones finish (until ctx
// ends), closes every log cleanly so the next start needs no recovery scan,
// and leaves the cluster. Idempotent.
func (b *Broker) Shutdown(ctx context.Context) error {
	var err error
	b.stopOnce.Do(func() {
		b.ready.Store(false)
		// The coordinator resigns first: parked JoinGroup and SyncGroup
		// requests are answered NOT_COORDINATOR, so the drain below does
		// not wait out rebalance timeouts.
		b.groups.Close()
		// Controlled shutdown: the controller fences this broker first, so
		// the partitions it leads get new leaders from their ISRs while it
		// still answers, and clients find them at once instead of after
		// the failure detector (Kafka's controlled shutdown).
		b.moveLeadershipAway(ctx)
		// The replicas stop next: parked acks=all produces and fetches are
		// answered NOT_LEADER_OR_FOLLOWER at once (the clients move to the
		// new leaders) instead of holding the drain for their timeouts,
		// and the HW checkpoint is written while nothing moves it.
		if err := b.repl.Close(); err != nil {
			b.logger.Warn("closing replication", "err", err)
		}
		b.lingerForClients(ctx)
		if b.server != nil {
			err = b.server.Shutdown(ctx)
		}
		if b.httpSrv != nil {
			b.httpSrv.Shutdown(ctx)
		}
		b.stopAll()
		close(b.done)
		b.logger.Info("broker stopped")
	})
	return err
}

// uncleanReported reports whether the controller knows as much as this
// process about an unclean shutdown before it: there was none, or the image
// holds this process's registration as restarted uncleanly.
func (b *Broker) uncleanReported() bool {
	if b.replicas.cleanStart {
		return true
	}
	if b.node == nil {
		return false
	}
	br, ok := b.node.Image().Broker(b.cfg.ID)
	return ok && br.UncleanRestart && br.Incarnation == b.node.Incarnation()
}

// stopAll stops the background work, closes the logs and leaves the cluster.
func (b *Broker) stopAll() {
	b.cancel()
	if b.server != nil {
		b.server.Close()
		if b.httpSrv == nil && b.httpLn != nil {
			b.httpLn.Close() // bound but never served
		}
	} else {
		b.closeListeners()
	}
	b.wg.Wait()
	b.groups.Close() // before the logs close
	// Fetchers stop and the HW checkpoint is written before the logs close.
	if err := b.repl.Close(); err != nil {
		b.logger.Warn("closing replication", "err", err)
	}
	logsClean := b.replicas.closeAll()
	if b.node != nil {
		if err := b.node.Close(); err != nil {
			b.logger.Warn("leaving the cluster", "err", err)
		}
	}
	// Only once every log is closed cleanly may the next start register
	// as cleanly shut down; a crash before this line leaves no marker. A
	// process that itself started uncleanly must first have been
	// registered so: otherwise the controller never heard of the records
	// the earlier crash may have cost, and the marker would hide them.
	if logsClean && b.uncleanReported() {
		if err := writeCleanShutdown(b.cfg.DataDir); err != nil {
			b.logger.Warn("writing the clean-shutdown marker; the next start counts as unclean", "err", err)
		}
	} else if !logsClean {
		b.logger.Warn("a partition log did not close cleanly; the next start counts as unclean")
	}
}

package cluster

import (
	"context"
	"time"
)

// heartbeatLoop sends this broker's BrokerHeartbeat to the controller every
// Timeouts.BrokerHeartbeat until the node stops (see liveness.go), and at
// once whenever it has applied more of the metadata log, so the controller
// learns promptly that this broker knows of a leadership change (see
// AwaitReplay). On the controller it records the heartbeat directly. A
// heartbeat that fails is not retried: the next one is due soon, and the
// controller's rules allow for several missing.
func (n *Node) heartbeatLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Timeouts.BrokerHeartbeat)
	defer tick.Stop()
	for {
		_, applied := n.fsm.appliedNotify()
		if err := n.heartbeat(n.ctx); err != nil {
			n.log.Debug("broker heartbeat failed", "err", err)
		}
		select {
		case <-n.stop:
			return
		case <-tick.C:
		case <-applied:
		}
	}
}

// heartbeatCommand describes this process as the controller registers it.
func (n *Node) heartbeatCommand() BrokerHeartbeat {
	id := n.identity()
	return BrokerHeartbeat{
		ID: n.cfg.ID, KafkaAddr: n.cfg.AdvertisedKafkaAddr, RaftAddr: n.raftAddr, GossipAddr: n.members.addr(),
		HTTPAddr: n.cfg.HTTPAddr, Rack: n.cfg.Rack, Incarnation: n.incarnation,
		UncleanShutdown: n.cfg.UncleanShutdown, ShuttingDown: n.shuttingDown.Load(), Listeners: n.cfg.Listeners,
		StorageHeld:  n.cfg.StorageHeld != nil && n.cfg.StorageHeld(),
		AppliedIndex: n.fsm.appliedIndex(),
		DirectoryID:  id.DirectoryID, ClusterID: id.ClusterID,
	}
}

// heartbeat sends one heartbeat, bounded by a heartbeat interval's worth of
// the miss timeout so a slow controller cannot pile them up.
func (n *Node) heartbeat(ctx context.Context) error {
	hb := n.heartbeatCommand()
	if n.IsController() {
		n.sessions.heartbeat(hb.member(), hb.ShuttingDown, hb.StorageHeld, hb.AppliedIndex, time.Now())
		return nil
	}
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		return errorf(ErrNoController, "broker %d knows no raft leader", n.cfg.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeouts.BrokerHeartbeatMiss/2)
	defer cancel()
	_, err := n.fwd.Forward(ctx, string(addr), NewCommand(hb))
	return err
}

// PrepareShutdown tells the controller that this process is going into a
// controlled shutdown, so that once it is fenced it stays fenced until the
// process ends (Kafka's WantShutDown): without it, the controller would
// unfence a broker that keeps heartbeating while it drains. It retries
// until the controller has the heartbeat or ctx ends. The broker calls it
// before it submits its own FenceBroker.
func (n *Node) PrepareShutdown(ctx context.Context) error {
	n.shuttingDown.Store(true)
	backoff := 10 * time.Millisecond
	for {
		err := n.heartbeat(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errorf(ErrTimeout, "controlled shutdown heartbeat: %v", err)
		case <-n.stop:
			return ErrClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// AwaitReplay waits until every registered, unfenced broker that heartbeats
// has applied the metadata up to index, as the controller sees from their
// heartbeats (Kafka's controlled shutdown waits the same way before
// ShouldShutDown). Bounded by ctx; blocks.
func (n *Node) AwaitReplay(ctx context.Context, index uint64) error {
	_, err := n.Submit(ctx, NewCommand(AwaitReplay{Index: index}))
	return err
}

// awaitReplay answers AwaitReplay on the controller.
func (n *Node) awaitReplay(ctx context.Context, index uint64) (uint64, error) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		lag := n.sessions.lagging(n.Image(), n.cfg.ID, index, time.Now())
		if len(lag) == 0 && n.fsm.appliedIndex() >= index {
			return n.fsm.appliedIndex(), nil
		}
		select {
		case <-ctx.Done():
			return 0, errorf(ErrTimeout, "brokers %v have not applied index %d: %v", lag, index, ctx.Err())
		case <-n.stop:
			return 0, ErrClosed
		case <-tick.C:
		}
	}
}

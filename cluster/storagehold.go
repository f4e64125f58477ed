package cluster

import (
	"slices"
	"time"
)

// Storage holds: a broker whose data disk fell below its free-space reserve
// refuses produces and stops fetching as a follower (broker/diskspace.go).
// Left alone, the partitions it led would take no writes until the disk had
// room again, though their other ISR replicas could take them, and it would
// stay in the ISRs it follows for replica.lag.time.max.ms (30 s), holding
// every acks=all write to those partitions that long. Kafka gets out of
// this by the broker failing its log directory and the controller moving
// leaders and ISRs off it (KIP-112, KIP-858 in KRaft). Here the broker says
// so in its heartbeats (BrokerHeartbeat.StorageHeld), and the controller
// commits SetStorageHeld: each partition the broker leads goes to another
// live ISR replica whose storage is not held, and the broker leaves every
// ISR at once. Where no other replica can lead, it keeps leading (it still
// serves reads). No leader adds it back to an ISR while the hold lasts, so
// no election can pick it either, and new replicas (topic creation, added
// partitions, decommission moves) go to other brokers while enough of them
// can take them. Once its heartbeats have said for UnfenceHold that the
// disk has room again, the controller lifts the hold; it fetches, catches
// up, and its leaders add it back as usual.

// SetStorageHeld records that a broker's storage refuses writes (Held) or
// accepts them again. Holding moves the leadership of each partition the
// broker leads to the first live ISR replica (in replica order) whose
// storage is not held, with a bumped leader epoch, and then takes the
// broker out of the ISR of each partition it does not lead, into the ELR
// when the ISR falls below min.insync.replicas, as a fence does, but never
// empties an ISR. Holding a held broker again does the same for partitions
// where it led or got back into an ISR since (an election with no other
// candidate, a replica that has since caught up). Version 4+.
type SetStorageHeld struct {
	ID   int32 `json:"id"`
	Held bool  `json:"held"`
}

func (SetStorageHeld) Type() CommandType { return TypeSetStorageHeld }

func (img *Image) setStorageHeld(version uint16, p SetStorageHeld, ch *Change) error {
	if err := needsVersion(version, 4, "set storage held"); err != nil {
		return err
	}
	b, ok := img.brokers[p.ID]
	if !ok {
		return errorf(ErrUnknownBroker, "set storage held of broker %d", p.ID)
	}
	if b.StorageHeld != p.Held {
		b.StorageHeld = p.Held
		img.brokers[p.ID] = b
		ch.addBroker(p.ID)
	}
	if !p.Held {
		return nil
	}
	for _, name := range img.TopicNames() {
		t := img.topics[name]
		for _, part := range t.Partitions {
			if np, ok := img.stepBack(t, part, p.ID); ok {
				img.setPartitionChanged(t, np, ch)
			}
		}
	}
	return nil
}

// stepBack is partition p of topic t with held broker id out of the way:
// leadership handed to the first live ISR replica whose storage is not
// held, and id out of the ISR unless it still leads or is the last member.
// ok is false when nothing changes.
func (img *Image) stepBack(t *Topic, p Partition, id int32) (Partition, bool) {
	np := p
	if np.Leader == id {
		i := slices.IndexFunc(np.Replicas, func(r int32) bool {
			return r != id && img.isLive(r) && !img.brokers[r].StorageHeld && slices.Contains(np.ISR, r)
		})
		if i < 0 {
			return p, false
		}
		np.Leader = np.Replicas[i]
		np.LeaderEpoch++
	}
	if len(np.ISR) > 1 && slices.Contains(np.ISR, id) {
		np = withISR(np, without(np.ISR, id), effectiveMinISR(t, np), NoLeader)
	}
	return np, np.Leader != p.Leader || !slices.Equal(np.ISR, p.ISR)
}

// holdHasWork reports whether held broker id leads a partition another
// replica could take, or is in an ISR it could leave: a reason to commit
// its hold again.
func (img *Image) holdHasWork(id int32) bool {
	for _, t := range img.topics {
		for _, p := range t.Partitions {
			if _, ok := img.stepBack(t, p, id); ok {
				return true
			}
		}
	}
	return false
}

// planStorageHolds returns the SetStorageHeld commands for the liveness
// plan's storage reports: a hold for each broker that reports its storage
// held while the image does not say so, or says so but it still leads or
// follows where it could step back; a release for each held broker that has reported room
// steadily (livenessPlan.storageFree).
func planStorageHolds(img *Image, lp livenessPlan) []Command {
	var cmds []Command
	for _, id := range lp.storageHeld {
		b, ok := img.brokers[id]
		if ok && !b.Fenced && (!b.StorageHeld || img.holdHasWork(id)) {
			cmds = append(cmds, NewCommand(SetStorageHeld{ID: id, Held: true}))
		}
	}
	for _, id := range lp.storageFree {
		if b, ok := img.brokers[id]; ok && b.StorageHeld {
			cmds = append(cmds, NewCommand(SetStorageHeld{ID: id, Held: false}))
		}
	}
	return cmds
}

// storageReport is what the heartbeats of one process said of its storage:
// held now, and since when it has said it is not.
type storageReport struct {
	held      bool
	freeSince time.Time
}

// report records one heartbeat's storage state at now.
func (r *storageReport) report(held bool, now time.Time) {
	if !held && (r.held || r.freeSince.IsZero()) {
		r.freeSince = now
	}
	r.held = held
}

// steadilyFree reports whether the process has said its storage has room
// for at least hold.
func (r storageReport) steadilyFree(now time.Time, hold time.Duration) bool {
	return !r.held && !r.freeSince.IsZero() && now.Sub(r.freeSince) >= hold
}

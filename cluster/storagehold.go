package cluster

import (
	"slices"
	"time"
)

// Storage holds: a broker whose data disk fell below its free-space reserve
// refuses produces and stops fetching as a follower (broker/diskspace.go),
// so it falls behind every leader it follows. Left to the leaders, it would
// stay in their ISRs for replica.lag.time.max.ms (30 s), and every acks=all
// write to those partitions would wait that long. Kafka gets out of this by
// the broker failing its log directory and the controller dropping its
// replicas from the ISRs (KIP-112, KIP-858 in KRaft); here the broker says
// so in its heartbeats (BrokerHeartbeat.StorageHeld), and the controller
// commits SetStorageHeld, which takes it out of the ISR of every partition
// it follows at once. It keeps leading what it leads (it still serves
// reads), and no leader adds it back to an ISR while the hold lasts. Once
// its heartbeats have said for UnfenceHold that the disk has room again,
// the controller lifts the hold; it fetches, catches up, and its leaders
// add it back as usual.

// SetStorageHeld records that a broker's storage refuses writes (Held) or
// accepts them again. Holding takes the broker out of the ISR of each
// partition it is in the ISR of but does not lead, into the ELR when the
// ISR falls below min.insync.replicas, as a fence does, but never empties an
// ISR. Holding a held broker again does the same for partitions where it
// got back into an ISR as a follower (a leadership change that made it one).
// Version 4+.
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
			if !heldFollowerInISR(part, p.ID) {
				continue
			}
			img.setPartitionChanged(t, withISR(part, without(part.ISR, p.ID), effectiveMinISR(t, part), NoLeader), ch)
		}
	}
	return nil
}

// heldFollowerInISR reports whether a held broker id is in p's ISR as a
// follower where it can leave it (the ISR is never emptied).
func heldFollowerInISR(p Partition, id int32) bool {
	return p.Leader != id && len(p.ISR) > 1 && slices.Contains(p.ISR, id)
}

// heldFollowerAnywhere reports whether held broker id is in some ISR it
// could leave: a reason to commit its hold again.
func (img *Image) heldFollowerAnywhere(id int32) bool {
	for _, t := range img.topics {
		for _, p := range t.Partitions {
			if heldFollowerInISR(p, id) {
				return true
			}
		}
	}
	return false
}

// planStorageHolds returns the SetStorageHeld commands for the liveness
// plan's storage reports: a hold for each broker that reports its storage
// held while the image does not say so, or says so but still has it in an
// ISR as a follower; a release for each held broker that has reported room
// steadily (livenessPlan.storageFree).
func planStorageHolds(img *Image, lp livenessPlan) []Command {
	var cmds []Command
	for _, id := range lp.storageHeld {
		b, ok := img.brokers[id]
		if ok && !b.Fenced && (!b.StorageHeld || img.heldFollowerAnywhere(id)) {
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

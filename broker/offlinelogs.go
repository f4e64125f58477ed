package broker

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// offlineLogs records this broker's logs that a write error took offline
// (storage.Log.Offline: an fsync that failed, a write that could not be
// cut back). Their files can only be trusted again after recovery, which
// runs when the broker starts, and the disk under them is suspect. So the
// broker holds its storage, as it does for a full disk (SetStorageHeld):
// it leaves every ISR and the controller hands its leaderships to healthy
// replicas, instead of staying leader of a partition it cannot write
// while its followers could take over. Unlike a full disk, the hold lasts
// until the broker is restarted (Kafka takes a log directory offline
// until restart too).
type offlineLogs struct {
	count atomic.Int32
	mu    sync.Mutex
	first string // guarded by mu: the first log that went offline, and why
}

// add counts a log gone offline. storage calls it under the log's lock:
// it must not block.
func (o *offlineLogs) add(topic string, partition int32, err error) {
	o.mu.Lock()
	if o.first == "" {
		o.first = fmt.Sprintf("%s-%d (%v)", topic, partition, err)
	}
	o.mu.Unlock()
	o.count.Add(1)
}

func (o *offlineLogs) held() bool { return o.count.Load() > 0 }

// why is the reason the broker's storage is held, for errors and health.
func (o *offlineLogs) why() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprintf("%d partition log(s) offline after a write error, first %s; the broker holds its storage until it is restarted, which recovers the logs",
		o.count.Load(), o.first)
}

// storageHeld reports whether this broker holds its storage: its disk is
// below the free-space reserve, or a log of it is offline. The cluster
// then takes it out of every ISR and its leaderships where others can
// lead, and its fetchers pause.
func (b *Broker) storageHeld() bool { return b.disk.full() || b.offline.held() }

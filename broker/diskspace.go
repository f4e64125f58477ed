package broker

import (
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// AutoMinFreeBytes makes the free-space reserve 5% of the data disk, at
// most 1 GiB (Config.MinFreeBytes).
const AutoMinFreeBytes = -1

// diskCheckInterval is how often the data disk's free space is read.
// Between two reads the bytes appended since count against it, so a fast
// producer cannot run through the reserve in the meantime.
var diskCheckInterval = time.Second

// diskGuard keeps a reserve of free space on the data disk (Redpanda's
// storage_min_free_bytes): below it, produces are refused with
// KAFKA_STORAGE_ERROR (retriable: clients retry until space returns) and
// followers stop fetching, so the metadata Raft log, checkpoints, topic
// deletion and DeleteRecords — what an operator needs to free space — keep
// working; reads and metadata are served as usual. Writes resume by
// themselves once space is free again (a topic deleted, records trimmed,
// retention run).
type diskGuard struct {
	dir      string
	reserve  atomic.Int64 // bytes; 0 disables the guard
	free     atomic.Int64 // at the last read
	written  atomic.Int64 // appended since the last read
	low      atomic.Bool
	explicit int64 // Config.MinFreeBytes as set: AutoMinFreeBytes, 0, or bytes
	statfs   func(dir string) (free, total int64, err error)
}

func newDiskGuard(dir string, minFree int64) *diskGuard {
	return &diskGuard{dir: dir, explicit: minFree, statfs: statfsBytes}
}

func statfsBytes(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
}

// check reads the disk's free space and decides whether writes are held.
// It reports whether the state changed, and the error of the read (the
// state is then left as it was).
func (g *diskGuard) check() (changed bool, err error) {
	free, total, err := g.statfs(g.dir)
	if err != nil {
		return false, err
	}
	reserve := g.explicit
	if reserve == AutoMinFreeBytes {
		reserve = min(1<<30, total/20)
	}
	g.reserve.Store(reserve)
	g.free.Store(free)
	g.written.Store(0)
	return g.set(reserve > 0 && free < reserve), nil
}

func (g *diskGuard) set(low bool) bool { return g.low.Swap(low) != low }

// full reports whether writes are held because the free space is below the
// reserve, counting what was appended since the last read of the disk.
func (g *diskGuard) full() bool {
	if g.low.Load() {
		return true
	}
	reserve := g.reserve.Load()
	return reserve > 0 && g.free.Load()-g.written.Load() < reserve
}

// appended counts bytes written since the last read of the disk.
func (g *diskGuard) appended(n int) { g.written.Add(int64(n)) }

// why is the reason writes are held, for errors and the health answer.
func (g *diskGuard) why() string {
	return fmt.Sprintf("free space on the data disk (%s) is below the reserve of %s (--storage-min-free-bytes); writes resume once space is freed",
		humanBytes(g.free.Load()-g.written.Load()), humanBytes(g.reserve.Load()))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// diskLoop reads the disk every diskCheckInterval until the broker stops.
func (b *Broker) diskLoop() {
	t := time.NewTicker(diskCheckInterval)
	defer t.Stop()
	for {
		changed, err := b.disk.check()
		switch {
		case err != nil:
			b.logger.Warn("cannot read the data disk's free space", "err", err)
		case changed && b.disk.full():
			b.logger.Error("data disk below its free-space reserve: refusing produces and pausing follower fetches",
				"free_bytes", b.disk.free.Load(), "reserve_bytes", b.disk.reserve.Load())
		case changed:
			b.logger.Info("data disk above its free-space reserve again: writes resume",
				"free_bytes", b.disk.free.Load(), "reserve_bytes", b.disk.reserve.Load())
		}
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
	}
}

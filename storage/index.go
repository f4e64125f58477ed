package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The two sparse indexes of a segment. Both are kept in memory while the
// segment is open (the writer appends, readers search) and written to their
// files whole when the segment rolls or the log closes cleanly. On disk they
// use Kafka's layouts: .index entries are (relative offset u32, position u32),
// .timeindex entries are (timestamp i64, relative offset u32), big-endian.
// An index file that is missing or fails validation is rebuilt from the log.

const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

type offsetEntry struct {
	relOffset uint32 // offset - segment base offset
	position  uint32 // byte position of the batch starting at that offset
}

type timeEntry struct {
	timestamp int64  // largest timestamp seen up to and including relOffset
	relOffset uint32 // offset of a batch whose maxTimestamp is timestamp
}

// sparseIndex is an append-only, sorted list of entries shared by one writer
// and many readers.
//
// The entries of a sealed segment can be dropped from memory (evict) and
// are read back from the segment's index file by the next call that needs
// them: every index kept resident would cost about 0.5% of the retained
// bytes (8+12 bytes per 4 KiB indexed), gigabytes for a broker keeping
// terabytes over thousands of partitions, while lookups mostly touch the
// newest segments. A file that cannot be read back leaves the index empty,
// which is slow but correct: lookups then scan the segment from its start.
type sparseIndex[E offsetEntry | timeEntry] struct {
	mu      sync.RWMutex
	entries []E                 // guarded by mu; sorted by relOffset and by position/timestamp
	reload  func() ([]E, error) // guarded by mu; set while the entries are evicted
	// touched is set by every use and cleared by evict, which drops only
	// entries not used since its previous call (a second chance).
	touched atomic.Bool
}

// read runs fn on the entries under the read lock, loading them first if
// they were evicted.
func (x *sparseIndex[E]) read(fn func([]E)) {
	if !x.touched.Load() { // a load, not a store, on every lookup of a hot index
		x.touched.Store(true)
	}
	x.mu.RLock()
	if x.reload == nil {
		fn(x.entries)
		x.mu.RUnlock()
		return
	}
	x.mu.RUnlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.loadLocked()
	fn(x.entries)
}

// loadLocked brings evicted entries back from their file.
func (x *sparseIndex[E]) loadLocked() {
	if x.reload == nil {
		return
	}
	entries, err := x.reload()
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // gone: retention removed the segment under a reader
		slog.Warn("storage: an evicted segment index could not be read back; lookups in that segment scan it from its start", "err", err)
	}
	if err != nil {
		entries = nil
	}
	x.entries, x.reload = entries, nil
}

// evict drops the entries unless they were used since the last evict
// (unless force) or are already evicted; reload reads them back. It reports
// the bytes freed. Only for a sealed segment whose index file holds exactly
// these entries.
func (x *sparseIndex[E]) evict(reload func() ([]E, error), force bool) int {
	if x.touched.Swap(false) && !force {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.reload != nil {
		return 0
	}
	var e E
	freed := cap(x.entries) * int(unsafe.Sizeof(e))
	x.entries, x.reload = nil, reload
	return freed
}

// resident reports whether the entries are in memory.
func (x *sparseIndex[E]) resident() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.reload == nil
}

func (x *sparseIndex[E]) append(e E) {
	x.mu.Lock()
	x.loadLocked()
	x.entries = append(x.entries, e)
	x.mu.Unlock()
}

// last returns the final entry, if any.
func (x *sparseIndex[E]) last() (e E, ok bool) {
	x.read(func(entries []E) {
		if len(entries) > 0 {
			e, ok = entries[len(entries)-1], true
		}
	})
	return e, ok
}

// floor returns the last entry for which below is true, where below is true
// for a prefix of the entries (false from some index on).
func (x *sparseIndex[E]) floor(below func(E) bool) (e E, ok bool) {
	x.read(func(entries []E) {
		if i := sort.Search(len(entries), func(i int) bool { return !below(entries[i]) }); i > 0 {
			e, ok = entries[i-1], true
		}
	})
	return e, ok
}

// truncate keeps the entries for which keep is true, a prefix of the list.
func (x *sparseIndex[E]) truncate(keep func(E) bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.loadLocked()
	i := sort.Search(len(x.entries), func(i int) bool { return !keep(x.entries[i]) })
	x.entries = x.entries[:i:i] // cap so a later append cannot write into a reader's view
}

func (x *sparseIndex[E]) reset(entries []E) {
	x.mu.Lock()
	x.entries, x.reload = entries, nil
	x.mu.Unlock()
}

func (x *sparseIndex[E]) len() (n int) {
	x.read(func(entries []E) { n = len(entries) })
	return n
}

func (x *sparseIndex[E]) snapshot() (out []E) {
	x.read(func(entries []E) { out = append([]E(nil), entries...) })
	return out
}

func marshalOffsetIndex(entries []offsetEntry) []byte {
	b := make([]byte, 0, len(entries)*offsetEntrySize)
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, e.relOffset)
		b = binary.BigEndian.AppendUint32(b, e.position)
	}
	return b
}

func marshalTimeIndex(entries []timeEntry) []byte {
	b := make([]byte, 0, len(entries)*timeEntrySize)
	for _, e := range entries {
		b = binary.BigEndian.AppendUint64(b, uint64(e.timestamp))
		b = binary.BigEndian.AppendUint32(b, e.relOffset)
	}
	return b
}

// loadOffsetIndex reads an .index file and checks that it can belong to a
// segment of segSize bytes whose offsets end before nextRel: entries strictly
// increasing in both fields and inside the segment.
func loadOffsetIndex(path string, segSize int64, nextRel uint32) ([]offsetEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%offsetEntrySize != 0 {
		return nil, fmt.Errorf("storage: index %s: size %d is not a whole number of entries", path, len(b))
	}
	entries := make([]offsetEntry, len(b)/offsetEntrySize)
	for i := range entries {
		e := offsetEntry{
			relOffset: binary.BigEndian.Uint32(b[i*offsetEntrySize:]),
			position:  binary.BigEndian.Uint32(b[i*offsetEntrySize+4:]),
		}
		if int64(e.position) >= segSize || e.relOffset >= nextRel ||
			(i > 0 && (e.relOffset <= entries[i-1].relOffset || e.position <= entries[i-1].position)) {
			return nil, fmt.Errorf("storage: index %s: entry %d (%d→%d) out of order or past the segment", path, i, e.relOffset, e.position)
		}
		entries[i] = e
	}
	return entries, nil
}

// loadTimeIndex reads a .timeindex file with the same kind of checks.
func loadTimeIndex(path string, nextRel uint32) ([]timeEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("storage: time index %s: size %d is not a whole number of entries", path, len(b))
	}
	entries := make([]timeEntry, len(b)/timeEntrySize)
	for i := range entries {
		e := timeEntry{
			timestamp: int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			relOffset: binary.BigEndian.Uint32(b[i*timeEntrySize+8:]),
		}
		if e.relOffset >= nextRel || (i > 0 && (e.timestamp < entries[i-1].timestamp || e.relOffset < entries[i-1].relOffset)) {
			return nil, fmt.Errorf("storage: time index %s: entry %d out of order or past the segment", path, i)
		}
		entries[i] = e
	}
	return entries, nil
}

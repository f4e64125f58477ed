package storage

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"sync"
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
type sparseIndex[E offsetEntry | timeEntry] struct {
	mu      sync.RWMutex
	entries []E // guarded by mu; sorted by relOffset and by position/timestamp
}

func (x *sparseIndex[E]) append(e E) {
	x.mu.Lock()
	x.entries = append(x.entries, e)
	x.mu.Unlock()
}

// last returns the final entry, if any.
func (x *sparseIndex[E]) last() (E, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var zero E
	if len(x.entries) == 0 {
		return zero, false
	}
	return x.entries[len(x.entries)-1], true
}

// floor returns the last entry for which below is true, where below is true
// for a prefix of the entries (false from some index on).
func (x *sparseIndex[E]) floor(below func(E) bool) (E, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	i := sort.Search(len(x.entries), func(i int) bool { return !below(x.entries[i]) })
	var zero E
	if i == 0 {
		return zero, false
	}
	return x.entries[i-1], true
}

// truncate keeps the entries for which keep is true, a prefix of the list.
func (x *sparseIndex[E]) truncate(keep func(E) bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := sort.Search(len(x.entries), func(i int) bool { return !keep(x.entries[i]) })
	x.entries = x.entries[:i:i] // cap so a later append cannot write into a reader's view
}

func (x *sparseIndex[E]) reset(entries []E) {
	x.mu.Lock()
	x.entries = entries
	x.mu.Unlock()
}

func (x *sparseIndex[E]) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.entries)
}

func (x *sparseIndex[E]) snapshot() []E {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([]E(nil), x.entries...)
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

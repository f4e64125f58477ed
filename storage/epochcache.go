package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// errCorruptCheckpoint marks a leader-epoch checkpoint file that does not
// parse; openEpochCache wraps it with the file's path.
var errCorruptCheckpoint = errors.New("storage: corrupt checkpoint file")

// epochCheckpointName is Kafka's file name, in Kafka's text format:
//
//	0                  version
//	2                  number of entries
//	0 0                epoch startOffset, ascending
//	3 1500
const epochCheckpointName = "leader-epoch-checkpoint"

// epochEntry says that leader epoch `epoch` wrote its first record at startOffset.
type epochEntry struct {
	epoch       int32
	startOffset int64
}

// epochCache maps leader epochs to their start offsets (Kafka's
// LeaderEpochFileCache), so that OffsetForLeaderEpoch (KIP-101, KIP-279) can
// tell a follower or consumer where an epoch ended. Entries are ascending in
// both epoch and startOffset.
//
// Unlike producerStates it is safe for concurrent use: the Log's writer calls
// assign and the truncations, request handlers call endOffsetFor.
type epochCache struct {
	path   string
	fs     FileSystem // set by the Log before its first write
	logger *slog.Logger

	// writeMu serializes mutations together with their file writes, so the
	// file follows the order of the changes; readers never wait for an fsync.
	writeMu sync.Mutex
	mu      sync.RWMutex // guards epochs; writers also hold writeMu
	epochs  []epochEntry
}

// openEpochCache loads dir/leader-epoch-checkpoint if present. A file that
// does not parse, or whose entries are not ascending, is an error wrapping
// errCorruptCheckpoint that names the file.
func openEpochCache(dir string, logger *slog.Logger) (*epochCache, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &epochCache{path: filepath.Join(dir, epochCheckpointName), fs: osFS{}, logger: logger}
	data, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: read leader epoch checkpoint: %w", err)
	}
	if c.epochs, err = parseEpochCheckpoint(data); err != nil {
		return nil, fmt.Errorf("%w %s: %v", errCorruptCheckpoint, c.path, err)
	}
	return c, nil
}

func parseEpochCheckpoint(data []byte) ([]epochEntry, error) {
	if len(data) == 0 {
		return nil, nil // Kafka reads an empty file as no entries
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[0] != "0" {
		return nil, fmt.Errorf("line 1: version %q, want 0", lines[0])
	}
	if len(lines) < 2 {
		return nil, errors.New("missing entry count")
	}
	count, err := strconv.Atoi(lines[1])
	if err != nil || count != len(lines)-2 {
		return nil, fmt.Errorf("line 2: entry count %q, but %d entry lines", lines[1], len(lines)-2)
	}
	entries := make([]epochEntry, 0, count)
	for i, line := range lines[2:] {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: %q is not \"epoch startOffset\"", i+3, line)
		}
		epoch, err1 := strconv.ParseInt(fields[0], 10, 32)
		start, err2 := strconv.ParseInt(fields[1], 10, 64)
		e := epochEntry{epoch: int32(epoch), startOffset: start}
		if err1 != nil || err2 != nil || e.epoch < 0 || e.startOffset < 0 {
			return nil, fmt.Errorf("line %d: invalid entry %q", i+3, line)
		}
		if n := len(entries); n > 0 && (e.epoch <= entries[n-1].epoch || e.startOffset < entries[n-1].startOffset) {
			return nil, fmt.Errorf("line %d: entry %q does not follow %v", i+3, line, entries[n-1])
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// assign records that epoch starts at startOffset; the Log calls it when a
// leader takes over and when it appends a batch of a new epoch. It is a no-op
// for the latest epoch. A stale entry (an older epoch, or a start below the
// latest start) is ignored with a warning: the Log truncates the cache before
// rewriting history. A newer epoch at the latest start replaces the latest
// entry, which then had no records (Kafka drops such entries too). Persists on
// change; on a write error the memory keeps the change and the Log must treat
// itself as failed.
func (c *epochCache) assign(epoch int32, startOffset int64) error {
	if epoch < 0 || startOffset < 0 {
		return fmt.Errorf("storage: invalid leader epoch entry %d at offset %d", epoch, startOffset)
	}
	// The common case, every append of a leader: its epoch is the latest
	// already. No clone of the entries, no lock beyond the read.
	if latest, ok := c.latest(); ok && latest.epoch == epoch {
		return nil
	}
	return c.update(func(epochs []epochEntry) []epochEntry { return c.assigned(epochs, epoch, startOffset) })
}

// assignScanned is assign for a batch that recovery scans: the cache file
// may already hold the batch's epoch and later ones (it is written before
// the batches are fsynced), so an older entry is expected here and skipped
// without assign's warning, which would otherwise come once per batch.
func (c *epochCache) assignScanned(epoch int32, startOffset int64) error {
	if latest, ok := c.latest(); ok && (epoch <= latest.epoch || startOffset < latest.startOffset) {
		return nil
	}
	return c.assign(epoch, startOffset)
}

// assigned is epochs with epoch starting at startOffset, for assign.
func (c *epochCache) assigned(epochs []epochEntry, epoch int32, startOffset int64) []epochEntry {
	if len(epochs) == 0 {
		return append(epochs, epochEntry{epoch, startOffset})
	}
	latest := epochs[len(epochs)-1]
	switch {
	case epoch == latest.epoch:
		return epochs
	case epoch < latest.epoch || startOffset < latest.startOffset:
		c.logger.Warn("ignoring stale leader epoch assignment",
			"epoch", epoch, "start_offset", startOffset,
			"latest_epoch", latest.epoch, "latest_start_offset", latest.startOffset)
		return epochs
	case startOffset == latest.startOffset:
		epochs[len(epochs)-1] = epochEntry{epoch, startOffset}
		return epochs
	}
	return append(epochs, epochEntry{epoch, startOffset})
}

// recover brings the cache in line with a log recovered to [startOffset,
// endOffset): truncateFromEnd(endOffset), truncateFromStart(startOffset),
// then, when assignEpoch >= 0, assign(assignEpoch, endOffset), with at most
// one checkpoint write for the three, and none when the result is what the
// file holds.
func (c *epochCache) recover(endOffset, startOffset int64, assignEpoch int32) error {
	return c.update(func(epochs []epochEntry) []epochEntry {
		if endOffset >= 0 {
			epochs = truncatedFromEnd(epochs, endOffset)
		}
		epochs = truncatedFromStart(epochs, startOffset)
		if assignEpoch >= 0 && endOffset >= 0 {
			epochs = c.assigned(epochs, assignEpoch, endOffset)
		}
		return epochs
	})
}

// latest is the newest entry.
func (c *epochCache) latest() (epochEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.epochs) == 0 {
		return epochEntry{}, false
	}
	return c.epochs[len(c.epochs)-1], true
}

// endOffsetFor answers OffsetForLeaderEpoch for the requested epoch given the
// log end offset leo. It returns the largest known epoch <= requested and
// where that epoch ended: the start of the next epoch, or leo for the latest
// epoch. It returns (-1, -1) (UNDEFINED) for an empty cache, requested < 0 or
// requested above the latest epoch. For requested below the first known epoch
// it follows Kafka's code (not its older javadoc) and returns (requested, first
// start offset): those epochs were removed by retention, and the asker should
// truncate to where this log's history begins rather than fall back to its
// high watermark.
func (c *epochCache) endOffsetFor(requested int32, leo int64) (epoch int32, endOffset int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := len(c.epochs)
	switch {
	case n == 0 || requested < 0 || requested > c.epochs[n-1].epoch:
		return -1, -1
	case requested == c.epochs[n-1].epoch:
		return requested, leo
	}
	// First entry with epoch > requested; it exists since requested < latest.
	i := sort.Search(n, func(i int) bool { return c.epochs[i].epoch > requested })
	if i == 0 {
		return requested, c.epochs[0].startOffset
	}
	return c.epochs[i-1].epoch, c.epochs[i].startOffset
}

// epochFor is the leader epoch of the record at offset: that of the last
// entry starting at or below it, or -1 when offset precedes every entry (or
// the cache is empty).
func (c *epochCache) epochFor(offset int64) int32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i := sort.Search(len(c.epochs), func(i int) bool { return c.epochs[i].startOffset > offset })
	if i == 0 {
		return -1
	}
	return c.epochs[i-1].epoch
}

// truncateFromEnd drops entries starting at or above endOffset, after the log
// was truncated to endOffset. Persists on change.
func (c *epochCache) truncateFromEnd(endOffset int64) error {
	if endOffset < 0 {
		return nil // no log to truncate to; Kafka ignores it too
	}
	return c.update(func(epochs []epochEntry) []epochEntry { return truncatedFromEnd(epochs, endOffset) })
}

func truncatedFromEnd(epochs []epochEntry, endOffset int64) []epochEntry {
	i := sort.Search(len(epochs), func(i int) bool { return epochs[i].startOffset >= endOffset })
	return epochs[:i]
}

// truncateFromStart follows the log start up to startOffset: entries starting
// at or below it are dropped except the latest of them, which is kept with
// its start moved up to startOffset (it still covers the first records).
// Persists on change.
func (c *epochCache) truncateFromStart(startOffset int64) error {
	return c.update(func(epochs []epochEntry) []epochEntry { return truncatedFromStart(epochs, startOffset) })
}

func truncatedFromStart(epochs []epochEntry, startOffset int64) []epochEntry {
	i := sort.Search(len(epochs), func(i int) bool { return epochs[i].startOffset > startOffset })
	if i == 0 {
		return epochs
	}
	epochs[i-1].startOffset = startOffset
	return epochs[i-1:]
}

// entries returns a copy of all entries, ascending.
func (c *epochCache) entries() []epochEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.epochs)
}

// clear drops every entry and persists the empty cache.
func (c *epochCache) clear() error {
	return c.update(func([]epochEntry) []epochEntry { return nil })
}

// update applies f to a copy of the entries, installs the result and, if it
// differs, writes the file. f may modify and return its argument.
func (c *epochCache) update(f func([]epochEntry) []epochEntry) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	// Only holders of writeMu change epochs, so reading it here needs no mu.
	old := c.epochs
	next := f(slices.Clone(old))
	if slices.Equal(old, next) {
		return nil
	}
	c.mu.Lock()
	c.epochs = next
	c.mu.Unlock()

	var b strings.Builder
	fmt.Fprintf(&b, "0\n%d\n", len(next))
	for _, e := range next {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.startOffset)
	}
	if err := writeFileAtomic(c.fs, c.path, []byte(b.String()), true); err != nil {
		return fmt.Errorf("storage: write leader epoch checkpoint: %w", err)
	}
	return nil
}

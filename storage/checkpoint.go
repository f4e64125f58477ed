package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Two small files beside the segments record what a reopen may trust.
//
// "log.checkpoint" holds the log start offset (moved by retention and
// DeleteRecords) and the recovery point: every batch below it is fsynced and
// every segment wholly below it has index files that match it. An unclean
// start scans only from the segment holding the recovery point.
//
// ".clean_shutdown" is written last by Close, after everything is flushed,
// and deleted by Open before the first write. Its presence means the files
// are exactly as Close left them, so Open skips the scan. It records the log
// end offset and the active segment's size, which Open cross-checks.

// "log-start-offset" holds the log start offset set by DeleteRecords and by
// a truncation that restarted the log, written durably (file and directory
// fsynced) before the operation is acknowledged, so a crash cannot bring
// back records a client deleted. log.checkpoint is rewritten without fsync
// (it is also written on the flush.messages path), so a crash can leave it
// empty; its log start is only a fallback for directories from before this
// file. Retention does not write it: retention moves the log start to a
// segment boundary, which the surviving segment files give back.

const (
	checkpointFile    = "log.checkpoint"
	logStartFile      = "log-start-offset"
	cleanShutdownFile = ".clean_shutdown"
	checkpointVersion = "1"
)

type logCheckpoint struct {
	logStartOffset int64
	recoveryPoint  int64
}

func writeLogCheckpoint(fsys FileSystem, dir string, c logCheckpoint) error {
	data := fmt.Sprintf("%s %d %d\n", checkpointVersion, c.logStartOffset, c.recoveryPoint)
	return writeFileAtomic(fsys, filepath.Join(dir, checkpointFile), []byte(data), false)
}

// readLogCheckpoint returns ok=false when there is no usable checkpoint; the
// caller then trusts nothing (recovery point 0) and takes the log start from
// the first segment.
func readLogCheckpoint(dir string) (logCheckpoint, bool) {
	f, ok := readVersionedInts(filepath.Join(dir, checkpointFile), 2)
	if !ok || f[0] < 0 || f[1] < 0 {
		return logCheckpoint{}, false
	}
	return logCheckpoint{logStartOffset: f[0], recoveryPoint: f[1]}, true
}

func writeLogStart(fsys FileSystem, dir string, logStart int64) error {
	data := fmt.Sprintf("%s %d\n", checkpointVersion, logStart)
	if err := writeFileAtomic(fsys, filepath.Join(dir, logStartFile), []byte(data), true); err != nil {
		return fmt.Errorf("storage: persist log start offset %d: %w", logStart, err)
	}
	return nil
}

// readLogStart returns ok=false when the file is missing or unusable.
func readLogStart(dir string) (int64, bool) {
	f, ok := readVersionedInts(filepath.Join(dir, logStartFile), 1)
	if !ok || f[0] < 0 {
		return 0, false
	}
	return f[0], true
}

type cleanShutdown struct {
	leo        int64
	activeBase int64
	activeSize int64
}

func writeCleanShutdown(fsys FileSystem, dir string, c cleanShutdown) error {
	data := fmt.Sprintf("%s %d %d %d\n", checkpointVersion, c.leo, c.activeBase, c.activeSize)
	return writeFileAtomic(fsys, filepath.Join(dir, cleanShutdownFile), []byte(data), true)
}

// takeCleanShutdown reads and removes the marker, durably, so a crash after
// this Open can never be mistaken for a clean stop.
func takeCleanShutdown(fsys FileSystem, dir string) (cleanShutdown, bool, error) {
	path := filepath.Join(dir, cleanShutdownFile)
	f, ok := readVersionedInts(path, 3)
	if err := fsys.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return cleanShutdown{}, false, nil
		}
		return cleanShutdown{}, false, fmt.Errorf("storage: remove clean-shutdown marker: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return cleanShutdown{}, false, err
	}
	if !ok {
		return cleanShutdown{}, false, nil
	}
	return cleanShutdown{leo: f[0], activeBase: f[1], activeSize: f[2]}, true, nil
}

// readVersionedInts parses "<version> <n integers>\n".
func readVersionedInts(path string, n int) ([]int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	fields := strings.Fields(string(b))
	if len(fields) != n+1 || fields[0] != checkpointVersion {
		return nil, false
	}
	out := make([]int64, n)
	for i := range out {
		v, err := strconv.ParseInt(fields[i+1], 10, 64)
		if err != nil {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

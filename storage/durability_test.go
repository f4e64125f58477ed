package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestEmptyIndexFilesAreRebuilt: a crash after a rename that was not fsynced
// can leave an index file empty. An empty .index made every fetch of the
// segment scan from position 0, and an empty .timeindex hid the segment's
// newest timestamp, so time retention stopped at it. Both must be noticed
// against the segment and rebuilt, also after a clean shutdown.
func TestEmptyIndexFilesAreRebuilt(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	cfg := smallSegments(8 << 10)
	cfg.IndexIntervalBytes = 256
	cfg.RetentionMs = time.Hour
	l := openTestLog(t, dir, cfg, clock)
	// Small batches, so every segment (the active one too) holds many
	// index intervals and an empty index cannot be right for it.
	var batches [][]byte
	for i := range 200 {
		b := plainBatch(2, 50, 1_700_000_000_000+int64(i)).build()
		mustAppend(t, l, b, 0)
		batches = append(batches, b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*"+logSuffix))
	if len(logs) < 4 {
		t.Fatalf("setup: %d segments", len(logs))
	}
	base := func(i int) string { return logs[i][:len(logs[i])-len(logSuffix)] }
	for _, p := range []string{base(0) + indexSuffix, base(1) + timeIndexSuffix, base(len(logs)-1) + indexSuffix} {
		if err := os.Truncate(p, 0); err != nil {
			t.Fatal(err)
		}
	}
	r := openTestLog(t, dir, cfg, clock)
	defer r.Close()
	if st := r.Recovery(); st.IndexesRebuilt != 3 {
		t.Fatalf("recovery stats %+v, want the 3 emptied indexes rebuilt", st)
	}
	if !bytes.Equal(readAll(t, r), bytes.Join(batches, nil)) {
		t.Fatal("data differs after index rebuild")
	}
	segs := *r.segments.Load()
	for i, s := range segs {
		if s.index.len() == 0 {
			t.Errorf("segment %d has no offset index entries after reopen", i)
		}
	}
	// Every sealed segment is past retention: all of them go.
	clock.Advance(48 * time.Hour)
	n, err := r.EnforceRetention(r.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if n != len(segs) {
		t.Fatalf("retention deleted %d of %d expired segments", n, len(segs))
	}
}

// TestIndexFilesSyncedBeforeTheyAreVouchedFor: the recovery point and the
// clean-shutdown marker tell the next Open to trust a segment's index files,
// so those files must be fsynced first.
func TestIndexFilesSyncedBeforeTheyAreVouchedFor(t *testing.T) {
	t.Run("background flush after roll", func(t *testing.T) {
		dir := t.TempDir()
		efs := newErrorFS()
		efs.inject(fault{op: opSync, suffix: indexSuffix, times: 1})
		l, err := Open(dir, smallSegments(300), Options{Logger: testLogger(t), FS: efs})
		if err != nil {
			t.Fatal(err)
		}
		for l.SegmentCount() < 2 {
			mustAppend(t, l, plainBatch(1, 10, 1).build(), 0)
		}
		// The flusher reports to no one: poll for its fsync of the index.
		deadline := time.Now().Add(5 * time.Second)
		for efs.failures() == 0 {
			if time.Now().After(deadline) {
				l.crash()
				cp, _ := readLogCheckpoint(dir)
				t.Fatalf("no fsync of a rolled segment's index within 5s; recovery point %d", cp.recoveryPoint)
			}
			time.Sleep(time.Millisecond)
		}
		l.crash() // waits for the flusher
		if cp, _ := readLogCheckpoint(dir); cp.recoveryPoint != 0 {
			t.Fatalf("recovery point %d covers a segment whose index fsync failed", cp.recoveryPoint)
		}
	})
	t.Run("clean close", func(t *testing.T) {
		dir := t.TempDir()
		efs := newErrorFS()
		l, err := Open(dir, DefaultConfig(), Options{Logger: testLogger(t), FS: efs})
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, plainBatch(3, 10, 1).build(), 0)
		efs.inject(fault{op: opSync, suffix: timeIndexSuffix + tempFileSuffix})
		if err := l.Close(); err == nil {
			t.Fatal("Close succeeded although the time index could not be fsynced")
		}
		if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("clean-shutdown marker written over an index that is not durable (%v)", err)
		}
	})
}

// TestDeleteRecordsIsDurable: DeleteRecords inside a segment is acknowledged
// only once the new log start is on disk; log.checkpoint, rewritten without
// fsync, may be lost in a crash without bringing the records back.
func TestDeleteRecordsIsDurable(t *testing.T) {
	dir := t.TempDir()
	efs := newErrorFS()
	l, err := Open(dir, DefaultConfig(), Options{Logger: testLogger(t), FS: efs})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		mustAppend(t, l, plainBatch(1, 10, 1).build(), 0)
	}
	efs.inject(fault{op: opSync, suffix: tempFileSuffix, times: 1})
	if _, err := l.DeleteRecordsBefore(4); err == nil {
		t.Fatal("DeleteRecords acknowledged although nothing could be made durable")
	}
	if got := l.LogStartOffset(); got != 0 {
		t.Fatalf("log start %d after a failed DeleteRecords", got)
	}
	if got, err := l.DeleteRecordsBefore(6); err != nil || got != 6 {
		t.Fatalf("DeleteRecords: %d, %v", got, err)
	}
	l.crash()
	// The crash lost the checkpoint that was never fsynced.
	if err := os.Truncate(filepath.Join(dir, checkpointFile), 0); err != nil {
		t.Fatal(err)
	}
	r := openTestLog(t, dir, DefaultConfig(), nil)
	defer r.Close()
	if got := r.LogStartOffset(); got != 6 {
		t.Fatalf("log start %d after a crash, DeleteRecords had moved it to 6", got)
	}
}

// TestDeleteRecordsDoesNotStallAppends: the fsync that makes a DeleteRecords
// durable happens outside the writer lock, so a slow disk there does not
// hold up produces (before the fix Append waited for the whole fsync).
func TestDeleteRecordsDoesNotStallAppends(t *testing.T) {
	dir := t.TempDir()
	efs := newErrorFS()
	l, err := Open(dir, DefaultConfig(), Options{Logger: testLogger(t), FS: efs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 10 {
		mustAppend(t, l, plainBatch(1, 10, 1).build(), 0)
	}
	stall, stalled := make(chan struct{}), make(chan struct{}, 1)
	efs.inject(fault{op: opSync, suffix: logStartFile + tempFileSuffix, times: 1, stall: stall, stalled: stalled})
	deleted := make(chan error, 1)
	go func() {
		_, err := l.DeleteRecordsBefore(4)
		deleted <- err
	}()
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("DeleteRecords never reached the fsync of the log-start file")
	}
	appended := make(chan error, 1)
	go func() {
		_, err := l.Append(plainBatch(1, 10, 1).build(), 0)
		appended <- err
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatalf("append while DeleteRecords fsyncs: %v", err)
		}
	case <-time.After(5 * time.Second):
		close(stall)
		t.Fatal("an append waited for DeleteRecords' fsync of the log-start file")
	}
	close(stall)
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if got, want := l.LogStartOffset(), int64(4); got != want {
		t.Fatalf("log start %d, want %d", got, want)
	}
	if got, ok := readLogStart(dir); !ok || got != 4 {
		t.Fatalf("log-start file says %d (ok %v), want 4", got, ok)
	}
}

// TestValidationOutsideTheWriterLock: a batch's CRC is checked before the
// writer lock, so a corrupt request is refused at once even while another
// append holds the lock (here stalled in its pwrite); before, it queued
// behind the lock and validated there.
func TestValidationOutsideTheWriterLock(t *testing.T) {
	efs := newErrorFS()
	l, err := Open(t.TempDir(), DefaultConfig(), Options{Logger: testLogger(t), FS: efs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stall, stalled := make(chan struct{}), make(chan struct{}, 1)
	efs.inject(fault{op: opWriteAt, suffix: ".log", times: 1, stall: stall, stalled: stalled})
	first := make(chan error, 1)
	go func() {
		_, err := l.Append(plainBatch(1, 10, 1).build(), 0)
		first <- err
	}()
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("the first append never reached its pwrite")
	}
	bad := plainBatch(1, 10, 1).build()
	bad[len(bad)-1] ^= 0xff // the CRC no longer matches
	refused := make(chan error, 1)
	go func() {
		_, err := l.Append(bad, 0)
		refused <- err
	}()
	select {
	case err := <-refused:
		if !errors.Is(err, ErrCorruptBatch) {
			t.Fatalf("corrupt batch: %v, want ErrCorruptBatch", err)
		}
	case <-time.After(5 * time.Second):
		close(stall)
		t.Fatal("a corrupt batch waited for the writer lock to be validated")
	}
	close(stall)
	if err := <-first; err != nil {
		t.Fatalf("the stalled append: %v", err)
	}
}

// TestOfflineIsReported: the first write error that takes a log offline
// reaches Options.OnOffline once, with its cause, and Offline says so from
// then on; errors that leave the files as they were take nothing offline.
func TestOfflineIsReported(t *testing.T) {
	dir := t.TempDir()
	efs := newErrorFS()
	var causes []error
	cfg := DefaultConfig()
	cfg.FlushMessages = 1
	l, err := Open(dir, cfg, Options{Logger: testLogger(t), FS: efs, OnOffline: func(err error) { causes = append(causes, err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustAppend(t, l, plainBatch(1, 10, 1).build(), 0)
	// A batch that fails validation is refused before any write.
	if _, err := l.Append([]byte("not a batch"), 0); err == nil {
		t.Fatal("a malformed batch was appended")
	}
	if l.Offline() || len(causes) != 0 {
		t.Fatalf("offline after a refused batch: %v, causes %v", l.Offline(), causes)
	}
	efs.inject(fault{op: opSync, suffix: logSuffix})
	for i := range 2 {
		if _, err := l.Append(plainBatch(1, 10, 1).build(), 0); err == nil {
			t.Fatalf("append %d acknowledged as flushed although its fsync failed", i)
		}
	}
	if !l.Offline() {
		t.Fatal("log not offline after a failed fsync")
	}
	if len(causes) != 1 || !errors.Is(causes[0], syscall.EIO) {
		t.Fatalf("OnOffline got %v, want one EIO", causes)
	}
	if _, err := l.Append(plainBatch(1, 10, 1).build(), 0); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append to an offline log: %v, want ErrLogFailed", err)
	}
}

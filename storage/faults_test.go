package storage

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestWritePathFaults makes one file operation of an idempotent append fail
// and checks what the producer is told, what readers see, what a retry of the
// same batch does, and what a restart recovers: nothing acknowledged is lost
// and no batch is ever in the log twice.
func TestWritePathFaults(t *testing.T) {
	const pid = 7
	cases := []struct {
		name   string
		cfg    func(*Config)
		faults []fault
		// appended: the faulted append is reported as written (and so must
		// be readable, survive a restart and make a retry a duplicate).
		appended bool
		// reported is the error an appended batch's append returns: the
		// batch is in the log (readable, a retry is a duplicate) but was not
		// made durable as asked.
		reported error
		wantErr  error // when !appended, the error the append returns
		offline  bool  // later writes get ErrLogFailed until the log is reopened
	}{
		{
			name:    "write fails, cut back works",
			faults:  []fault{{op: opWriteAt, suffix: logSuffix, partial: true, times: 1, err: syscall.ENOSPC}},
			wantErr: syscall.ENOSPC,
		},
		{
			name: "write fails, then the cut back fails",
			faults: []fault{
				{op: opWriteAt, suffix: logSuffix, partial: true, times: 1, err: syscall.ENOSPC},
				{op: opTruncate, suffix: logSuffix, times: 1},
			},
			wantErr: syscall.ENOSPC,
			offline: true,
		},
		{
			// The batch was published before the flush: it is in the log and
			// in producer state, but its append answers ErrLogFailed
			// (KAFKA_STORAGE_ERROR: the fsync asked for failed), and the log
			// goes offline because after a failed fsync the files' durable
			// content is unknown.
			name:     "fsync fails after publish (flush.messages=1)",
			cfg:      func(c *Config) { c.FlushMessages = 1 },
			faults:   []fault{{op: opSync, suffix: logSuffix, times: 1}},
			appended: true,
			reported: ErrLogFailed,
			offline:  true,
		},
		{
			name:     "checkpoint write fails after fsync (flush.messages=1)",
			cfg:      func(c *Config) { c.FlushMessages = 1 },
			faults:   []fault{{op: opWriteAt, suffix: checkpointFile + tempFileSuffix, times: 1}},
			appended: true,
		},
		{
			name:     "checkpoint rename fails after fsync (flush.messages=1)",
			cfg:      func(c *Config) { c.FlushMessages = 1 },
			faults:   []fault{{op: opRename, suffix: checkpointFile, times: 1}},
			appended: true,
		},
		{
			name:    "index write fails at roll",
			cfg:     func(c *Config) { c.SegmentBytes = 300 },
			faults:  []fault{{op: opWriteAt, suffix: indexSuffix + tempFileSuffix, times: 1}},
			wantErr: syscall.EIO,
		},
		{
			name:    "producer snapshot write fails at roll",
			cfg:     func(c *Config) { c.SegmentBytes = 300 },
			faults:  []fault{{op: opRename, suffix: snapshotSuffix, times: 1}},
			wantErr: syscall.EIO,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			efs := newErrorFS()
			l, err := Open(dir, cfg, Options{Logger: testLogger(t), FS: efs})
			if err != nil {
				t.Fatal(err)
			}
			var acked [][]byte
			for seq := int32(0); seq < 3; seq++ {
				b := idempotentBatch(pid, 0, seq, 1).build()
				mustAppend(t, l, b, 0)
				acked = append(acked, b)
			}
			for _, f := range tc.faults {
				efs.inject(f)
			}
			faulted := idempotentBatch(pid, 0, 3, 1).build()
			res, err := l.Append(faulted, 0)
			if efs.failures() == 0 {
				t.Fatal("setup: the append did not reach the injected fault")
			}
			if tc.appended {
				// Errorf, not Fatalf: the retry below shows what a wrong
				// answer here costs.
				switch {
				case tc.reported != nil && !errors.Is(err, tc.reported):
					t.Errorf("append of a published batch whose fsync failed returned %v, want %v", err, tc.reported)
				case tc.reported == nil && err != nil:
					t.Errorf("append of a published batch returned %v", err)
				case res.FirstOffset != 3:
					t.Fatalf("append reported offset %d, want 3", res.FirstOffset)
				}
				acked = append(acked, faulted)
			} else if !errors.Is(err, tc.wantErr) {
				t.Fatalf("append returned %v, want %v", err, tc.wantErr)
			}
			// Readers see exactly the acknowledged batches: nothing partial,
			// nothing refused.
			if got := countSequence(t, readAll(t, l), pid, 3); got != len(acked)-3 {
				t.Fatalf("readers see the faulted batch %d times, want %d", got, len(acked)-3)
			}

			// The producer retries the batch.
			retry, err := l.Append(idempotentBatch(pid, 0, 3, 1).build(), 0)
			switch {
			case tc.offline:
				if !errors.Is(err, ErrLogFailed) {
					t.Fatalf("retry on a log with files in an unknown state: %v, want ErrLogFailed", err)
				}
			case err != nil:
				t.Fatalf("retry: %v", err)
			case tc.appended && (!retry.Duplicate || retry.FirstOffset != 3):
				t.Fatalf("retry of an appended batch: %+v, want a duplicate of offset 3", retry)
			case !tc.appended:
				if retry.Duplicate || retry.FirstOffset != 3 {
					t.Fatalf("retry of a refused batch: %+v, want it written at 3", retry)
				}
				acked = append(acked, faulted)
			}
			l.crash()

			// A restart keeps every acknowledged batch and never two copies.
			r := openTestLog(t, dir, cfg, nil)
			defer r.Close()
			data := readAll(t, r)
			batches := decodeBatches(t, data)
			if len(batches) < len(acked) {
				t.Fatalf("after restart %d batches, %d were acknowledged", len(batches), len(acked))
			}
			for i := range acked {
				if batches[i].FirstSequence != int32(i) {
					t.Fatalf("after restart batch %d has sequence %d", i, batches[i].FirstSequence)
				}
			}
			if _, err := r.Append(idempotentBatch(pid, 0, 3, 1).build(), 0); err != nil {
				t.Fatalf("retry after restart: %v", err)
			}
			if got := countSequence(t, readAll(t, r), pid, 3); got != 1 {
				t.Fatalf("after restart and retry the batch is in the log %d times", got)
			}
		})
	}
}

// countSequence counts the batches of producer pid with base sequence seq.
func countSequence(t *testing.T, data []byte, pid int64, seq int32) int {
	t.Helper()
	n := 0
	for _, b := range decodeBatches(t, data) {
		if b.ProducerID == pid && b.FirstSequence == seq {
			n++
		}
	}
	return n
}

// TestBackgroundFsyncFailureTakesLogOffline: when the flusher's fsync of a
// rolled segment fails, the log must stop taking writes. Otherwise the next
// roll's fsync of the same file succeeds over pages the kernel may have
// dropped, and the recovery point moves past data that is not on disk.
func TestBackgroundFsyncFailureTakesLogOffline(t *testing.T) {
	dir := t.TempDir()
	efs := newErrorFS()
	efs.inject(fault{op: opSync, suffix: segmentFileName(dir, 0, logSuffix), times: 1})
	l, err := Open(dir, smallSegments(300), Options{Logger: testLogger(t), FS: efs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for l.SegmentCount() < 2 {
		mustAppend(t, l, plainBatch(1, 10, 1).build(), 0)
	}
	// The flusher runs on its own goroutine and reports to no one: poll the
	// state it sets.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		failed, rp := l.failed, l.recoveryPoint
		l.mu.Unlock()
		if failed != nil {
			break
		}
		if rp > 0 {
			t.Fatalf("recovery point moved to %d past a segment whose fsync failed", rp)
		}
		if time.Now().After(deadline) {
			t.Fatalf("log still online 5s after a failed background fsync (%d faults fired)", efs.failures())
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := l.Append(plainBatch(1, 10, 1).build(), 0); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append after a failed background fsync: %v, want ErrLogFailed", err)
	}
	if cp, _ := readLogCheckpoint(dir); cp.recoveryPoint != 0 {
		t.Fatalf("checkpointed recovery point %d past the failed fsync", cp.recoveryPoint)
	}
}

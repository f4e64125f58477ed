package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/barge-broker/barge/internal/testutil"
)

// TestDiskFull fills a real 1 MiB tmpfs: the append that hits ENOSPC fails
// cleanly, nothing partial is visible or left in the file, and the log works
// again once space is freed.
func TestDiskFull(t *testing.T) {
	mnt := testutil.MountTmpfs(t, "1m")

	// A filler file holds space that the test frees later.
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 256<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "topic-0")
	l := openTestLog(t, dir, DefaultConfig(), nil)
	defer l.Close()

	var written [][]byte
	var appendErr error
	for i := 0; i < 1000; i++ {
		b := plainBatch(4, 8<<10, 1).build() // ~32 KiB
		if _, appendErr = l.Append(b, 0); appendErr != nil {
			break
		}
		written = append(written, b)
	}
	if !errors.Is(appendErr, syscall.ENOSPC) {
		t.Fatalf("filling the disk ended with %v, want ENOSPC", appendErr)
	}
	leo, size := l.LogEndOffset(), l.Size()
	if leo != int64(4*len(written)) {
		t.Fatalf("log end %d after %d good appends", leo, len(written))
	}
	fi, err := os.Stat(segmentFileName(dir, 0, logSuffix))
	if err != nil || fi.Size() != size {
		t.Fatalf("segment file is %d bytes, committed %d (%v): a partial batch stayed", fi.Size(), size, err)
	}
	if !bytes.Equal(readAll(t, l), bytes.Join(written, nil)) {
		t.Fatal("acknowledged data differs after ENOSPC")
	}
	// Still full: still a clean error.
	if _, err := l.Append(plainBatch(4, 8<<10, 1).build(), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second append on a full disk: %v", err)
	}
	// Free space: appends work again and continue the offsets.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	b := plainBatch(4, 8<<10, 1).build()
	res, err := l.Append(b, 0)
	if err != nil || res.FirstOffset != leo {
		t.Fatalf("append after freeing space: %+v, %v", res, err)
	}
	written = append(written, b)
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	l2 := openTestLog(t, dir, DefaultConfig(), nil)
	defer l2.Close()
	if !bytes.Equal(readAll(t, l2), bytes.Join(written, nil)) {
		t.Fatal("data differs after reopen")
	}
}

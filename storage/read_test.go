package storage

import (
	"errors"
	"sync"
	"testing"
)

// TestReadNeverReturnsNilWithoutError: a read whose segments keep vanishing
// (here because the log was closed, which releases every file while the
// segment list stays) must end in an error, not in (nil, nil), which the
// fetch path and ReadBatches dereference.
func TestReadNeverReturnsNilWithoutError(t *testing.T) {
	l := openTestLog(t, t.TempDir(), DefaultConfig(), nil)
	mustAppend(t, l, plainBatch(3, 10, 1).build(), 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := l.Read(0, 1<<20, 3)
	if r == nil && err == nil {
		t.Fatal("Read after Close returned (nil, nil)")
	}
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
	if _, err := l.ReadBatches(0, 1<<20, 3); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadBatches after Close: %v, want ErrClosed", err)
	}
}

// TestReadRacingSegmentRemoval reads at the log start while retention
// (DeleteRecordsBefore) removes segments under the readers and truncation
// cuts the tail: every read either returns batches or ErrOffsetOutOfRange.
func TestReadRacingSegmentRemoval(t *testing.T) {
	l := openTestLog(t, t.TempDir(), smallSegments(200), nil)
	defer l.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				off := l.LogStartOffset()
				r, err := l.Read(off, 1<<20, l.LogEndOffset())
				switch {
				case err == nil && r == nil:
					errs <- errors.New("Read returned (nil, nil)")
					return
				case err == nil:
					r.Release()
				case !errors.Is(err, ErrOffsetOutOfRange):
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 300; i++ {
		mustAppend(t, l, plainBatch(1, 50, 1).build(), 0)
		if i%3 == 0 {
			if _, err := l.DeleteRecordsBefore(l.LogEndOffset() - 1); err != nil {
				t.Fatal(err)
			}
		}
		if i%7 == 0 {
			if err := l.TruncateTo(l.LogEndOffset() - 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

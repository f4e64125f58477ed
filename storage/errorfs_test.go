package storage

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// errorFS is a FileSystem that passes every call to the real one underneath
// except those a test told it to fail (pebble's vfs/errorfs is the model).
// Files stay real: a "failed" write may still write part of its bytes, as a
// full disk does, so recovery is tested against what a crash would leave.
type errorFS struct {
	fs FileSystem

	mu     sync.Mutex
	faults []*faultState // guarded by mu
}

type fsOp string

const (
	opOpen     fsOp = "open"
	opWriteAt  fsOp = "writeat"
	opTruncate fsOp = "truncate"
	opSync     fsOp = "sync"
	opRename   fsOp = "rename" // matched against the new name
	opRemove   fsOp = "remove"
	opSyncDir  fsOp = "syncdir"
)

// fault makes calls of one operation on paths ending in suffix fail.
type fault struct {
	op     fsOp
	suffix string // matched against the path ("" matches every path)
	after  int    // let this many matching calls succeed first
	times  int    // fail this many matching calls, then pass again; 0 means forever
	// partial makes a failing WriteAt write the first half of its bytes for
	// real before it returns the error.
	partial bool
	err     error // syscall.EIO when nil
	// stall, when set, makes a matching call wait until stall is closed and
	// then succeed (a slow disk) instead of failing; stalled gets a value
	// (non-blocking) when a call starts waiting.
	stall   chan struct{}
	stalled chan struct{}
}

// stalls waits on a stalling fault and reports whether f was one (the call
// then goes on to the real file system).
func (f *fault) stalls() bool {
	if f.stall == nil {
		return false
	}
	select {
	case f.stalled <- struct{}{}:
	default:
	}
	<-f.stall
	return true
}

type faultState struct {
	fault
	seen, failed int
}

func newErrorFS() *errorFS { return &errorFS{fs: osFS{}} }

// inject adds a fault; faults are checked in the order they were added.
func (e *errorFS) inject(f fault) {
	if f.err == nil {
		f.err = syscall.EIO
	}
	e.mu.Lock()
	e.faults = append(e.faults, &faultState{fault: f})
	e.mu.Unlock()
}

// failures reports how many calls the faults failed so far, so a test can
// tell that its fault was actually reached.
func (e *errorFS) failures() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, f := range e.faults {
		n += f.failed
	}
	return n
}

// check returns the fault that fails this call, if any.
func (e *errorFS) check(op fsOp, path string) *fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.faults {
		if f.op != op || !strings.HasSuffix(path, f.suffix) {
			continue
		}
		f.seen++
		if f.seen <= f.after || (f.times > 0 && f.failed >= f.times) {
			continue
		}
		f.failed++
		return &f.fault
	}
	return nil
}

func (e *errorFS) OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	if f := e.check(opOpen, path); f != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: f.err}
	}
	return e.fs.OpenFile(path, flag, perm)
}

func (e *errorFS) WriteAt(file *os.File, b []byte, off int64) (int, error) {
	if f := e.check(opWriteAt, file.Name()); f != nil && !f.stalls() {
		n := 0
		if f.partial {
			n, _ = e.fs.WriteAt(file, b[:len(b)/2], off)
		}
		return n, &os.PathError{Op: "write", Path: file.Name(), Err: f.err}
	}
	return e.fs.WriteAt(file, b, off)
}

func (e *errorFS) Truncate(file *os.File, size int64) error {
	if f := e.check(opTruncate, file.Name()); f != nil {
		return &os.PathError{Op: "truncate", Path: file.Name(), Err: f.err}
	}
	return e.fs.Truncate(file, size)
}

func (e *errorFS) Sync(file *os.File) error {
	if f := e.check(opSync, file.Name()); f != nil && !f.stalls() {
		return &os.PathError{Op: "fsync", Path: file.Name(), Err: f.err}
	}
	return e.fs.Sync(file)
}

func (e *errorFS) Rename(oldPath, newPath string) error {
	if f := e.check(opRename, newPath); f != nil {
		return &os.LinkError{Op: "rename", Old: oldPath, New: newPath, Err: f.err}
	}
	return e.fs.Rename(oldPath, newPath)
}

func (e *errorFS) Remove(path string) error {
	if f := e.check(opRemove, path); f != nil {
		return &os.PathError{Op: "remove", Path: path, Err: f.err}
	}
	return e.fs.Remove(path)
}

func (e *errorFS) SyncDir(dir string) error {
	if f := e.check(opSyncDir, filepath.Clean(dir)); f != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: f.err}
	}
	return e.fs.SyncDir(dir)
}

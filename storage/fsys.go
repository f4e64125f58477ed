package storage

import (
	"fmt"
	"os"
)

// FileSystem is the narrow set of file operations the write path performs:
// every call that changes what is on disk goes through it, so tests can make
// any one of them fail (errorfs_test.go) while the files underneath stay real.
// Reads (ReadAt, sendfile) use the *os.File directly: a read changes nothing
// a crash could leave half done, and the sendfile path needs the descriptor.
//
// Implementations must be safe for concurrent use: the Log's writer and its
// flusher goroutine call them at the same time.
type FileSystem interface {
	OpenFile(path string, flag int, perm os.FileMode) (*os.File, error)
	WriteAt(f *os.File, b []byte, off int64) (int, error)
	Truncate(f *os.File, size int64) error
	Sync(f *os.File) error
	Rename(oldPath, newPath string) error
	Remove(path string) error
	// SyncDir fsyncs a directory, making the names created, renamed or
	// removed in it durable.
	SyncDir(dir string) error
}

// OSFileSystem is the real file system, to wrap with faults in tests.
func OSFileSystem() FileSystem { return osFS{} }

// osFS is the real file system.
type osFS struct{}

func (osFS) OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag, perm)
}
func (osFS) WriteAt(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }
func (osFS) Truncate(f *os.File, size int64) error                { return f.Truncate(size) }
func (osFS) Sync(f *os.File) error                                { return f.Sync() }
func (osFS) Rename(oldPath, newPath string) error                 { return os.Rename(oldPath, newPath) }
func (osFS) Remove(path string) error                             { return os.Remove(path) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("storage: sync dir %s: %w", dir, err)
	}
	return nil
}

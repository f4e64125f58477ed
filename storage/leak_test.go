package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine or file outlives
// them: every Log's flusher must be stopped and every segment, index and
// region file closed by Close (or the tests' crash) and Release.
func TestMain(m *testing.M) {
	before := openFiles()
	code := m.Run()
	if code == 0 {
		if extra := slices.DeleteFunc(openFiles(), func(p string) bool { return slices.Contains(before, p) }); len(extra) > 0 {
			fmt.Fprintf(os.Stderr, "storage tests: files still open after the tests: %v\n", extra)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "storage tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// openFiles lists the paths this process holds open (Linux), leaving out
// the runtime's own descriptors (its epoll instance and wakeup eventfd or
// pipe), which appear on first use of the poller.
func openFiles() []string {
	entries, _ := os.ReadDir("/proc/self/fd")
	var paths []string
	for _, e := range entries {
		p, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || strings.HasPrefix(p, "anon_inode:") || strings.HasPrefix(p, "pipe:") {
			continue
		}
		paths = append(paths, p)
	}
	return paths
}

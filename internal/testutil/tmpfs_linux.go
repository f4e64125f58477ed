package testutil

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts a tmpfs of the given size (mount's size= syntax: "1m",
// "96m") on a fresh temporary directory and returns it; the test's cleanup
// unmounts it. A size-limited file system is how tests fill a disk for real.
// The test is skipped where mounting is not allowed (not root).
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: mounting a size-limited tmpfs needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("skipping: cannot mount a tmpfs here: %v", err)
	}
	// Registered after TempDir's own cleanup, so it runs first: the
	// directory is removed only once nothing is mounted on it.
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

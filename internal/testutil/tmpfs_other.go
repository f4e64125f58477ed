//go:build !linux

package testutil

import "testing"

// MountTmpfs skips the test: size-limited tmpfs mounts are Linux's.
func MountTmpfs(t testing.TB, size string) string {
	t.Skip("skipping: a size-limited tmpfs needs Linux")
	return ""
}

package run

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/barge-broker/barge/jepsen/backend"
	"golang.org/x/sys/unix"
)

// A power loss cuts the newest segment of each of the topic's partitions
// and nothing else.
func TestCutTails(t *testing.T) {
	dir := t.TempDir()
	files := map[string]int{
		topic + "-0/00000000000000000000.log":           100,
		topic + "-0/00000000000000000050.log":           10, // newest, shorter than the cut
		topic + "-1/00000000000000000000.log":           100,
		topic + "-1/00000000000000000000.index":         100,
		"__consumer_offsets-0/00000000000000000000.log": 100,
	}
	for name, size := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cut, err := cutTails(dir, 30)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		topic + "-0/00000000000000000000.log":           100,
		topic + "-0/00000000000000000050.log":           0,
		topic + "-1/00000000000000000000.log":           70,
		topic + "-1/00000000000000000000.index":         100,
		"__consumer_offsets-0/00000000000000000000.log": 100,
	}
	for name, size := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Size() != size {
			t.Errorf("%s: size %v (%v), want %d", name, st.Size(), err, size)
		}
	}
	if len(cut) != 2 || cut[topic+"-0/00000000000000000050.log"] != 10 || cut[topic+"-1/00000000000000000000.log"] != 30 {
		t.Errorf("reported cuts %v", cut)
	}
}

// fillDisk leaves no free block on a tmpfs, and removing its file frees
// them again.
func TestFillDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := backend.MountTmpfs(ctx, dir, "8m"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := backend.UnmountTmpfs(ctx, dir); err != nil {
			t.Error(err)
		}
	}()
	fill := filepath.Join(dir, "fill")
	if err := fillDisk(fill); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "more"), make([]byte, 8192), 0o644); err == nil {
		t.Fatal("a write succeeded on the filled file system")
	}
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || int64(st.Bavail)*st.Bsize < 7<<20 {
		t.Fatalf("after removing the fill: %d blocks free (%v)", st.Bavail, err)
	}
}

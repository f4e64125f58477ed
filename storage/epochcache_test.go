package storage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func openEpochCacheT(t *testing.T, dir string) *epochCache {
	t.Helper()
	logger, _ := newCaptureLogger(t)
	c, err := openEpochCache(dir, logger)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newEpochCacheWith returns a cache in a fresh directory holding entries.
func newEpochCacheWith(t *testing.T, entries ...epochEntry) (*epochCache, string) {
	t.Helper()
	dir := t.TempDir()
	c := openEpochCacheT(t, dir)
	for _, e := range entries {
		if err := c.assign(e.epoch, e.startOffset); err != nil {
			t.Fatal(err)
		}
	}
	return c, dir
}

// checkEntries asserts the entries in memory and, after a reopen, on disk.
func checkEntries(t *testing.T, c *epochCache, dir string, want []epochEntry) {
	t.Helper()
	if got := c.entries(); !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if got := openEpochCacheT(t, dir).entries(); !slices.Equal(got, want) {
		t.Fatalf("entries after reopen %v, want %v", got, want)
	}
}

func TestEpochCacheAssign(t *testing.T) {
	c, dir := newEpochCacheWith(t)
	if _, ok := c.latest(); ok {
		t.Fatal("empty cache has a latest entry")
	}
	steps := []struct {
		name  string
		entry epochEntry
		want  []epochEntry
	}{
		{"first", epochEntry{0, 0}, []epochEntry{{0, 0}}},
		{"new epoch", epochEntry{2, 10}, []epochEntry{{0, 0}, {2, 10}}},
		{"latest epoch again is a no-op", epochEntry{2, 20}, []epochEntry{{0, 0}, {2, 10}}},
		{"older epoch ignored", epochEntry{1, 30}, []epochEntry{{0, 0}, {2, 10}}},
		{"start below latest ignored", epochEntry{3, 5}, []epochEntry{{0, 0}, {2, 10}}},
		{"same start replaces an epoch without records", epochEntry{3, 10}, []epochEntry{{0, 0}, {3, 10}}},
		{"another epoch", epochEntry{5, 42}, []epochEntry{{0, 0}, {3, 10}, {5, 42}}},
	}
	for _, s := range steps {
		if err := c.assign(s.entry.epoch, s.entry.startOffset); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := c.entries(); !slices.Equal(got, s.want) {
			t.Fatalf("%s: entries %v, want %v", s.name, got, s.want)
		}
	}
	checkEntries(t, c, dir, steps[len(steps)-1].want)
	data, err := os.ReadFile(filepath.Join(dir, epochCheckpointName))
	if want := "0\n3\n0 0\n3 10\n5 42\n"; err != nil || string(data) != want {
		t.Fatalf("file %q (%v), want Kafka's format %q", data, err, want)
	}
	if latest, ok := c.latest(); !ok || latest != (epochEntry{5, 42}) {
		t.Fatalf("latest %v, %v", latest, ok)
	}
	for _, bad := range []epochEntry{{-1, 50}, {6, -1}} {
		if err := c.assign(bad.epoch, bad.startOffset); err == nil {
			t.Fatalf("assign(%v) accepted", bad)
		}
	}
}

func TestEpochCacheEndOffsetFor(t *testing.T) {
	const leo = 300
	c, _ := newEpochCacheWith(t, epochEntry{2, 0}, epochEntry{4, 100}, epochEntry{7, 250})
	empty, _ := newEpochCacheWith(t)
	for _, tc := range []struct {
		name          string
		cache         *epochCache
		requested     int32
		wantEpoch     int32
		wantEndOffset int64
	}{
		{"empty cache", empty, 3, -1, -1},
		{"undefined epoch", c, -1, -1, -1},
		{"below the first epoch: first start", c, 1, 1, 0},
		{"first epoch ends where the next starts", c, 2, 2, 100},
		{"unknown epoch between: the one before", c, 3, 2, 100},
		{"middle epoch", c, 4, 4, 250},
		{"gap before the latest", c, 6, 4, 250},
		{"latest epoch ends at leo", c, 7, 7, leo},
		{"above the latest", c, 8, -1, -1},
	} {
		epoch, end := tc.cache.endOffsetFor(tc.requested, leo)
		if epoch != tc.wantEpoch || end != tc.wantEndOffset {
			t.Errorf("%s: endOffsetFor(%d) = %d, %d; want %d, %d", tc.name, tc.requested, epoch, end, tc.wantEpoch, tc.wantEndOffset)
		}
	}
}

func TestEpochCacheEpochFor(t *testing.T) {
	c, _ := newEpochCacheWith(t, epochEntry{2, 10}, epochEntry{4, 100}, epochEntry{7, 250})
	empty, _ := newEpochCacheWith(t)
	for _, tc := range []struct {
		cache  *epochCache
		offset int64
		want   int32
	}{
		{empty, 0, -1},
		{c, 9, -1}, // before the first entry: unknown
		{c, 10, 2},
		{c, 99, 2},
		{c, 100, 4},
		{c, 249, 4},
		{c, 250, 7},
		{c, 1 << 40, 7},
	} {
		if got := tc.cache.epochFor(tc.offset); got != tc.want {
			t.Errorf("epochFor(%d) = %d, want %d", tc.offset, got, tc.want)
		}
	}
}

var epochFixture = []epochEntry{{2, 0}, {4, 100}, {7, 250}}

func TestEpochCacheTruncateFromEnd(t *testing.T) {
	for _, tc := range []struct {
		endOffset int64
		want      []epochEntry
	}{
		{300, epochFixture},
		{251, epochFixture},
		{250, epochFixture[:2]},
		{101, epochFixture[:2]},
		{100, epochFixture[:1]},
		{0, nil},
		{-1, epochFixture}, // no log end to truncate to
	} {
		c, dir := newEpochCacheWith(t, epochFixture...)
		if err := c.truncateFromEnd(tc.endOffset); err != nil {
			t.Fatal(err)
		}
		checkEntries(t, c, dir, tc.want)
	}
}

func TestEpochCacheTruncateFromStart(t *testing.T) {
	for _, tc := range []struct {
		startOffset int64
		want        []epochEntry
	}{
		{0, epochFixture},
		{50, []epochEntry{{2, 50}, {4, 100}, {7, 250}}},
		{100, []epochEntry{{4, 100}, {7, 250}}},
		{120, []epochEntry{{4, 120}, {7, 250}}},
		{400, []epochEntry{{7, 400}}},
	} {
		c, dir := newEpochCacheWith(t, epochFixture...)
		if err := c.truncateFromStart(tc.startOffset); err != nil {
			t.Fatal(err)
		}
		checkEntries(t, c, dir, tc.want)
	}
}

func TestEpochCacheClear(t *testing.T) {
	c, dir := newEpochCacheWith(t, epochFixture...)
	if err := c.clear(); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, c, dir, nil)
}

func TestEpochCacheFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    []epochEntry // when valid
		corrupt bool
	}{
		{"empty file", "", nil, false},
		{"no entries", "0\n0\n", nil, false},
		{"no final newline", "0\n2\n1 0\n3 7", []epochEntry{{1, 0}, {3, 7}}, false},
		{"equal starts", "0\n2\n1 7\n3 7\n", []epochEntry{{1, 7}, {3, 7}}, false},
		{"unknown version", "1\n0\n", nil, true},
		{"missing count", "0\n", nil, true},
		{"count too high", "0\n2\n0 0\n", nil, true},
		{"count too low", "0\n1\n0 0\n1 5\n", nil, true},
		{"not a number", "0\n1\nx 0\n", nil, true},
		{"one field", "0\n1\n0\n", nil, true},
		{"three fields", "0\n1\n0 1 2\n", nil, true},
		{"negative epoch", "0\n1\n-1 0\n", nil, true},
		{"epoch overflows int32", "0\n1\n2147483648 0\n", nil, true},
		{"epochs not ascending", "0\n2\n3 0\n2 10\n", nil, true},
		{"start offsets going back", "0\n2\n1 10\n2 5\n", nil, true},
		{"blank line", "0\n1\n\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, epochCheckpointName)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := openEpochCache(dir, nil)
			if tc.corrupt {
				if !errors.Is(err, errCorruptCheckpoint) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want errCorruptCheckpoint naming %s", err, path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.entries(); !slices.Equal(got, tc.want) {
				t.Fatalf("entries %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEpochCacheWriteError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "partition")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := openEpochCacheT(t, dir)
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := c.assign(1, 0); err == nil {
		t.Fatal("assign succeeded without a directory to write to")
	}
}

// TestEpochCacheConcurrent runs the Log's writer against request handlers;
// it is meant for -race, and checks readers never see unordered entries.
func TestEpochCacheConcurrent(t *testing.T) {
	c, _ := newEpochCacheWith(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range int32(200) {
			if err := c.assign(i, int64(i)*10); err != nil {
				t.Error(err)
				return
			}
			if i%50 == 49 {
				if err := c.truncateFromStart(int64(i) * 5); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 500 {
				entries := c.entries()
				for i := 1; i < len(entries); i++ {
					if entries[i].epoch <= entries[i-1].epoch || entries[i].startOffset < entries[i-1].startOffset {
						t.Errorf("unordered entries %v", entries)
						return
					}
				}
				if latest, ok := c.latest(); ok {
					if epoch, end := c.endOffsetFor(latest.epoch, 1<<40); epoch < latest.epoch || end < latest.startOffset {
						t.Errorf("endOffsetFor(%d) = %d, %d", latest.epoch, epoch, end)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

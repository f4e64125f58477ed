package replication

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// checkpointFile is Kafka's replication-offset-checkpoint: the high
// watermark of every hosted partition, so a restarted leader resumes from
// it (§2.3). Format: version 0, a count, then "topic partition hw" lines.
const checkpointFile = "replication-offset-checkpoint"

func checkpointPath(dataDir string) string { return filepath.Join(dataDir, checkpointFile) }

func checkpointKey(topic string, partition int32) string {
	return topic + " " + strconv.Itoa(int(partition))
}

// readCheckpoint loads the file; a missing file is an empty checkpoint.
func readCheckpoint(path string) (map[string]int64, error) {
	out := map[string]int64{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replication: read %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	bad := func(why string) error {
		return fmt.Errorf("replication: %s line %d: %s", path, line, why)
	}
	var count int
	for sc.Scan() {
		line++
		text := sc.Text()
		switch line {
		case 1:
			if text != "0" {
				return nil, bad("unknown version " + strconv.Quote(text))
			}
			continue
		case 2:
			if count, err = strconv.Atoi(text); err != nil || count < 0 {
				return nil, bad("bad count")
			}
			continue
		}
		f := strings.Fields(text)
		if len(f) != 3 {
			return nil, bad("want topic partition offset")
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		hw, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, bad("bad number")
		}
		out[checkpointKey(f[0], int32(p))] = hw
	}
	if len(out) != count {
		return nil, fmt.Errorf("replication: %s holds %d entries, header says %d", path, len(out), count)
	}
	return out, nil
}

// writeCheckpoint replaces the file: written to a temporary file, synced,
// renamed, as Kafka does for its small checkpoint files.
func writeCheckpoint(path string, hws map[string]int64) error {
	keys := make([]string, 0, len(hws))
	for k := range hws {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(keys))
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %d\n", k, hws[k])
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("replication: write checkpoint: %w", err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("replication: write checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("replication: sync checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("replication: close checkpoint: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replication: install checkpoint: %w", err)
	}
	return nil
}

package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// cleanShutdownMarker is the broker-wide clean-shutdown marker in the data
// directory. Shutdown writes it, durably, after every partition log closed
// cleanly (each log has written its own marker by then); Start takes it
// before registering. Its absence at start means the previous process
// crashed, was killed or lost power, so any log may have lost its
// un-fsynced tail, and the broker registers with UncleanShutdown (KIP-966).
// One marker for the broker, not a set of partitions: registration comes
// before the logs are opened, and a crash hits all of them alike.
const cleanShutdownMarker = ".broker_clean_shutdown"

// takeCleanShutdown reports whether the previous process left the marker,
// and removes it durably first, so that a crash of this process is not
// mistaken for a clean stop at the next start.
func takeCleanShutdown(dataDir string) (bool, error) {
	path := filepath.Join(dataDir, cleanShutdownMarker)
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("broker: remove clean-shutdown marker: %w", err)
	}
	if err := syncDir(dataDir); err != nil {
		return false, fmt.Errorf("broker: remove clean-shutdown marker: %w", err)
	}
	return true, nil
}

// writeCleanShutdown writes the marker: a temporary file, fsynced, renamed
// into place, and the directory fsynced, so the marker is either whole and
// durable or absent.
func writeCleanShutdown(dataDir string) error {
	path := filepath.Join(dataDir, cleanShutdownMarker)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("broker: write clean-shutdown marker: %w", err)
	}
	_, err = f.WriteString("1\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dataDir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("broker: write clean-shutdown marker: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// producerIDs hands out idempotent producer ids that are unique across the
// cluster and across restarts without asking the controller: the broker id
// fills the high bits, and a counter persisted in blocks fills the low ones.
// (Kafka allocates blocks through the controller; this needs no round trip
// and gives the same guarantee as long as broker ids are unique, which the
// cluster enforces.)
type producerIDs struct {
	path string

	mu       sync.Mutex
	next     int64 // guarded by mu: next id to hand out
	reserved int64 // guarded by mu: ids below this are persisted as used
}

const (
	producerIDBits  = 40   // low bits: per-broker counter
	producerIDBlock = 1000 // ids reserved per write of the file
	producerIDsFile = "producer-ids"
)

func openProducerIDs(dataDir string, brokerID int32) (*producerIDs, error) {
	p := &producerIDs{path: filepath.Join(dataDir, producerIDsFile)}
	base := int64(brokerID) << producerIDBits
	p.next, p.reserved = base, base
	b, err := os.ReadFile(p.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("broker: read %s: %w", p.path, err)
	default:
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n < base || n >= base+(1<<producerIDBits) {
			return nil, fmt.Errorf("broker: %s holds %q, not an id of broker %d", p.path, b, brokerID)
		}
		p.next, p.reserved = n, n
	}
	return p, nil
}

// allocate returns a fresh producer id.
func (p *producerIDs) allocate() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.reserved {
		reserved := p.next + producerIDBlock
		tmp := p.path + ".tmp"
		if err := os.WriteFile(tmp, []byte(strconv.FormatInt(reserved, 10)+"\n"), 0o644); err != nil {
			return 0, fmt.Errorf("broker: reserve producer ids: %w", err)
		}
		if err := os.Rename(tmp, p.path); err != nil {
			return 0, fmt.Errorf("broker: reserve producer ids: %w", err)
		}
		p.reserved = reserved
	}
	id := p.next
	p.next++
	return id, nil
}

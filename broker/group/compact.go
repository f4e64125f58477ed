package group

import (
	"slices"
	"time"
)

// compactChunkBytes bounds one append of a compaction rewrite.
const compactChunkBytes = 8 << 20

// liveRecordsLocked returns the records that hold the shard's current state
// (each group's metadata record and committed offsets), in a deterministic
// order, and their size.
func (s *shard) liveRecordsLocked() ([]record, int64) {
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var recs []record
	var live int64
	for _, id := range ids {
		g := s.groups[id]
		if g.storedMetadata != nil {
			r := record{key: groupMetadataKeyBytes(id), value: g.storedMetadata}
			recs = append(recs, r)
			live += r.size()
		}
		keys := make([]offsetKey, 0, len(g.offsets))
		for k := range g.offsets {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b offsetKey) int {
			switch {
			case a.topic != b.topic:
				if a.topic < b.topic {
					return -1
				}
				return 1
			case a.partition < b.partition:
				return -1
			case a.partition > b.partition:
				return 1
			}
			return 0
		})
		for _, k := range keys {
			r := offsetCommitRecord(id, k, g.offsets[k])
			recs = append(recs, r)
			live += r.size()
		}
	}
	return recs, live
}

// maybeCompactLocked rewrites the partition when its log has grown past
// CompactMinBytes and CompactRatio times its live records. Checks are
// amortised: after one, the next waits until the log passes the new
// threshold.
func (s *shard) maybeCompactLocked(now time.Time) {
	size := s.log.Size()
	if size <= s.compactAt {
		return
	}
	recs, live := s.liveRecordsLocked()
	threshold := max(s.c.cfg.CompactMinBytes, s.c.cfg.CompactRatio*live)
	if size > threshold {
		s.compactLocked(now, recs)
	}
	s.compactAt = threshold
}

// compactLocked rolls the log, appends every live record anew, and then
// deletes everything before the rewrite, so the old segments go. Until the
// delete, the log holds the state twice over, which a load reads the same
// way: a crash in between loses nothing. Writes wait on mu meanwhile, so
// nothing can slip between the live records and their rewrite.
func (s *shard) compactLocked(now time.Time, recs []record) {
	start, before := time.Now(), s.log.Size()
	if err := s.log.Roll(); err != nil {
		s.logger.Warn("compaction: roll failed", "err", err)
		return
	}
	from := s.log.LogEndOffset()
	for i := 0; i < len(recs); {
		j, n := i, 0
		for j < len(recs) && (j == i || n+int(recs[j].size()) <= compactChunkBytes) {
			n += int(recs[j].size())
			j++
		}
		buf := appendBatches(nil, recs[i:j], now.UnixMilli(), s.c.cfg.MaxBatchBytes)
		if _, err := s.log.Append(buf, s.leaderEpoch); err != nil {
			s.logger.Warn("compaction: rewrite failed; the old records stay", "err", err)
			return
		}
		i = j
	}
	// With data replication, the rewrite must be replicated (the high
	// watermark past it) before the old records may go.
	if _, err := s.log.DeleteRecordsBefore(from); err != nil {
		s.logger.Warn("compaction: deleting the old records failed", "err", err)
		return
	}
	s.logger.Info("compacted group coordinator partition", "records", len(recs),
		"bytes_before", before, "bytes_after", s.log.Size(), "duration", time.Since(start))
}

package netproto

import (
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Fetch versions netproto frames by hand. v13+ name topics by ID; v15
// carries the follower's broker epoch (KIP-903), which replica fetches use;
// v16 adds the endpoints of the leaders a response names (KIP-951).
const (
	minFetchVersion = 4
	maxFetchVersion = 16
	fetchKey        = 1
)

// fetchCut says where record regions go in a hand-framed Fetch response:
// after the frame's bytes up to at (an index into the byte slice the frame
// was appended to).
type fetchCut struct {
	at      int
	regions []FileRegion
}

// appendFetchFrame appends every byte of a Fetch response frame that is not
// record data — size prefix, response header, and the fields around each
// partition's records — to dst, and appends to cuts where each non-empty
// partition's regions belong. It returns the extended slices and the number
// of record bytes the cuts add. The layout follows Kafka's FetchResponse
// schema for v4..v16 (PROTOCOL.md §3.1; v13+ name topics by id): aborted transactions are always
// null, records lengths are the sum of the partition's region sizes (0, not
// null, when there are none).
//
// On error dst and cuts may hold a partial frame; nothing has been written
// anywhere, so the caller drops them.
func appendFetchFrame(dst []byte, cuts []fetchCut, corr int32, version int16, fr *FetchResponse) ([]byte, []fetchCut, int64, error) {
	if version < minFetchVersion || version > maxFetchVersion {
		return dst, cuts, 0, fmt.Errorf("%w: fetch v%d is not framed (v%d..v%d)", ErrInvalidResponse, version, minFetchVersion, maxFetchVersion)
	}
	flexible := version >= 12
	start := len(dst)
	dst = kbin.AppendInt32(dst, 0) // frame size, patched below
	dst = kbin.AppendInt32(dst, corr)
	if flexible {
		dst = append(dst, 0) // response header v1 tag section
	}
	dst = kbin.AppendInt32(dst, fr.ThrottleMillis)
	if version >= 7 {
		dst = kbin.AppendInt16(dst, fr.ErrorCode)
		dst = kbin.AppendInt32(dst, fr.SessionID)
	}
	dst = appendArrayLen(dst, len(fr.Topics), flexible)
	var records int64
	for ti := range fr.Topics {
		t := &fr.Topics[ti]
		switch {
		case version >= 13:
			dst = append(dst, t.TopicID[:]...)
		case flexible:
			dst = kbin.AppendCompactString(dst, t.Topic)
		default:
			if len(t.Topic) > math.MaxInt16 {
				return dst, cuts, 0, fmt.Errorf("%w: topic name of %d bytes", ErrInvalidResponse, len(t.Topic))
			}
			dst = kbin.AppendString(dst, t.Topic)
		}
		dst = appendArrayLen(dst, len(t.Partitions), flexible)
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			n, err := regionsSize(p.Regions)
			if err != nil {
				return dst, cuts, 0, fmt.Errorf("%w: topic %q partition %d: %w", ErrInvalidResponse, t.Topic, p.Partition, err)
			}
			dst = kbin.AppendInt32(dst, p.Partition)
			dst = kbin.AppendInt16(dst, p.ErrorCode)
			dst = kbin.AppendInt64(dst, p.HighWatermark)
			dst = kbin.AppendInt64(dst, p.LastStableOffset)
			if version >= 5 {
				dst = kbin.AppendInt64(dst, p.LogStartOffset)
			}
			// aborted_transactions: null. Barge has no transactions to
			// abort, and null is what Kafka sends for read_uncommitted.
			if flexible {
				dst = kbin.AppendUvarint(dst, 0)
			} else {
				dst = kbin.AppendInt32(dst, -1)
			}
			if version >= 11 {
				dst = kbin.AppendInt32(dst, p.PreferredReadReplica)
			}
			// records: never null, librdkafka rejects a -1 MessageSet size.
			if flexible {
				dst = kbin.AppendUvarint(dst, uint32(n)+1)
			} else {
				dst = kbin.AppendInt32(dst, int32(n))
			}
			if n > 0 {
				cuts = append(cuts, fetchCut{at: len(dst), regions: p.Regions})
				records += n
			}
			if flexible {
				dst = appendPartitionTags(dst, p)
			}
		}
		if flexible {
			dst = append(dst, 0) // topic tag section
		}
	}
	if flexible {
		dst = appendTopLevelTags(dst, version, fr.NodeEndpoints)
	}
	frame := int64(len(dst)-start-4) + records
	if frame > math.MaxInt32 {
		return dst, cuts, 0, fmt.Errorf("%w: fetch response of %d bytes", ErrInvalidResponse, frame)
	}
	putInt32(dst[start:], int32(frame))
	return dst, cuts, records, nil
}

// regionsSize sums a partition's region sizes, which must fit Kafka's int32
// records length.
func regionsSize(regions []FileRegion) (int64, error) {
	var n int64
	for _, r := range regions {
		if r.Size < 0 || r.Position < 0 || (r.Size > 0 && r.File == nil) {
			return 0, fmt.Errorf("bad region (file %v, position %d, size %d)", r.File != nil, r.Position, r.Size)
		}
		n += r.Size
		if n > math.MaxInt32-1 {
			return 0, fmt.Errorf("records of %d bytes", n)
		}
	}
	return n, nil
}

func appendArrayLen(dst []byte, n int, flexible bool) []byte {
	if flexible {
		return kbin.AppendUvarint(dst, uint32(n)+1)
	}
	return kbin.AppendInt32(dst, int32(n))
}

// Sizes of the v12 partition tagged structs: their fields plus their own
// empty tag section.
const (
	divergingEpochBytes = 4 + 8 + 1
	currentLeaderBytes  = 4 + 4 + 1
)

// appendPartitionTags appends a v12+ partition's tag section: tag 0
// DivergingEpoch {epoch i32, end_offset i64}, tag 1 CurrentLeader
// {leader_id i32, leader_epoch i32}, each as uvarint tag, uvarint size, the
// struct's fields and its empty tag section, in ascending tag order as
// KIP-482 requires.
func appendPartitionTags(dst []byte, p *FetchPartition) []byte {
	var n uint32
	if p.DivergingEpoch != nil {
		n++
	}
	if p.CurrentLeader != nil {
		n++
	}
	dst = kbin.AppendUvarint(dst, n)
	if e := p.DivergingEpoch; e != nil {
		dst = kbin.AppendUvarint(dst, 0)
		dst = kbin.AppendUvarint(dst, divergingEpochBytes)
		dst = kbin.AppendInt32(dst, e.Epoch)
		dst = kbin.AppendInt64(dst, e.EndOffset)
		dst = append(dst, 0)
	}
	if l := p.CurrentLeader; l != nil {
		dst = kbin.AppendUvarint(dst, 1)
		dst = kbin.AppendUvarint(dst, currentLeaderBytes)
		dst = kbin.AppendInt32(dst, l.LeaderID)
		dst = kbin.AppendInt32(dst, l.LeaderEpoch)
		dst = append(dst, 0)
	}
	return dst
}

// appendTopLevelTags appends a v12+ response's top-level tag section: from
// v16, tag 0 NodeEndpoints when there are any, a compact array of
// {node_id i32, host compact string, port i32, rack compact nullable
// string, empty tag section}, preceded by its size as a tagged field is.
func appendTopLevelTags(dst []byte, version int16, nodes []NodeEndpoint) []byte {
	if version < 16 || len(nodes) == 0 {
		return append(dst, 0)
	}
	dst = kbin.AppendUvarint(dst, 1) // one tagged field
	dst = kbin.AppendUvarint(dst, 0) // tag 0
	size := kbin.UvarintLen(uint32(len(nodes)) + 1)
	for _, n := range nodes {
		size += 4 + kbin.UvarintLen(uint32(len(n.Host))+1) + len(n.Host) + 4 + 1
		if n.Rack != nil {
			size += kbin.UvarintLen(uint32(len(*n.Rack))+1) + len(*n.Rack)
		} else {
			size++
		}
	}
	dst = kbin.AppendUvarint(dst, uint32(size))
	dst = kbin.AppendUvarint(dst, uint32(len(nodes))+1)
	for _, n := range nodes {
		dst = kbin.AppendInt32(dst, n.NodeID)
		dst = kbin.AppendCompactString(dst, n.Host)
		dst = kbin.AppendInt32(dst, n.Port)
		dst = kbin.AppendCompactNullableString(dst, n.Rack)
		dst = append(dst, 0)
	}
	return dst
}

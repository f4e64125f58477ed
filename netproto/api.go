// Package netproto speaks the Kafka wire protocol on TCP connections: framing,
// request headers (flexible and not), decoding with franz-go's kmsg, many
// requests in flight per connection with responses written strictly in
// request order, and the zero-copy Fetch response, framed by hand around file
// regions that go out with sendfile. It knows nothing of topics or
// partitions: a Handler answers requests.
package netproto

import (
	"context"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// VersionRange is the [Min, Max] versions served for one API key.
type VersionRange struct {
	Min, Max int16
	// Offered, when set, is the highest version ApiVersions lists. Versions
	// above it up to Max are served but not offered: only peers that know
	// them ask (Barge's followers send Fetch v15, KIP-903, which clients
	// would otherwise pick up and need topic ids for).
	Offered int16
}

// OfferedMax is the highest version ApiVersions lists.
func (v VersionRange) OfferedMax() int16 {
	if v.Offered > 0 && v.Offered < v.Max {
		return v.Offered
	}
	return v.Max
}

// Request is one decoded request.
type Request struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      *string
	Body          kmsg.Request // decoded at Version
	Size          int          // bytes of the frame, size prefix excluded
	// Produce, when set, streams a Produce request's topics and partitions
	// (ServerConfig.StreamProduceMinBytes): Body is then a
	// *kmsg.ProduceRequest with every field but Topics, which the handler
	// reads from Produce inside ServeKafka.
	Produce  *ProduceStream
	Received time.Time
	Conn     ConnInfo

	pooled []byte      // the frame, when it came from the frame pools; see Recycle
	frames *frameCache // where Recycle returns pooled
}

// ConnInfo identifies the connection a request came in on.
type ConnInfo struct {
	ID         uint64
	RemoteAddr net.Addr
	LocalAddr  net.Addr
}

// Response is what a Handler answers with: exactly one of Msg, Fetch or
// None, optionally with Close; or Close alone. Anything else (nothing set,
// two kinds set, a Msg of another key than the request, a Fetch answering
// anything but a Fetch v4..v16) is a broker bug: netproto logs it at Error
// and closes the connection.
type Response struct {
	// Msg is encoded by netproto at the request's version.
	Msg kmsg.Response
	// Fetch is framed by hand; its record regions go out with sendfile.
	Fetch *FetchResponse
	// None sends nothing (Produce with acks=0) but keeps the request's slot
	// in order.
	None bool
	// Close closes the connection after the responses before this one,
	// and this one's Msg or Fetch if set, are written (Kafka's answer to
	// requests it cannot serve). Later requests' responses are dropped.
	Close bool
}

// Handler serves requests. ServeKafka is called on the connection's read
// goroutine, one request at a time in arrival order, so a handler that does
// its ordered work (an append) before returning keeps per-connection order.
// It must call respond exactly once, before returning or later from any
// goroutine (a produce waiting for acks, a fetch waiting for data). ctx is
// cancelled when the connection closes or the server shuts down; a handler
// holding a long poll should then answer at once with what it has.
// Responses are written in request order regardless of when respond is called.
// A second call of respond for one request is logged and ignored; a call
// after the connection closed is dropped (a Fetch is released).
//
// ServeKafka must return promptly once ctx is cancelled: Shutdown and Close
// wait for the read goroutine that runs it. A panic in ServeKafka is logged
// with its stack and closes that connection only; a panic in a goroutine
// the handler started is the handler's to recover.
type Handler interface {
	ServeKafka(ctx context.Context, req *Request, respond func(Response))
}

// FileRegion is a byte range of an open file to send with sendfile. The file
// must stay open until the response's Release runs.
type FileRegion struct {
	File     *os.File
	Position int64
	Size     int64
}

// FetchResponse is a Fetch response (v4 to v16) whose record sets are file
// regions. netproto writes the framing of Kafka's FetchResponse around them
// (aborted_transactions always null) and sends the regions with sendfile, or
// pread+write where the connection cannot sendfile. A region whose file turns
// out shorter than Position+Size breaks the response: the connection is
// closed.
type FetchResponse struct {
	ThrottleMillis int32
	ErrorCode      int16 // v7+
	SessionID      int32 // v7+; 0 declines fetch sessions
	Topics         []FetchTopic
	// NodeEndpoints (v16+, top-level tag 0) are the addresses of the
	// leaders that partitions' CurrentLeader name (KIP-951); omitted when
	// empty.
	NodeEndpoints []NodeEndpoint
	// Replica marks a response to a follower broker, so its record bytes
	// are also counted in Stats.ReplicaSendfileBytes/ReplicaCopiedBytes.
	Replica bool
	// Release is called exactly once, when the response has been written
	// (its regions handed to the kernel) or dropped, to give back the file
	// references behind the regions. It runs on the connection's write
	// goroutine, or on the goroutine calling respond or closing the
	// connection, so it must be safe from any goroutine and not block.
	// May be nil.
	Release func()
}

// FetchTopic is one topic of a FetchResponse.
type FetchTopic struct {
	Topic      string
	TopicID    [16]byte // v13+ send the id instead of the name
	Partitions []FetchPartition
}

// FetchPartition is one partition of a FetchResponse. Records are sent as
// the concatenation of Regions; no regions gives an empty (length 0, never
// null) record set.
type FetchPartition struct {
	Partition            int32
	ErrorCode            int16
	HighWatermark        int64
	LastStableOffset     int64
	LogStartOffset       int64 // v5+
	PreferredReadReplica int32 // v11+; -1 for none
	// DivergingEpoch (v12+ tagged field 0) tells a follower where its log
	// diverged; nil omits it.
	DivergingEpoch *EpochEndOffset
	// CurrentLeader (v12+ tagged field 1); nil omits it.
	CurrentLeader *LeaderIDAndEpoch
	Regions       []FileRegion
}

// EpochEndOffset is Kafka's (epoch, end offset) pair.
type EpochEndOffset struct {
	Epoch     int32
	EndOffset int64
}

// NodeEndpoint is a broker's address on the listener a client used.
type NodeEndpoint struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   *string
}

// LeaderIDAndEpoch is Kafka's (leader id, leader epoch) pair.
type LeaderIDAndEpoch struct {
	LeaderID    int32
	LeaderEpoch int32
}

// Observer receives one call per answered request, for metrics, once the
// response has been written to the socket (a None response counts, with 0
// response bytes; a dropped one does not). latency runs from
// Request.Received to that write; requestBytes is Request.Size,
// responseBytes the whole response frame with its size prefix. It runs on
// the connection's write goroutine, concurrently for different
// connections, and must not block.
type Observer interface {
	ObserveRequest(key, version int16, latency time.Duration, requestBytes, responseBytes int)
}

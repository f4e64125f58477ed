package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/netproto"
	"github.com/barge-broker/barge/replication"
	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch v4-16: v4 is the first that librdkafka's MsgVer2 needs; v13+ name
// topics by id, v15 carries a follower's broker epoch (KIP-903), which
// Barge's followers send, and v16 the endpoints of the leaders named on
// NOT_LEADER_OR_FOLLOWER (KIP-951). Fetch sessions (v7+) are declined with
// session id 0, so clients send full requests.
func init() {
	register(kmsg.Fetch, 4, 16, handleFetch)
}

// replicaFetchVersion is the lowest Fetch version a follower's fetch is
// accepted at: the first to carry the follower's broker epoch.
const replicaFetchVersion = 15

// maxFetchWait bounds max_wait_ms, so a client cannot park a request for
// hours.
const maxFetchWait = 30 * time.Second

// handleFetch answers with file regions that netproto sends with sendfile.
// When fewer than min_bytes are available it parks the request on the
// partitions' append notifications (never a timer poll) until enough data
// arrives, max_wait_ms passes, or the connection or broker shuts down.
func handleFetch(b *Broker, ctx context.Context, req *netproto.Request, respond func(netproto.Response)) {
	r := req.Body.(*kmsg.FetchRequest)
	f := newFetch(ctx, b, r, req.Version)
	f.local = req.Conn.LocalAddr
	resp := f.read()
	if resp.bytes >= int64(r.MinBytes) || r.MaxWaitMillis <= 0 || resp.hasError || resp.diverged {
		respond(netproto.Response{Fetch: resp.resp})
		return
	}
	resp.release()
	// Park: the wait runs on its own goroutine so the connection keeps
	// reading requests; netproto keeps the responses in order.
	if testBeforeParkHook != nil {
		testBeforeParkHook()
	}
	wake := make(chan struct{}, 1)
	parts := f.partitions()
	for _, pp := range parts {
		pp.p.addWaiter(wake, pp.offset, f.replicaID >= 0)
	}
	wait := min(time.Duration(r.MaxWaitMillis)*time.Millisecond, maxFetchWait)
	go func() {
		defer func() {
			for _, pp := range parts {
				pp.p.removeWaiter(wake)
			}
		}()
		defer b.survive("parked fetch", func() { respond(netproto.Response{Close: true}) })
		timer := time.NewTimer(wait)
		defer timer.Stop()
		for {
			select {
			case <-wake:
				if testFetchWakeHook != nil {
					testFetchWakeHook()
				}
				resp := f.read()
				if resp.bytes >= int64(r.MinBytes) || resp.hasError || resp.diverged {
					b.metrics.fetchWakeAnswered.Inc()
					respond(netproto.Response{Fetch: resp.resp})
					return
				}
				b.metrics.fetchWakeFutile.Inc()
				resp.release()
			case <-timer.C:
				respond(netproto.Response{Fetch: f.read().resp})
				return
			case <-ctx.Done():
				respond(netproto.Response{Fetch: f.read().resp})
				return
			}
		}
	}()
}

// testFetchWakeHook, when set by a test, runs each time a parked fetch
// wakes: the way a test makes that goroutine fail.
var testFetchWakeHook func()

// testBeforeParkHook, when set by a test, runs after a fetch found too
// little to answer and before it parks: the window an append can fall in.
var testBeforeParkHook func()

// fetch is one Fetch request being answered, possibly several times over
// while it waits for data.
type fetch struct {
	b       *Broker
	req     *kmsg.FetchRequest
	version int16
	// names are the request's topics by name, in request order (v13+
	// requests name them by id; "" for an id this broker does not know).
	names []string
	// replicaID is the follower's broker id, or -1 for a consumer.
	replicaID int32
	// replicaRefused is the code every partition of a follower's fetch
	// gets when the follower is not who it says (0 when it is).
	replicaRefused int16
	// local is the address the request came in on, for leader hints.
	local net.Addr
	// leaders looks up the partitions; it waits for metadata at most once
	// in the fetch's life, however often a parked fetch reads again.
	leaders leaderLookup
}

func newFetch(ctx context.Context, b *Broker, r *kmsg.FetchRequest, version int16) *fetch {
	f := &fetch{b: b, req: r, version: version, replicaID: r.ReplicaID, leaders: b.lookupLeaders(ctx)}
	img := b.metadataImage()
	caughtUp := false
	for _, t := range r.Topics {
		name := t.Topic
		if version >= 13 {
			known, ok := img.TopicByID(cluster.TopicID(t.TopicID))
			if !ok && !caughtUp {
				// A follower can apply a topic's creation before its
				// leader does (see leaderFor).
				b.catchUpMetadata(ctx)
				img, caughtUp = b.metadataImage(), true
				known, ok = img.TopicByID(cluster.TopicID(t.TopicID))
			}
			name = ""
			if ok {
				name = known.Name
			}
		}
		f.names = append(f.names, name)
	}
	if version >= 15 {
		f.replicaID = r.ReplicaState.ID
	}
	if f.replicaID >= 0 {
		f.replicaRefused = f.checkFollower(img, r.ReplicaState.Epoch)
	}
	return f
}

// checkFollower decides whether a fetch naming replica id f.replicaID may
// act as that broker's follower fetch, which moves the high watermark. The
// follower must send the broker epoch of its current registration (KIP-903):
// a client that merely sets a replica id, an older process of that broker
// (a zombie from before its restart), or a fenced broker is refused with
// STALE_BROKER_EPOCH, and its fetch counts for nothing.
func (f *fetch) checkFollower(img *cluster.Image, epoch int64) int16 {
	br, ok := img.Broker(f.replicaID)
	why := ""
	switch {
	case f.version < replicaFetchVersion:
		why = fmt.Sprintf("a replica fetch needs Fetch v%d (broker epoch); this one is v%d", replicaFetchVersion, f.version)
	case !ok:
		why = "no such broker is registered"
	case br.Fenced:
		why = "the broker is fenced"
	case epoch != br.Epoch:
		why = fmt.Sprintf("broker epoch %d, registered %d", epoch, br.Epoch)
	default:
		return 0
	}
	f.b.logger.Warn("replica fetch refused", "replica_id", f.replicaID, "reason", why)
	return kerr.StaleBrokerEpoch.Code
}

type fetchResult struct {
	resp     *netproto.FetchResponse
	bytes    int64
	hasError bool // a partition error: answer now, the client must act
	diverged bool // a follower must truncate: answer now
	reads    []*storage.ReadResult
}

func (r *fetchResult) release() {
	for _, rr := range r.reads {
		rr.Release()
	}
	r.reads = nil
}

// parkedOn is a hosted partition a parked fetch waits on, and the offset it
// fetches there.
type parkedOn struct {
	p      *partition
	offset int64
}

// partitions returns the hosted partitions the request names.
func (f *fetch) partitions() []parkedOn {
	var out []parkedOn
	for ti, t := range f.req.Topics {
		for _, rp := range t.Partitions {
			if part := f.b.replicas.get(f.names[ti], rp.Partition); part != nil {
				out = append(out, parkedOn{part, rp.FetchOffset})
			}
		}
	}
	return out
}

// read builds a response from what the logs hold now.
func (f *fetch) read() *fetchResult {
	res := &fetchResult{resp: &netproto.FetchResponse{Replica: f.replicaID >= 0}}
	res.resp.Release = res.release
	budget := int64(f.req.MaxBytes)
	if f.version < 3 || budget <= 0 {
		budget = 1<<31 - 1
	}
	follower := f.replicaID >= 0
	var hints *leaderHints // made for the first partition with a leader error
	for ti, t := range f.req.Topics {
		ft := netproto.FetchTopic{Topic: f.names[ti], TopicID: t.TopicID}
		for _, rp := range t.Partitions {
			var fp netproto.FetchPartition
			switch {
			case f.replicaRefused != 0:
				fp = errorFetchPartition(rp.Partition, f.replicaRefused)
			case f.names[ti] == "":
				fp = errorFetchPartition(rp.Partition, kerr.UnknownTopicID.Code)
			default:
				fp = f.readPartition(f.names[ti], rp, &budget, follower, res)
			}
			if fp.ErrorCode != 0 {
				res.hasError = true
				if hintable(fp.ErrorCode) && f.names[ti] != "" {
					if hints == nil {
						hints = f.b.leaderHints(f.local)
					}
					fp.CurrentLeader = hints.fetchCurrentLeader(f.version, f.names[ti], &fp)
				}
			}
			ft.Partitions = append(ft.Partitions, fp)
		}
		res.resp.Topics = append(res.resp.Topics, ft)
	}
	hints.fillFetchEndpoints(f.version, res.resp)
	return res
}

// errorFetchPartition is a partition answered with an error and no records.
func errorFetchPartition(partition int32, code int16) netproto.FetchPartition {
	return netproto.FetchPartition{Partition: partition, ErrorCode: code, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, PreferredReadReplica: -1}
}

func (f *fetch) readPartition(topic string, rp kmsg.FetchRequestTopicPartition, budget *int64, follower bool, res *fetchResult) netproto.FetchPartition {
	p, code := f.leaders.leaderFor(topic, rp.Partition)
	if code != 0 {
		return errorFetchPartition(rp.Partition, code)
	}
	fp := errorFetchPartition(rp.Partition, 0)
	var upTo int64
	if follower {
		// §1.3: epochs, divergence and position checked, the follower's
		// LEO recorded and the HW advanced, in one step on the replica.
		d := p.rep.HandleFollowerFetch(replication.FollowerFetch{
			ReplicaID: f.replicaID, FetchOffset: rp.FetchOffset, LastFetchedEpoch: rp.LastFetchedEpoch,
			CurrentLeaderEpoch: rp.CurrentLeaderEpoch, LogStartOffset: rp.LogStartOffset,
		}, time.Now())
		fp.HighWatermark, fp.LastStableOffset, fp.LogStartOffset = d.HighWatermark, d.HighWatermark, d.LogStartOffset
		if d.ErrorCode != 0 {
			fp.ErrorCode = d.ErrorCode
			return fp
		}
		if d.Diverging != nil {
			fp.DivergingEpoch = &netproto.EpochEndOffset{Epoch: d.Diverging.Epoch, EndOffset: d.Diverging.EndOffset}
			res.diverged = true
			return fp
		}
		upTo = d.ReadUpTo
	} else {
		if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, p.leaderEpoch()); code != 0 {
			fp.ErrorCode = code
			return fp
		}
		hw := p.highWatermark()
		fp.HighWatermark, fp.LastStableOffset, fp.LogStartOffset = hw, hw, p.log.LogStartOffset()
		upTo = hw
	}
	maxBytes := int64(rp.PartitionMaxBytes)
	if *budget < maxBytes {
		maxBytes = *budget
	}
	if maxBytes <= 0 {
		return fp // out of budget: an empty record set
	}
	var throttle *replication.Throttle
	if follower && p.rep.ThrottledFollower(f.replicaID) {
		// A replica being added by a move reads within this leader's
		// replication throttle; an empty answer makes it wait.
		throttle = f.b.repl.LeaderThrottle()
		if maxBytes, _ = throttle.Allow(time.Now(), maxBytes); maxBytes == 0 {
			return fp
		}
	}
	rr, err := p.log.Read(rp.FetchOffset, int(maxBytes), upTo)
	if err != nil {
		fp.ErrorCode = errorCode(err)
		if !errors.Is(err, storage.ErrOffsetOutOfRange) {
			f.b.logger.Warn("fetch read failed", "topic", topic, "partition", rp.Partition, "err", err)
		}
		return fp
	}
	if throttle != nil {
		throttle.Take(time.Now(), int(rr.Size))
	}
	res.reads = append(res.reads, rr)
	for _, reg := range rr.Regions {
		fp.Regions = append(fp.Regions, netproto.FileRegion{File: reg.File, Position: reg.Position, Size: reg.Size})
	}
	res.bytes += rr.Size
	*budget -= rr.Size
	return fp
}

// checkLeaderEpoch applies KIP-320: a client that knows a newer epoch than
// this broker must wait for it (UNKNOWN_LEADER_EPOCH); one with an older
// epoch must refresh its metadata (FENCED_LEADER_EPOCH). -1 skips the check.
func checkLeaderEpoch(clientEpoch, ours int32) int16 {
	switch {
	case clientEpoch < 0 || clientEpoch == ours:
		return 0
	case clientEpoch > ours:
		return kerr.UnknownLeaderEpoch.Code
	default:
		return kerr.FencedLeaderEpoch.Code
	}
}

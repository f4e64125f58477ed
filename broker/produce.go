package broker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/barge-broker/barge/netproto"
	"github.com/barge-broker/barge/replication"
	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce v3-11: RecordBatch v2 only (v3 is the first with it); v12 changes
// transaction semantics (KIP-890) and v13 names topics by id.
func init() { register(kmsg.Produce, 3, 11, handleProduce) }

// handleProduce appends each partition's batches to its log as they came,
// unopened. It runs on the connection's read goroutine, so the appends of
// one connection happen in request order, which idempotent producers with
// several requests in flight rely on. acks=1 is answered after the
// leader's append; acks=all parks the request in the purgatory until the
// high watermark passes every partition's last offset (or timeout.ms
// passes); acks=0 gets no response at all.
func handleProduce(b *Broker, ctx context.Context, req *netproto.Request, respond func(netproto.Response)) {
	r := req.Body.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	acks := r.Acks
	var refuseAll int16 // a request-level error: every partition gets it, nothing is appended
	switch {
	case acks != 0 && acks != 1 && acks != -1:
		refuseAll = kerr.InvalidRequiredAcks.Code
	case r.TransactionID != nil:
		// Transactions are not served: no coordinator APIs are advertised,
		// so only a misbehaving client gets here.
		refuseAll = kerr.TransactionalIDAuthorizationFailed.Code
	}
	type parked struct {
		ti, pi int
		rep    *replication.Replica
		offset int64 // the high watermark that acknowledges it
	}
	var parks []parked
	// A partition refused with NOT_LEADER_OR_FOLLOWER is told who leads it
	// now (KIP-951), whichever way the answer goes out.
	local := req.Conn.LocalAddr
	leaders := b.lookupLeaders(ctx)
	walk := walkProduce(req)
	for topic, ok := walk.nextTopic(); ok; topic, ok = walk.nextTopic() {
		ti := len(resp.Topics)
		st := kmsg.NewProduceResponseTopic()
		st.Topic = topic
		for rp, ok := walk.nextPartition(); ok; rp, ok = walk.nextPartition() {
			if refuseAll != 0 {
				st.Partitions = append(st.Partitions, refusedPartition(rp.Partition, refuseAll))
				continue
			}
			sp, rep, next := b.produceOne(&leaders, topic, rp, acks == -1)
			if acks == -1 && rep != nil {
				parks = append(parks, parked{ti, len(st.Partitions), rep, next})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if err := walk.err(); err != nil {
		// The request broke off (the connection, or a malformed tail): it
		// gets no answer, as a request that cannot be read gets none. What
		// was appended before the break is like an append whose answer was
		// lost: the producer retries it.
		b.logger.Debug("produce request broke off while streaming", "err", err)
		respond(netproto.Response{Close: true})
		return
	}
	if refuseAll != 0 {
		respond(netproto.Response{Msg: resp})
		return
	}
	// The appends are done and the response holds no bytes of the request:
	// its frame can serve the next produce on this broker.
	req.Recycle()
	if acks == 0 {
		// No answer, but an error must not pass silently: Kafka closes the
		// connection, so the client notices, refreshes its metadata (a
		// moved leader is the usual cause) and reconnects.
		if code, ok := firstPartitionError(resp); ok {
			b.logger.Debug("closing an acks=0 producer's connection after a partition error", "code", code)
			respond(netproto.Response{Close: true})
			return
		}
		respond(netproto.Response{None: true})
		return
	}
	if len(parks) == 0 {
		b.fillProduceHints(local, req.Version, resp)
		respond(netproto.Response{Msg: resp})
		return
	}
	// Room in the purgatory is taken after the append: a full purgatory
	// holds this connection's next request back (back-pressure).
	var wait *replication.Wait
	wait, err := b.acks.Begin(ctx, len(parks), func(codes []int16) {
		// Runs on whichever goroutine finished the wait (a follower's
		// fetch advancing the high watermark, a timer): a panic here
		// must not take the broker down.
		defer b.survive("acks=all completion", func() { respond(netproto.Response{Close: true}) })
		b.metrics.acksAllWait.Observe(wait.Elapsed().Seconds())
		for i, code := range codes {
			if code != 0 {
				sp := &resp.Topics[parks[i].ti].Partitions[parks[i].pi]
				sp.ErrorCode = code
			}
		}
		b.fillProduceHints(local, req.Version, resp)
		respond(netproto.Response{Msg: resp})
	})
	if err != nil {
		for _, pk := range parks {
			resp.Topics[pk.ti].Partitions[pk.pi].ErrorCode = kerr.RequestTimedOut.Code
		}
		b.fillProduceHints(local, req.Version, resp)
		respond(netproto.Response{Msg: resp})
		return
	}
	for i, pk := range parks {
		wait.Park(i, pk.rep, pk.offset)
	}
	wait.Start(max(time.Duration(r.TimeoutMillis)*time.Millisecond, time.Millisecond))
}

// produceOne appends one partition's batches. With acksAll it also returns
// the replica and the high watermark that acknowledges the write, when the
// append (or a duplicate of an earlier one) succeeded.
func (b *Broker) produceOne(leaders *leaderLookup, topic string, rp kmsg.ProduceRequestTopicPartition, acksAll bool) (kmsg.ProduceResponseTopicPartition, *replication.Replica, int64) {
	sp := kmsg.NewProduceResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
	p, code := leaders.leaderFor(topic, rp.Partition)
	switch {
	case code != 0:
		sp.ErrorCode = code
		return sp, nil, 0
	case isInternalTopic(topic):
		sp.ErrorCode = kerr.InvalidTopicException.Code
		sp.ErrorMessage = errorMessage(errInternalTopic(topic))
		return sp, nil, 0
	case len(rp.Records) == 0:
		sp.ErrorCode = kerr.InvalidRecord.Code
		msg := "produce request without a record batch"
		sp.ErrorMessage = &msg
		return sp, nil, 0
	case b.disk.full():
		if leaders.awaitHandOver(topic, p) {
			sp.ErrorCode = kerr.NotLeaderForPartition.Code
			return sp, nil, 0
		}
		// Retriable for clients: they retry until the space comes back.
		sp.ErrorCode = kerr.KafkaStorageError.Code
		msg := fmt.Sprintf("broker %d: %s", b.cfg.ID, b.disk.why())
		sp.ErrorMessage = &msg
		return sp, nil, 0
	case p.compacted.Load():
		if refused := refuseKeyless(&sp, topic, rp); refused {
			return sp, nil, 0
		}
	}
	// The leadership check and the append are one step: a batch is never
	// stamped with an epoch this broker no longer leads.
	res, err := p.rep.AppendAsLeader(rp.Records, acksAll)
	b.metrics.produced(topic, len(rp.Records), err)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		sp.ErrorMessage = errorMessage(err)
		if sp.ErrorCode == kerr.UnknownServerError.Code || sp.ErrorCode == kerr.KafkaStorageError.Code {
			b.logger.Error("append failed", "topic", topic, "partition", rp.Partition, "err", err)
		}
		if sp.ErrorCode == kerr.KafkaStorageError.Code && leaders.awaitHandOver(topic, p) {
			// The write error took the log offline (Options.OnOffline
			// ran before the append returned), and the partition has a
			// new leader: send the client there.
			sp.ErrorCode, sp.ErrorMessage = kerr.NotLeaderForPartition.Code, nil
		}
		return sp, nil, 0
	}
	if !res.Duplicate {
		b.disk.appended(len(rp.Records))
		p.appended()
	}
	sp.BaseOffset = res.FirstOffset
	sp.LogAppendTime = res.LogAppendTime
	sp.LogStartOffset = res.LogStartOffset
	if !acksAll {
		return sp, nil, 0
	}
	// A duplicate waits too: the original may not be replicated yet.
	return sp, p.rep, res.LastOffset + 1
}

// refuseKeyless fills sp with Kafka's answer to records without a key on a
// compacted topic: INVALID_RECORD with one record error per keyless record
// (KIP-467; clients older than Produce v8 see only the code), or the batch's
// own error when it does not parse. It reports whether it refused the
// partition's records.
func refuseKeyless(sp *kmsg.ProduceResponseTopicPartition, topic string, rp kmsg.ProduceRequestTopicPartition) bool {
	keyless, err := storage.FindKeylessRecords(rp.Records)
	if err != nil {
		sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
		return true
	}
	if len(keyless) == 0 {
		return false
	}
	why := fmt.Sprintf("compacted topic %s (cleanup.policy=compact) cannot accept a record without a key", topic)
	for _, k := range keyless {
		re := kmsg.NewProduceResponseTopicPartitionErrorRecord()
		re.RelativeOffset = int32(k.Record)
		re.ErrorMessage = &why
		sp.ErrorRecords = append(sp.ErrorRecords, re)
	}
	msg := fmt.Sprintf("%d of the records were refused: %s", len(keyless), why)
	sp.ErrorCode, sp.ErrorMessage = kerr.InvalidRecord.Code, &msg
	return true
}

// leaderLookup finds the partitions one request names. The waits a lookup
// may make for this broker's metadata to catch up (a read barrier through
// the controller, the end of a controlled shutdown's hand-over, a held
// partition's new leader) are made at most once per request, however many
// partitions it names, and end with the request's context: one wait brings
// the whole image up to date. Made per partition, they added up: a
// follower's fetch naming 3,000 partitions this broker no longer led, with
// no controller to answer, waited one failed barrier (a second) per
// partition, and held the broker's shutdown behind it for most of an hour.
type leaderLookup struct {
	b        *Broker
	ctx      context.Context
	caughtUp bool // the read barrier was made (or tried)
	// shutdownWaited: the controlled shutdown's hand-over was waited for.
	shutdownWaited bool
	// handOverBy ends the request's waits for held partitions to get new
	// leaders (awaitHandOver); zero until the first.
	handOverBy time.Time
}

func (b *Broker) lookupLeaders(ctx context.Context) leaderLookup {
	return leaderLookup{b: b, ctx: ctx}
}

// leaderFor returns the hosted partition this broker leads, or the code a
// client gets instead: UNKNOWN_TOPIC_OR_PARTITION when the metadata has no
// such partition, NOT_LEADER_OR_FOLLOWER when another broker leads it or it
// is not open here yet (both send the client back to Metadata).
//
// A partition this broker does not know may only be one it has not heard of
// yet: another broker that already applied the topic's creation can name
// this one as its leader a moment before this one applies it (librdkafka's
// 0114 test asked for offsets there and failed on the "unknown"). So before
// answering "unknown" the broker catches up with the controller once.
func (l *leaderLookup) leaderFor(topic string, partition int32) (*partition, int16) {
	b := l.b
	if p := b.replicas.get(topic, partition); p != nil && p.leads() {
		return p, 0
	}
	if b.topicPartitionExists(topic, partition) {
		// Known, but the replica may not have taken the role the image
		// gives it yet: partitions are reconciled just after the image is
		// applied, so wait for that (locally, briefly).
		ctx, cancel := context.WithTimeout(l.ctx, metadataSyncTimeout)
		b.replicas.waitApplied(ctx, b.node.Image().Index())
		cancel()
	}
	if p := b.replicas.get(topic, partition); (p == nil || !p.leads()) && !l.caughtUp {
		// The client may know of a change this broker has not applied
		// yet: leadership that moved here a moment ago, as a broker in
		// controlled shutdown tells its clients while its followers are
		// still applying the fence. Catch up with the controller before
		// saying no, or the client waits out its metadata refresh backoff
		// (seen in the rolling-restart test as ~120 ms without acks).
		l.caughtUp = true
		b.catchUpMetadata(l.ctx)
	}
	p := b.replicas.get(topic, partition)
	if (p == nil || !p.leads()) && b.handingOver.Load() && !l.shutdownWaited {
		// In a controlled shutdown the client would ask the others for
		// the new leader next: answer once they all know it.
		l.shutdownWaited = true
		t := time.NewTimer(handOverWait)
		select {
		case <-b.handedOver:
		case <-b.ctx.Done():
		case <-l.ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	switch {
	case p != nil && p.leads():
		return p, 0
	case p == nil && !b.topicPartitionExists(topic, partition):
		return nil, kerr.UnknownTopicOrPartition.Code
	default:
		return nil, kerr.NotLeaderForPartition.Code
	}
}

// handOverWait bounds how long a NOT_LEADER_OR_FOLLOWER answer waits
// during a controlled shutdown (see Broker.handedOver), and how long a
// produce refused by held storage waits for the partition's new leader
// (awaitHandOver).
const handOverWait = 2 * time.Second

// awaitHandOver waits, while this broker's storage is held (a disk below
// its reserve, a log offline), for the controller to move p's leadership
// to another in-sync replica, and reports whether it moved. The producer
// is then answered NOT_LEADER_OR_FOLLOWER naming the new leader (KIP-951)
// and goes there at once. KAFKA_STORAGE_ERROR would tell it only to retry:
// franz-go then waits for its next metadata refresh, up to its 5 s
// metadata min age, before it finds the new leader. It waits for nothing
// when no other in-sync replica is live with its storage unheld, as then
// none can take over. The wait
// is one hand-over (a few Raft rounds) and holds this connection's next
// requests back, as any produce holds them while it appends; a request
// naming many partitions waits at most handOverWait for all of them
// together, not that long for each.
func (l *leaderLookup) awaitHandOver(topic string, p *partition) bool {
	b := l.b
	if !b.storageHeld() {
		return false
	}
	img := b.metadataImage()
	part, ok := img.Partition(topic, p.index)
	canLead := func(id int32) bool {
		br, ok := img.Broker(id)
		return id != b.cfg.ID && ok && !br.Fenced && !br.StorageHeld
	}
	if !ok || !slices.ContainsFunc(part.ISR, canLead) {
		return false
	}
	if l.handOverBy.IsZero() {
		l.handOverBy = time.Now().Add(handOverWait)
	}
	ctx, cancel := context.WithDeadline(l.ctx, l.handOverBy)
	defer cancel()
	for p.leads() {
		if !b.replicas.waitApplied(ctx, img.Index()+1) {
			return false
		}
		img = b.metadataImage()
	}
	return true
}

// catchUpMetadata brings this broker's metadata up to the controller's (at
// most metadataSyncTimeout, or until ctx ends); handlers asking at the same
// time share one read barrier. After a barrier failed (no controller
// reachable) the next ones are skipped for as long as a barrier may take:
// every request would otherwise wait that long to be answered from the
// same local image.
func (b *Broker) catchUpMetadata(ctx context.Context) {
	if failed := b.metaSyncFailed.Load(); failed != 0 && time.Since(time.Unix(0, failed)) < metadataSyncTimeout {
		return
	}
	ch := b.metaSync.DoChan("sync", func() (any, error) {
		if !b.trySyncMetadata(b.ctx) {
			b.metaSyncFailed.Store(time.Now().UnixNano())
		} else {
			b.metaSyncFailed.Store(0)
		}
		return nil, nil
	})
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// topicPartitionExists reports whether the metadata knows the partition, to
// tell UNKNOWN_TOPIC_OR_PARTITION from NOT_LEADER_OR_FOLLOWER.
func (b *Broker) topicPartitionExists(topic string, partition int32) bool {
	_, ok := b.node.Image().Partition(topic, partition)
	return ok
}

// firstPartitionError returns the first partition error of a produce
// response, if any.
func firstPartitionError(resp *kmsg.ProduceResponse) (int16, bool) {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return p.ErrorCode, true
			}
		}
	}
	return 0, false
}

// refusedPartition is a partition's answer to a request refused as a whole.
func refusedPartition(partition int32, code int16) kmsg.ProduceResponseTopicPartition {
	sp := kmsg.NewProduceResponseTopicPartition()
	sp.Partition, sp.ErrorCode = partition, code
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
	return sp
}

// produceWalk visits a produce request's topics and partitions in request
// order: those kmsg decoded, or those of a request streamed as it arrives
// (netproto.ProduceStream), whose records are valid only until the next
// step.
type produceWalk struct {
	stream *netproto.ProduceStream
	topics []kmsg.ProduceRequestTopic
	ti, pi int // decoded: the next topic, the next partition of topics[ti-1]
}

func walkProduce(req *netproto.Request) *produceWalk {
	if req.Produce != nil {
		return &produceWalk{stream: req.Produce}
	}
	return &produceWalk{topics: req.Body.(*kmsg.ProduceRequest).Topics}
}

func (w *produceWalk) nextTopic() (string, bool) {
	if w.stream != nil {
		return w.stream.NextTopic()
	}
	if w.ti == len(w.topics) {
		return "", false
	}
	w.ti, w.pi = w.ti+1, 0
	return w.topics[w.ti-1].Topic, true
}

func (w *produceWalk) nextPartition() (kmsg.ProduceRequestTopicPartition, bool) {
	if w.stream != nil {
		return w.stream.NextPartition()
	}
	if w.ti == 0 || w.pi == len(w.topics[w.ti-1].Partitions) {
		return kmsg.ProduceRequestTopicPartition{}, false
	}
	w.pi++
	return w.topics[w.ti-1].Partitions[w.pi-1], true
}

// err is why a streamed request broke off; nil for a decoded one.
func (w *produceWalk) err() error {
	if w.stream != nil {
		return w.stream.Err()
	}
	return nil
}

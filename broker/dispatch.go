package broker

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handler serves one API. It follows netproto.Handler's contract: called on
// the connection's read goroutine in request order, it calls respond exactly
// once, now or later.
type handler func(b *Broker, ctx context.Context, req *netproto.Request, respond func(netproto.Response))

type api struct {
	versions netproto.VersionRange
	serve    handler
}

// apis is the table of served APIs, filled by each handler file's init with
// the versions that handler truly implements. ApiVersions advertises exactly
// this table.
var apis = map[int16]api{}

func register(key kmsg.Key, minVersion, maxVersion int16, h handler) {
	if _, dup := apis[int16(key)]; dup {
		panic(fmt.Sprintf("broker: API %v registered twice", key))
	}
	apis[int16(key)] = api{netproto.VersionRange{Min: minVersion, Max: maxVersion}, h}
}

// offerUpTo lists only versions up to max of an API in ApiVersions; the
// versions above stay served for peers that know them.
func offerUpTo(key kmsg.Key, max int16) {
	a := apis[int16(key)]
	a.versions.Offered = max
	apis[int16(key)] = a
}

// replying adapts a handler that answers at once.
func replying(fn func(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response) handler {
	return func(b *Broker, ctx context.Context, req *netproto.Request, respond func(netproto.Response)) {
		respond(netproto.Response{Msg: fn(b, ctx, req)})
	}
}

// versionsFor is netproto's view of the table.
func versionsFor(key int16) (netproto.VersionRange, bool) {
	a, ok := apis[key]
	return a.versions, ok
}

// sortedAPIKeys lists the served keys in order, for ApiVersions.
func sortedAPIKeys() []int16 {
	keys := make([]int16, 0, len(apis))
	for k := range apis {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// catchUpWait bounds how long a request waits for a starting broker's
// metadata to catch up with the controller; then its connection is closed
// and the client tries again, elsewhere or later.
const catchUpWait = 10 * time.Second

// ServeKafka implements netproto.Handler. netproto has already checked the
// key and version against the table. Until the metadata has caught up with
// the controller (see applyMetadata) only ApiVersions is answered; other
// requests wait, as a Kafka broker opens its data plane only once caught
// up: answered from a stale image, a Metadata request would send clients
// to leaders that moved while this broker was down.
func (b *Broker) ServeKafka(ctx context.Context, req *netproto.Request, respond func(netproto.Response)) {
	a, ok := apis[req.Key]
	if !ok {
		respond(netproto.Response{Close: true})
		return
	}
	b.lastRequest.Store(time.Now().UnixNano())
	if req.Key != int16(kmsg.ApiVersions) && !b.awaitCaughtUp(ctx) {
		respond(netproto.Response{Close: true})
		return
	}
	a.serve(b, ctx, req, respond)
}

// awaitCaughtUp waits until the metadata has caught up, at most
// catchUpWait, and reports whether it has.
func (b *Broker) awaitCaughtUp(ctx context.Context) bool {
	select {
	case <-b.caughtUp:
		return true
	default:
	}
	t := time.NewTimer(catchUpWait)
	defer t.Stop()
	select {
	case <-b.caughtUp:
		return true
	case <-ctx.Done():
	case <-b.ctx.Done():
	case <-t.C:
	}
	return false
}

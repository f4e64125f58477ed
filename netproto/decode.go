package netproto

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsKey is ApiVersions, the one API whose unsupported versions are
// answered rather than refused, and whose response header is always v0.
const apiVersionsKey = 18

// minFrameBytes is the smallest frame that can hold the fixed part of a
// request header (api_key, api_version, correlation_id).
const minFrameBytes = 8

// decodeRequest turns one frame (the bytes after the size prefix) into a
// Request: header v1 or v2 (a tag section when the request version is
// flexible), then the body decoded by kmsg at the header's version. The body
// may alias frame (kmsg keeps byte fields such as records as sub-slices), so
// the caller must not reuse frame.
//
// On error the returned Request is non-nil whenever the fixed header was
// read, so the caller can log the key and answer ApiVersions. The error wraps
// ErrMalformedRequest, ErrUnsupportedRequest or ErrUnsupportedVersion.
// decodeRequest never panics: a panic inside kmsg is reported as malformed.
func decodeRequest(frame []byte, versions func(int16) (VersionRange, bool)) (req *Request, err error) {
	if len(frame) < minFrameBytes {
		return nil, fmt.Errorf("%w: %d byte frame", ErrMalformedRequest, len(frame))
	}
	r := kbin.Reader{Src: frame}
	req = &Request{
		Key:           r.Int16(),
		Version:       r.Int16(),
		CorrelationID: r.Int32(),
		Size:          len(frame),
	}
	defer func() {
		// kmsg is generated and fuzzed upstream, but a panic here would take
		// the whole broker down for one client's bad bytes.
		if p := recover(); p != nil {
			err = headerError(ErrMalformedRequest, req.Key, req.Version, fmt.Sprintf("panic while decoding: %v", p))
		}
	}()

	kreq := kmsg.RequestForKey(req.Key)
	vr, advertised := versions(req.Key)
	switch {
	case kreq == nil || !advertised:
		return req, headerError(ErrUnsupportedRequest, req.Key, req.Version, "")
	case req.Version < vr.Min || req.Version > vr.Max || req.Version < 0 || req.Version > kreq.MaxVersion():
		// Checked before the body is touched: kmsg cannot decode versions it
		// does not know, and ApiVersions at such a version must still be
		// answered.
		return req, headerError(ErrUnsupportedVersion, req.Key, req.Version,
			fmt.Sprintf("advertised %d..%d", vr.Min, vr.Max))
	}

	// client_id is a NULLABLE_STRING with an int16 length in every header
	// version, flexible or not (KIP-482 kept it so for old parsers).
	req.ClientID = r.NullableString()
	kreq.SetVersion(req.Version)
	if kreq.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if !r.Ok() {
		return req, headerError(ErrMalformedRequest, req.Key, req.Version, "truncated header")
	}
	if err := kreq.ReadFrom(r.Src); err != nil {
		return req, headerError(ErrMalformedRequest, req.Key, req.Version, err.Error())
	}
	req.Body = kreq
	return req, nil
}

// unsupportedApiVersions is the answer to ApiVersions at a version outside
// the advertised range: the v0 body layout with UNSUPPORTED_VERSION and the
// whole advertised list, so a client can pick a version it shares with us
// and retry (kgo parses the list; librdkafka fails on an empty one).
func unsupportedApiVersions(versions func(int16) (VersionRange, bool)) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = errUnsupportedVersionCode
	resp.ApiKeys = advertised(versions)
	return resp
}

// errUnsupportedVersionCode is Kafka's UNSUPPORTED_VERSION.
const errUnsupportedVersionCode = 35

// advertised lists every key kmsg knows for which versions reports a range,
// in key order.
func advertised(versions func(int16) (VersionRange, bool)) []kmsg.ApiVersionsResponseApiKey {
	var keys []kmsg.ApiVersionsResponseApiKey
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		vr, ok := versions(key)
		if !ok || kmsg.RequestForKey(key) == nil {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, vr.Min, vr.OfferedMax()
		keys = append(keys, k)
	}
	return keys
}

// appendResponseFrame appends a whole response frame for msg: size prefix,
// header and body encoded at version. The response header is v1 (with an
// empty tag section) for flexible versions, except for ApiVersions, which
// always uses header v0 so a client can read it before it knows what we
// speak.
func appendResponseFrame(dst []byte, corr int32, version int16, msg kmsg.Response) []byte {
	start := len(dst)
	dst = kbin.AppendInt32(dst, 0) // size, patched below
	dst = kbin.AppendInt32(dst, corr)
	msg.SetVersion(version)
	if msg.IsFlexible() && msg.Key() != apiVersionsKey {
		dst = append(dst, 0)
	}
	dst = msg.AppendTo(dst)
	putInt32(dst[start:], int32(len(dst)-start-4))
	return dst
}

func putInt32(dst []byte, v int32) {
	dst[0], dst[1], dst[2], dst[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// requestMeta is what the write side keeps of a request: enough to frame
// its response and report it to the Observer.
type requestMeta struct {
	key, version int16
	corr         int32
	size         int
	received     time.Time
	reserved     int64 // bytes of the server's request budget this request holds
}

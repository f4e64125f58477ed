package netproto

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedRequests are valid requests of several keys and versions, flexible and
// not: the decode table's valid rows and FuzzDecodeRequest's seed corpus.
func seedRequests() []kmsg.Request {
	fetch := func(v int16) kmsg.Request {
		r := kmsg.NewPtrFetchRequest()
		r.Version, r.MaxWaitMillis, r.MinBytes, r.MaxBytes = v, 500, 1, 1<<20
		t := kmsg.NewFetchRequestTopic()
		t.Topic = "orders"
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition, p.FetchOffset, p.PartitionMaxBytes = 2, 100, 1<<20
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	}
	produce := func(v int16) kmsg.Request {
		r := kmsg.NewPtrProduceRequest()
		r.Version, r.Acks, r.TimeoutMillis = v, -1, 1000
		t := kmsg.NewProduceRequestTopic()
		t.Topic = "orders"
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2}
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	}
	apiVersions := func(v int16) kmsg.Request {
		r := kmsg.NewPtrApiVersionsRequest()
		r.Version, r.ClientSoftwareName, r.ClientSoftwareVersion = v, "kgo", "1.22"
		return r
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.ProtocolType, join.SessionTimeoutMillis = 6, "g", "consumer", 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}
	return []kmsg.Request{
		apiVersions(0), apiVersions(3),
		metadataRequest(0, "a"), metadataRequest(4), metadataRequest(9, "a", "b"), metadataRequest(12, "c"),
		produce(3), produce(8), produce(9),
		fetch(4), fetch(11), fetch(12),
		join,
	}
}

func encodeFrame(req kmsg.Request, clientID *string) []byte {
	return appendRequest(nil, 123, clientID, req, nil)[4:]
}

func TestDecodeRequestTable(t *testing.T) {
	type row struct {
		name    string
		frame   []byte
		wantErr error
		lenient bool // kmsg accepts it but normalizes: skip the re-encode check
	}
	var rows []row
	for _, req := range seedRequests() {
		rows = append(rows, row{kmsg.NameForKey(req.Key()) + " valid", encodeFrame(req, kmsg.StringPtr("id")), nil, false})
	}
	valid := encodeFrame(metadataRequest(9, "orders", "payments"), nil)
	flipped := append([]byte(nil), valid...)
	// The body ends "payments", its tag section and three bools, so this
	// is the length of "payments": it now runs past the frame.
	flipped[len(flipped)-14] = 0x7f
	// Produce v3: null transactional id, acks 1, timeout 1, topics -5.
	negArray := rawFrame(0, 3, 123, []byte{0xff, 0xff, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfb})[4:]
	// Metadata v4: one topic whose name length is -5.
	negString := rawFrame(3, 4, 1, []byte{0, 0, 0, 1, 0xff, 0xfb, 1})[4:]
	rows = append(rows,
		row{"empty", nil, ErrMalformedRequest, false},
		row{"header cut", valid[:6], ErrMalformedRequest, false},
		row{"client id cut", rawFrame(3, 4, 1, nil)[4:9], ErrMalformedRequest, false},
		row{"body truncated", valid[:len(valid)-5], ErrMalformedRequest, false},
		row{"body bit-flipped", flipped, ErrMalformedRequest, false},
		row{"flexible header tags cut", append(rawFrame(3, 12, 1, nil)[4:], 3, 1), ErrMalformedRequest, false},
		row{"negative string length", negString, ErrMalformedRequest, false},
		// kmsg reads a negative non-nullable array length as empty.
		row{"negative array length", negArray, nil, true},
		row{"unknown key", rawFrame(1000, 0, 1, nil)[4:], ErrUnsupportedRequest, false},
		row{"negative key", rawFrame(-1, 0, 1, nil)[4:], ErrUnsupportedRequest, false},
		row{"version above advertised", rawFrame(1, 16, 1, nil)[4:], ErrUnsupportedVersion, false},
		row{"version below advertised", rawFrame(1, 3, 1, nil)[4:], ErrUnsupportedVersion, false},
		row{"negative version", rawFrame(3, -1, 1, nil)[4:], ErrUnsupportedVersion, false},
		row{"api versions beyond kmsg", rawFrame(18, 99, 1, []byte{1, 2, 3})[4:], ErrUnsupportedVersion, false},
	)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			req, err := decodeRequest(r.frame, testVersions)
			if !errors.Is(err, r.wantErr) || (r.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, r.wantErr)
			}
			if err != nil {
				if len(r.frame) >= minFrameBytes && req == nil {
					t.Fatal("no header returned with the error")
				}
				return
			}
			if req.CorrelationID != 123 || req.Body == nil || req.Body.Key() != req.Key || req.Body.GetVersion() != req.Version {
				t.Fatalf("decoded %+v", req)
			}
			// Re-encoding the decoded body gives the same bytes.
			if again := encodeFrame(req.Body, req.ClientID); !r.lenient && string(again) != string(r.frame) {
				t.Fatalf("re-encoded frame differs:\n%x\n%x", again, r.frame)
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, req := range seedRequests() {
		f.Add(encodeFrame(req, kmsg.StringPtr("fuzz")))
	}
	f.Add(rawFrame(18, 99, 1, nil)[4:])
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := decodeRequest(frame, testVersions)
		if err == nil && (req == nil || req.Body == nil) {
			t.Fatal("success without a body")
		}
		if err != nil && !errors.Is(err, ErrMalformedRequest) && !errors.Is(err, ErrUnsupportedRequest) &&
			!errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

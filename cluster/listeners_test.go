package cluster

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestListenersRegistered follows a broker's advertised listeners from its
// gossip metadata through the controller's plan and the log encoding into
// the image and a snapshot of it.
func TestListenersRegistered(t *testing.T) {
	listeners := FormatListeners([]string{"INTERNAL", "EXTERNAL"}, []string{"barge1:9092", "localhost:19092"})
	if listeners != "INTERNAL=barge1:9092,EXTERNAL=localhost:19092" {
		t.Fatalf("FormatListeners = %q", listeners)
	}
	meta, err := json.Marshal(memberMeta{Version: memberMetaVersion, ID: 1, Kafka: "barge1:9092", Raft: "r1", Inc: "i1", Listeners: listeners})
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeMeta(&memberlist.Node{Name: nodeName(1), Addr: net.IPv4(10, 0, 0, 1), Port: 9094, Meta: meta})
	if err != nil || m.Listeners != listeners {
		t.Fatalf("decodeMeta = %+v, %v; want listeners %q", m, err, listeners)
	}

	// The broker's heartbeat carries them to the controller's liveness
	// plan, which registers the process with them, and only once.
	hb := BrokerHeartbeat{ID: 1, KafkaAddr: "barge1:9092", RaftAddr: "r1", Incarnation: "i1", Listeners: listeners}
	if hb.member().Listeners != listeners {
		t.Fatalf("heartbeat member %+v lost the listeners", hb.member())
	}
	b := newBuilder(t)
	s := newSessions(testSessionConfig)
	now := time.Unix(1000, 0)
	s.reset(now)
	s.heartbeat(hb.member(), false, false, 0, now)
	var reg *RegisterBroker
	for _, cmd := range planMetadata(b.img, s.plan(b.img, []Member{m}, now), nil) {
		if p, ok := cmd.Payload.(RegisterBroker); ok {
			reg = &p
		}
	}
	if reg == nil || reg.Listeners != listeners {
		t.Fatalf("plan registers %+v, want listeners %q", reg, listeners)
	}
	b.must(*reg)
	for _, cmd := range planMetadata(b.img, s.plan(b.img, []Member{m}, now), nil) {
		if _, ok := cmd.Payload.(RegisterBroker); ok {
			t.Fatalf("registered broker planned again: %v", cmd)
		}
	}

	restored, err := imageFromDoc(b.img.doc())
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []*Image{b.img, restored} {
		br, ok := img.Broker(1)
		if !ok || br.Listeners != listeners || br.KafkaAddr != "barge1:9092" {
			t.Fatalf("image broker 1 = %+v", br)
		}
		for name, want := range map[string]string{"INTERNAL": "barge1:9092", "EXTERNAL": "localhost:19092", "OTHER": ""} {
			if got, ok := br.ListenerAddr(name); got != want || ok != (want != "") {
				t.Errorf("ListenerAddr(%s) = %q, %v; want %q", name, got, ok, want)
			}
		}
	}
	// Registered without named listeners: KafkaAddr on every listener.
	plain := Broker{ID: 2, KafkaAddr: "10.0.0.2:9092"}
	if got, ok := plain.ListenerAddr("EXTERNAL"); got != "10.0.0.2:9092" || !ok {
		t.Errorf("plain broker ListenerAddr = %q, %v", got, ok)
	}
}

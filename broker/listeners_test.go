package broker

import (
	"net"
	"strings"
	"testing"

	"github.com/barge-broker/barge/cluster"
)

func mustListeners(t *testing.T, items ...string) []Listener {
	t.Helper()
	var out []Listener
	for _, s := range items {
		l, err := ParseListener(s)
		if err != nil {
			t.Fatalf("ParseListener(%q): %v", s, err)
		}
		out = append(out, l)
	}
	return out
}

func TestParseListener(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Listener
		wantErr string
	}{
		{in: "INTERNAL=0.0.0.0:9092", want: Listener{"INTERNAL", "0.0.0.0:9092"}},
		{in: " external = localhost:19092 ", want: Listener{"EXTERNAL", "localhost:19092"}},
		{in: "A_1-b=[::1]:0", want: Listener{"A_1-B", "[::1]:0"}},
		{in: "0.0.0.0:9092", wantErr: "want NAME=host:port"},
		{in: "=host:1", wantErr: "the name must be"},
		{in: "1X=host:1", wantErr: "the name must be"},
		{in: "X=host", wantErr: "want host:port"},
		{in: "X=host:http", wantErr: "bad port"},
		{in: "X=host:70000", wantErr: "bad port"},
	} {
		got, err := ParseListener(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseListener(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseListener(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestPlanListeners(t *testing.T) {
	base := func() Config { c := DefaultConfig(); c.KafkaAddr = "127.0.0.1:9092"; return c }
	named := func(listeners, advertised []string, ib string) Config {
		c := base()
		c.Listeners = mustListeners(t, listeners...)
		c.AdvertisedListeners = mustListeners(t, advertised...)
		c.InterBrokerListener = ib
		return c
	}
	two := []string{"INTERNAL=0.0.0.0:9092", "EXTERNAL=0.0.0.0:19092"}
	twoAdv := []string{"INTERNAL=barge1:9092", "EXTERNAL=localhost:19092"}
	for _, tc := range []struct {
		name     string
		cfg      Config
		want     []listenerSpec
		wantIB   int
		wantErr  string
		wantName bool
	}{
		{name: "shorthand", cfg: base(), want: []listenerSpec{{DefaultListenerName, "127.0.0.1:9092", ""}}},
		{name: "shorthand advertised", cfg: func() Config { c := base(); c.AdvertisedKafkaAddr = "k1:9092"; return c }(),
			want: []listenerSpec{{DefaultListenerName, "127.0.0.1:9092", "k1:9092"}}},
		{name: "shorthand wildcard still binds (as before)", cfg: func() Config { c := base(); c.KafkaAddr = "0.0.0.0:9092"; return c }(),
			want: []listenerSpec{{DefaultListenerName, "0.0.0.0:9092", ""}}},
		{name: "shorthand inter-broker PLAINTEXT", cfg: func() Config { c := base(); c.InterBrokerListener = "plaintext"; return c }(),
			want: []listenerSpec{{DefaultListenerName, "127.0.0.1:9092", ""}}},
		{name: "two named", cfg: named(two, twoAdv, "internal"), wantIB: 0, wantName: true,
			want: []listenerSpec{{"INTERNAL", "0.0.0.0:9092", "barge1:9092"}, {"EXTERNAL", "0.0.0.0:19092", "localhost:19092"}}},
		{name: "inter-broker second", cfg: named(two, twoAdv, "EXTERNAL"), wantIB: 1, wantName: true,
			want: []listenerSpec{{"INTERNAL", "0.0.0.0:9092", "barge1:9092"}, {"EXTERNAL", "0.0.0.0:19092", "localhost:19092"}}},
		{name: "one named needs no inter-broker", cfg: named([]string{"A=127.0.0.1:0"}, nil, ""), wantName: true,
			want: []listenerSpec{{"A", "127.0.0.1:0", ""}}},
		{name: "two on port 0", cfg: named([]string{"A=127.0.0.1:0", "B=127.0.0.1:0"}, nil, "A"), wantName: true,
			want: []listenerSpec{{"A", "127.0.0.1:0", ""}, {"B", "127.0.0.1:0", ""}}},

		{name: "advertised not listened on", cfg: named(two, []string{"INTERNAL=barge1:9092", "EXTERNAL=localhost:19092", "OTHER=x:1"}, "INTERNAL"),
			wantErr: "--advertised-listeners names OTHER, which --listeners does not listen on"},
		{name: "two on one port", cfg: named([]string{"A=127.0.0.1:9092", "B=10.0.0.1:9092"}, nil, "A"),
			wantErr: "--listeners A and B both use port 9092"},
		{name: "advertised wildcard", cfg: named(two, []string{"INTERNAL=0.0.0.0:9092", "EXTERNAL=localhost:19092"}, "INTERNAL"),
			wantErr: "--advertised-listeners INTERNAL: address \"0.0.0.0:9092\" is a wildcard"},
		{name: "advertised wildcard v6", cfg: named(two, []string{"INTERNAL=[::]:9092", "EXTERNAL=localhost:19092"}, "INTERNAL"),
			wantErr: "is a wildcard"},
		{name: "advertised no host", cfg: named(two, []string{"INTERNAL=:9092", "EXTERNAL=localhost:19092"}, "INTERNAL"),
			wantErr: "has no host"},
		{name: "advertised port 0", cfg: named(two, []string{"INTERNAL=barge1:0", "EXTERNAL=localhost:19092"}, "INTERNAL"),
			wantErr: "has port 0"},
		{name: "wildcard bound, not advertised", cfg: named(two, []string{"INTERNAL=barge1:9092"}, "INTERNAL"),
			wantErr: "listener EXTERNAL binds 0.0.0.0:19092, which clients cannot dial"},
		{name: "unknown inter-broker", cfg: named(two, twoAdv, "REPLICATION"),
			wantErr: "--inter-broker-listener REPLICATION is not in --listeners (INTERNAL, EXTERNAL)"},
		{name: "inter-broker missing", cfg: named(two, twoAdv, ""),
			wantErr: "--inter-broker-listener must say which one"},
		{name: "name twice", cfg: named([]string{"A=h:1", "a=h:2"}, nil, "A"), wantErr: "names A twice"},
		{name: "advertised twice", cfg: named(two, append(twoAdv, "EXTERNAL=x:1"), "INTERNAL"), wantErr: "--advertised-listeners names EXTERNAL twice"},
		{name: "advertise with listeners", cfg: func() Config { c := named(two, twoAdv, "INTERNAL"); c.AdvertisedKafkaAddr = "x:1"; return c }(),
			wantErr: "--advertise belongs to --kafka"},
		{name: "advertised listeners without listeners", cfg: func() Config { c := base(); c.AdvertisedListeners = mustListeners(t, "A=x:1"); return c }(),
			wantErr: "--advertised-listeners needs --listeners"},
		{name: "shorthand unknown inter-broker", cfg: func() Config { c := base(); c.InterBrokerListener = "INTERNAL"; return c }(),
			wantErr: "without --listeners the one listener is --kafka, named PLAINTEXT"},
		{name: "shorthand advertise wildcard", cfg: func() Config { c := base(); c.AdvertisedKafkaAddr = "0.0.0.0:9092"; return c }(),
			wantErr: "--advertise: address \"0.0.0.0:9092\" is a wildcard"},
		{name: "too long to gossip", cfg: named([]string{"A=0.0.0.0:1", "B=0.0.0.0:2", "C=0.0.0.0:3"},
			[]string{"A=" + strings.Repeat("a", 90) + ":1", "B=" + strings.Repeat("b", 90) + ":2", "C=" + strings.Repeat("c", 90) + ":3"}, "A"),
			wantErr: "bytes of gossip metadata, at most 280"},
		{name: "shorthand empty", cfg: func() Config { c := base(); c.KafkaAddr = ""; return c }(), wantErr: "--kafka must be host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := tc.cfg.planListeners()
			if verr := tc.cfg.Validate(); (verr == nil) != (err == nil) {
				t.Errorf("Validate = %v, planListeners = %v: they must agree", verr, err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("planListeners = %+v, %v; want an error with %q", plan, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("planListeners: %v", err)
			}
			if len(plan.specs) != len(tc.want) || plan.interBroker != tc.wantIB || plan.named != tc.wantName {
				t.Fatalf("planListeners = %+v; want specs %+v, inter-broker %d, named %v", plan, tc.want, tc.wantIB, tc.wantName)
			}
			for i := range tc.want {
				if plan.specs[i] != tc.want[i] {
					t.Errorf("spec %d = %+v, want %+v", i, plan.specs[i], tc.want[i])
				}
			}
		})
	}
}

// TestListenerFor checks that a connection's local port picks its listener,
// and that each broker is advertised on that listener or left out.
func TestListenerFor(t *testing.T) {
	b := &Broker{
		listeners: []boundListener{
			{name: "INTERNAL", port: 9092}, {name: "EXTERNAL", port: 19092},
		},
		interBroker: 0,
	}
	for _, tc := range []struct {
		local net.Addr
		want  string
	}{
		{&net.TCPAddr{IP: net.IPv4(172, 18, 0, 2), Port: 9092}, "INTERNAL"},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 19092}, "EXTERNAL"},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, "INTERNAL"}, // unknown: the inter-broker one
		{nil, "INTERNAL"},
	} {
		if got := b.listenerFor(tc.local); got != tc.want {
			t.Errorf("listenerFor(%v) = %q, want %q", tc.local, got, tc.want)
		}
	}

	named := cluster.Broker{ID: 1, KafkaAddr: "barge1:9092",
		Listeners: cluster.FormatListeners([]string{"INTERNAL", "EXTERNAL"}, []string{"barge1:9092", "localhost:19092"})}
	plain := cluster.Broker{ID: 2, KafkaAddr: "10.0.0.2:9092"}
	for _, tc := range []struct {
		br       cluster.Broker
		listener string
		host     string
		port     int32
		ok       bool
	}{
		{named, "EXTERNAL", "localhost", 19092, true},
		{named, "INTERNAL", "barge1", 9092, true},
		{named, "OTHER", "", 0, false},
		{plain, "EXTERNAL", "10.0.0.2", 9092, true}, // registered without named listeners
		{plain, "", "10.0.0.2", 9092, true},
	} {
		host, port, ok := advertisedAddr(tc.br, tc.listener)
		if host != tc.host || port != tc.port || ok != tc.ok {
			t.Errorf("advertisedAddr(broker %d, %q) = %s, %d, %v; want %s, %d, %v", tc.br.ID, tc.listener, host, port, ok, tc.host, tc.port, tc.ok)
		}
	}
}

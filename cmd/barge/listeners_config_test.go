package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// TestListenerSettings sets the named listeners from each source: a YAML
// list, the environment's comma-separated form and repeated flags.
func TestListenerSettings(t *testing.T) {
	want := broker.Config{
		Listeners:           []broker.Listener{{Name: "INTERNAL", Addr: "0.0.0.0:9092"}, {Name: "EXTERNAL", Addr: "0.0.0.0:19092"}},
		AdvertisedListeners: []broker.Listener{{Name: "INTERNAL", Addr: "barge1:9092"}, {Name: "EXTERNAL", Addr: "localhost:19092"}},
		InterBrokerListener: "INTERNAL",
	}
	check := func(t *testing.T, stage string, args ...string) {
		t.Helper()
		var got broker.Config
		if r := runBarge(t, capture(&got), args...); r.code != cli.ExitOK {
			t.Fatalf("%s: exit code %d, stderr:\n%s", stage, r.code, r.stderr)
		}
		if !reflect.DeepEqual(got.Listeners, want.Listeners) || !reflect.DeepEqual(got.AdvertisedListeners, want.AdvertisedListeners) ||
			got.InterBrokerListener != want.InterBrokerListener {
			t.Errorf("%s: listeners %v, advertised %v, inter-broker %q; want %v, %v, %q", stage,
				got.Listeners, got.AdvertisedListeners, got.InterBrokerListener,
				want.Listeners, want.AdvertisedListeners, want.InterBrokerListener)
		}
	}
	path := writeConfig(t, "listeners: [INTERNAL=0.0.0.0:9092, EXTERNAL=0.0.0.0:19092]\n"+
		"advertised-listeners:\n  - internal=barge1:9092\n  - external=localhost:19092\n"+
		"inter-broker-listener: INTERNAL\n")
	check(t, "file", "serve", "--config", path)

	t.Run("env", func(t *testing.T) {
		t.Setenv("BARGE_LISTENERS", "INTERNAL=0.0.0.0:9092,EXTERNAL=0.0.0.0:19092")
		t.Setenv("BARGE_ADVERTISED_LISTENERS", "INTERNAL=barge1:9092, EXTERNAL=localhost:19092")
		t.Setenv("BARGE_INTER_BROKER_LISTENER", "INTERNAL")
		check(t, "env", "serve")
	})
	check(t, "flags", "serve", "--listeners", "INTERNAL=0.0.0.0:9092", "--listeners", "EXTERNAL=0.0.0.0:19092",
		"--advertised-listeners", "INTERNAL=barge1:9092,EXTERNAL=localhost:19092", "--inter-broker-listener", "INTERNAL")
}

func TestListenerUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"malformed", []string{"--listeners", "0.0.0.0:9092"}, "want NAME=host:port"},
		{"kafka and listeners", []string{"--kafka", "127.0.0.1:9092", "--listeners", "A=127.0.0.1:9092"}, "--kafka and --listeners both"},
		{"advertised not listened on", []string{"--listeners", "A=127.0.0.1:9092", "--advertised-listeners", "B=x:1"}, "--advertised-listeners names B, which --listeners does not listen on"},
		{"one port", []string{"--listeners", "A=127.0.0.1:9092,B=127.0.0.2:9092", "--inter-broker-listener", "A"}, "both use port 9092"},
		{"advertised wildcard", []string{"--listeners", "A=0.0.0.0:9092", "--advertised-listeners", "A=0.0.0.0:9092"}, "is a wildcard"},
		{"unknown inter-broker", []string{"--listeners", "A=127.0.0.1:9092,B=127.0.0.1:9093", "--inter-broker-listener", "C"}, "--inter-broker-listener C is not in --listeners (A, B)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got broker.Config
			r := runBarge(t, capture(&got), append([]string{"serve"}, tc.args...)...)
			if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit code %d, stderr:\n%s\nwant exit %d and %q", r.code, r.stderr, cli.ExitUsage, tc.want)
			}
		})
	}
}

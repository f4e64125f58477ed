package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// `barge dev` with real brokers is tested in cmd/barge/e2e (TestDevCluster);
// here its usage errors and its port layout.

func TestDevUsageErrors(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dev", "--nodes", "0"}, cli.ExitUsage, "--nodes 0"},
		{[]string{"dev", "--base-port", "65400"}, cli.ExitUsage, "--base-port"},
		{[]string{"dev", "--kill", "1", "--stop", "2"}, cli.ExitUsage, "give one"},
		{[]string{"dev", "--kill", "2", "--nodes", "3"}, cli.ExitUsage, "takes only --data"},
		{[]string{"dev", "--restart", "2", "--data", empty}, cli.ExitUnreachable, "no barge dev running on " + empty},
		{[]string{"dev", "--data", filepath.Join(empty, strings.Repeat("d", 100))}, cli.ExitUsage, "use a shorter --data"},
	} {
		r := runBarge(t, noServer(t), tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("barge %s: exit %d, stderr %q; want exit %d saying %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.code, tc.want)
		}
	}
}

func TestDevLayout(t *testing.T) {
	dir := t.TempDir()
	brokers, err := devLayout(dir, devOptions{nodes: 3, basePort: 29092, extra: []string{"--log-level", "debug"}})
	if err != nil {
		t.Fatal(err)
	}
	b2 := brokers[1]
	if b2.ID != 2 || b2.Kafka != "127.0.0.1:29093" || b2.HTTP != "127.0.0.1:29193" || b2.Raft != "127.0.0.1:29293" || b2.Gossip != "127.0.0.1:29393" {
		t.Errorf("broker 2: %+v", b2)
	}
	if b2.Data != filepath.Join(dir, "broker-2") {
		t.Errorf("broker 2 data %s", b2.Data)
	}
	want := []string{"serve", "--id", "2", "--data", b2.Data, "--kafka", "127.0.0.1:29093", "--http", "127.0.0.1:29193",
		"--raft", "127.0.0.1:29293", "--gossip", "127.0.0.1:29393", "--bootstrap-expect", "3", "--fast-failure-detection",
		"--join", "127.0.0.1:29392,127.0.0.1:29394", "--log-level", "debug"}
	if !slices.Equal(b2.Args, want) {
		t.Errorf("broker 2 args\n got %q\nwant %q", b2.Args, want)
	}

	// A dev.json from an earlier run: its layout wins over --base-port, and
	// a different --nodes is refused.
	raw, err := json.Marshal(devState{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, devStateFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := devLayout(dir, devOptions{nodes: 3, basePort: 0})
	if err != nil || again[1].Kafka != b2.Kafka || !slices.Equal(again[1].Args, want) {
		t.Errorf("reused layout: %v, broker 2 %+v", err, again[1])
	}
	if _, err := devLayout(dir, devOptions{nodes: 5, basePort: 29092}); cli.ExitCode(err) != cli.ExitUsage {
		t.Errorf("--nodes 5 on a 3-broker dev.json: %v, want a usage error", err)
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
		says string // in stderr
	}{
		{name: "unknown flag", args: []string{"serve", "--nope"}, want: cli.ExitUsage, says: "unknown flag: --nope"},
		{name: "unknown global flag", args: []string{"--nope"}, want: cli.ExitUsage, says: "unknown flag: --nope"},
		{name: "flag without value", args: []string{"serve", "--id"}, want: cli.ExitUsage, says: "--id"},
		{name: "unknown command", args: []string{"srve"}, want: cli.ExitUsage, says: `unknown command "srve" for "barge" (did you mean "serve"?)`},
		{name: "serve takes no arguments", args: []string{"serve", "extra"}, want: cli.ExitUsage, says: `"extra"`},
		{name: "bad log level flag", args: []string{"--log-level", "loud", "serve"}, want: cli.ExitUsage, says: "--log-level"},
		{name: "bad log format flag", args: []string{"serve", "--log-format=xml"}, want: cli.ExitUsage, says: "text, json"},
		{name: "completion takes no extra arguments", args: []string{"completion", "bash", "extra"}, want: cli.ExitUsage},
		{name: "no arguments prints help", args: nil, want: cli.ExitOK},
		{name: "help", args: []string{"--help"}, want: cli.ExitOK},
		{name: "help command", args: []string{"help", "serve"}, want: cli.ExitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runBarge(t, noServer(t), tc.args...)
			if r.code != tc.want {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, tc.want, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.says) {
				t.Errorf("stderr does not say %q:\n%s", tc.says, r.stderr)
			}
		})
	}
}

func TestServeHelpMentionsEverySetting(t *testing.T) {
	r := runBarge(t, noServer(t), "serve", "--help")
	if r.code != cli.ExitOK {
		t.Fatalf("exit code %d", r.code)
	}
	fields := append(loggingFields(), serveFields()...)
	for _, f := range fields {
		for _, w := range []string{"--" + f.name + " ", envName(f.name)} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("serve --help does not mention %q", w)
			}
		}
	}
	for _, w := range []string{"--config", configEnv, "Examples:", "barge serve"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("serve --help does not mention %q", w)
		}
	}
}

func TestRootHelpListsServe(t *testing.T) {
	r := runBarge(t, noServer(t))
	if r.code != cli.ExitOK {
		t.Fatalf("exit code %d", r.code)
	}
	for _, w := range []string{"serve", "Run a broker", "--log-format", "--log-level", "Examples:"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("barge help does not mention %q:\n%s", w, r.stdout)
		}
	}
}

func TestJSONLogs(t *testing.T) {
	var got broker.Config
	r := runBarge(t, capture(&got), "--log-format", "json", "serve", "--kafka", "127.0.0.1:0")
	if r.code != cli.ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
	if !strings.Contains(r.stderr, `"msg":"serving"`) {
		t.Errorf("no serving line:\n%s", r.stderr)
	}
}

func TestLogLevelPrecedence(t *testing.T) {
	path := writeConfig(t, "log-level: warn\n")
	var got broker.Config

	// From the file: the info line at start is not logged.
	r := runBarge(t, capture(&got), "serve", "--config", path)
	if r.code != cli.ExitOK || strings.Contains(r.stderr, "msg=serving") {
		t.Errorf("log-level warn from the file: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	// The environment beats the file.
	t.Setenv("BARGE_LOG_LEVEL", "debug")
	r = runBarge(t, capture(&got), "serve", "--config", path)
	if r.code != cli.ExitOK || !strings.Contains(r.stderr, "level=DEBUG") {
		t.Errorf("log-level debug from the env: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	// The flag beats both.
	r = runBarge(t, capture(&got), "--log-level", "error", "serve", "--config", path)
	if r.code != cli.ExitOK || r.stderr != "" {
		t.Errorf("log-level error from the flag: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

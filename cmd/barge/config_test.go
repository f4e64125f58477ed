package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

func TestServeWithNoSettingsRunsDefaultSingleNode(t *testing.T) {
	var got broker.Config
	deps, _, _ := testDeps(t)
	deps.LookupEnv = func(string) (string, bool) { return "", false } // whatever the machine's environment holds
	deps.Environ = func() []string { return nil }
	if code := run([]string{"serve"}, deps, capture(&got)); code != cli.ExitOK {
		t.Fatalf("exit code %d, want 0", code)
	}
	want := broker.DefaultConfig()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("broker config\n got %+v\nwant %+v", got, want)
	}
	if got.DataDir != "./barge-data" {
		t.Errorf("data dir %q, want ./barge-data", got.DataDir)
	}
}

// TestPrecedence sets each setting in the file, then also in the
// environment, then also by flag, and checks that the higher source wins
// each time. All keys are set at once, so one source's value of a key does
// not leak into another key.
func TestPrecedence(t *testing.T) {
	type key struct {
		name              string
		file, env, flag   string // YAML value, environment value, flag argument
		get               func(broker.Config) any
		wantFile, wantEnv any
		wantFlag          any
	}
	keys := []key{
		{name: "kafka", file: "0.0.0.0:1", env: "0.0.0.0:2", flag: "0.0.0.0:3",
			get:      func(c broker.Config) any { return c.KafkaAddr },
			wantFile: "0.0.0.0:1", wantEnv: "0.0.0.0:2", wantFlag: "0.0.0.0:3"},
		{name: "join", file: "[f1:9094, f2:9094]", env: "e1:9094, e2:9094", flag: "g1:9094",
			get:      func(c broker.Config) any { return c.Join },
			wantFile: []string{"f1:9094", "f2:9094"}, wantEnv: []string{"e1:9094", "e2:9094"}, wantFlag: []string{"g1:9094"}},
		{name: "id", file: "1", env: "2", flag: "3",
			get:      func(c broker.Config) any { return c.ID },
			wantFile: int32(1), wantEnv: int32(2), wantFlag: int32(3)},
		{name: "default-partitions", file: "2", env: "3", flag: "4",
			get:      func(c broker.Config) any { return c.DefaultPartitions },
			wantFile: int32(2), wantEnv: int32(3), wantFlag: int32(4)},
		{name: "log-segment-bytes", file: "1048576", env: "2_097_152", flag: "4194304",
			get:      func(c broker.Config) any { return c.Log.SegmentBytes },
			wantFile: int64(1 << 20), wantEnv: int64(2 << 20), wantFlag: int64(4 << 20)},
		{name: "log-retention-ms", file: "60000", env: "-1", flag: "1000",
			get:      func(c broker.Config) any { return c.Log.RetentionMs },
			wantFile: time.Minute, wantEnv: -time.Millisecond, wantFlag: time.Second},
		{name: "log-flush-ms", file: "10", env: "20", flag: "30",
			get:      func(c broker.Config) any { return c.Log.FlushInterval },
			wantFile: 10 * time.Millisecond, wantEnv: 20 * time.Millisecond, wantFlag: 30 * time.Millisecond},
		{name: "shutdown-timeout", file: "1m", env: "5s", flag: "1m30s",
			get:      func(c broker.Config) any { return c.ShutdownTimeout },
			wantFile: time.Minute, wantEnv: 5 * time.Second, wantFlag: 90 * time.Second},
		{name: "auto-create-topics", file: "false", env: "true", flag: "false",
			get:      func(c broker.Config) any { return c.AutoCreateTopics },
			wantFile: false, wantEnv: true, wantFlag: false},
		{name: "cluster-secret", file: "file-secret-0123456789", env: "env-secret-0123456789", flag: "flag-secret-0123456789",
			get:      func(c broker.Config) any { return c.ClusterSecret },
			wantFile: "file-secret-0123456789", wantEnv: "env-secret-0123456789", wantFlag: "flag-secret-0123456789"},
		{name: "advertise-raft", file: "a.example:1", env: "b.example:2", flag: "c.example:3",
			get:      func(c broker.Config) any { return c.AdvertisedRaftAddr },
			wantFile: "a.example:1", wantEnv: "b.example:2", wantFlag: "c.example:3"},
		{name: "advertise-gossip", file: "10.0.0.1:1", env: "10.0.0.2:2", flag: "10.0.0.3:3",
			get:      func(c broker.Config) any { return c.AdvertisedGossipAddr },
			wantFile: "10.0.0.1:1", wantEnv: "10.0.0.2:2", wantFlag: "10.0.0.3:3"},
		{name: "http", file: "127.0.0.1:1", env: "", flag: "127.0.0.1:3",
			get:      func(c broker.Config) any { return c.HTTPAddr },
			wantFile: "127.0.0.1:1", wantEnv: "", wantFlag: "127.0.0.1:3"},
	}
	var yaml strings.Builder
	for _, k := range keys {
		yaml.WriteString(k.name + ": " + k.file + "\n")
	}
	path := writeConfig(t, yaml.String())

	check := func(t *testing.T, stage string, args []string, want func(key) any) {
		t.Helper()
		var got broker.Config
		if r := runBarge(t, capture(&got), args...); r.code != cli.ExitOK {
			t.Fatalf("%s: exit code %d, stderr:\n%s", stage, r.code, r.stderr)
		}
		for _, k := range keys {
			if g, w := k.get(got), want(k); !reflect.DeepEqual(g, w) {
				t.Errorf("%s: %s = %#v, want %#v", stage, k.name, g, w)
			}
		}
	}

	check(t, "file only", []string{"serve", "--config", path}, func(k key) any { return k.wantFile })

	for _, k := range keys {
		t.Setenv(envName(k.name), k.env)
	}
	check(t, "file and env", []string{"serve", "--config", path}, func(k key) any { return k.wantEnv })

	args := []string{"serve", "--config", path}
	for _, k := range keys {
		args = append(args, "--"+k.name+"="+k.flag)
	}
	check(t, "file, env and flags", args, func(k key) any { return k.wantFlag })
}

func TestConfigFileFromEnvironment(t *testing.T) {
	t.Setenv(configEnv, writeConfig(t, "rack: from-file\n"))
	var got broker.Config
	if r := runBarge(t, capture(&got), "serve"); r.code != cli.ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", r.code, r.stderr)
	}
	if got.Rack != "from-file" {
		t.Errorf("rack %q, want from-file", got.Rack)
	}

	// --config beats BARGE_CONFIG.
	path := writeConfig(t, "rack: from-flag-file\n")
	if r := runBarge(t, capture(&got), "serve", "--config", path); r.code != cli.ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", r.code, r.stderr)
	}
	if got.Rack != "from-flag-file" {
		t.Errorf("rack %q, want from-flag-file", got.Rack)
	}
}

func TestListSyntax(t *testing.T) {
	want := []string{"a:1", "b:2", "c:3"}
	for _, tc := range []struct {
		name string
		file string
		env  string
		args []string
	}{
		{name: "repeated and comma-separated flags", args: []string{"--join", "a:1", "--join", "b:2,c:3"}},
		{name: "env with blanks", env: " a:1, b:2,,c:3 "},
		{name: "yaml sequence", file: "join:\n  - a:1\n  - b:2\n  - c:3\n"},
		{name: "yaml flow sequence", file: "join: [a:1, b:2, c:3]\n"},
		{name: "yaml comma string", file: "join: a:1,b:2,c:3\n"},
		{name: "env replaces file", file: "join: [x:9, y:9]\n", env: "a:1,b:2,c:3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			if tc.env != "" {
				t.Setenv("BARGE_JOIN", tc.env)
			}
			var got broker.Config
			if r := runBarge(t, capture(&got), args...); r.code != cli.ExitOK {
				t.Fatalf("exit code %d, stderr:\n%s", r.code, r.stderr)
			}
			if !reflect.DeepEqual(got.Join, want) {
				t.Errorf("join %q, want %q", got.Join, want)
			}
		})
	}
}

func TestRetentionInHours(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		file string
		args []string
		want time.Duration
	}{
		{name: "hours flag", args: []string{"--log-retention-hours", "24"}, want: 24 * time.Hour},
		{name: "hours in file", file: "log-retention-hours: 2\n", want: 2 * time.Hour},
		{name: "ms flag beats hours env", env: map[string]string{"BARGE_LOG_RETENTION_HOURS": "5"},
			args: []string{"--log-retention-ms", "1000"}, want: time.Second},
		{name: "hours env beats ms file", file: "log-retention-ms: 1000\n",
			env: map[string]string{"BARGE_LOG_RETENTION_HOURS": "5"}, want: 5 * time.Hour},
		{name: "forever", args: []string{"--log-retention-hours=-1"}, want: -time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append([]string{"serve"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			var got broker.Config
			if r := runBarge(t, capture(&got), args...); r.code != cli.ExitOK {
				t.Fatalf("exit code %d, stderr:\n%s", r.code, r.stderr)
			}
			if got.Log.RetentionMs != tc.want {
				t.Errorf("retention %v, want %v", got.Log.RetentionMs, tc.want)
			}
		})
	}
}

// TestUsageErrors checks that every way of giving a bad setting exits 2
// before a broker is built, with a message naming where the setting came
// from.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		file string // written and passed with --config when non-empty
		args []string
		want []string // substrings of stderr
	}{
		{name: "unknown yaml key", file: "kafka: 0.0.0.0:9092\nkafak: 0.0.0.0:9092\n",
			want: []string{`unknown key "kafak"`, "line 2", `did you mean "kafka"`}},
		{name: "yaml key in snake case", file: "bootstrap_expect: 3\n",
			want: []string{`unknown key "bootstrap_expect"`, `did you mean "bootstrap-expect"`}},
		{name: "yaml config key", file: "config: other.yaml\n", want: []string{`unknown key "config"`}},
		{name: "repeated yaml key", file: "id: 1\nrack: r\nid: 2\n", want: []string{`key "id" repeats line 1`}},
		{name: "yaml int not an int", file: "max-voters: many\n", want: []string{"line 1: max-voters", "not an integer"}},
		{name: "yaml list for a scalar", file: "kafka: [a:1, b:2]\n", want: []string{"kafka", "not a list"}},
		{name: "yaml null int", file: "id:\n", want: []string{"id", "needs a value"}},
		{name: "yaml syntax", file: "kafka: [unclosed\n", want: []string{"config file"}},
		{name: "yaml not a mapping", file: "- kafka\n", want: []string{"want a mapping"}},
		{name: "missing config file", args: []string{"--config", "/nonexistent/barge.yaml"},
			want: []string{"/nonexistent/barge.yaml"}},
		{name: "bad env int", env: map[string]string{"BARGE_ID": "seven"},
			want: []string{`BARGE_ID="seven"`, "not an integer"}},
		{name: "env int out of range", env: map[string]string{"BARGE_DEFAULT_REPLICATION_FACTOR": "40000"},
			want: []string{"BARGE_DEFAULT_REPLICATION_FACTOR", "16-bit"}},
		{name: "empty env int", env: map[string]string{"BARGE_LOG_SEGMENT_BYTES": ""},
			want: []string{"BARGE_LOG_SEGMENT_BYTES", "not an integer"}},
		{name: "bad env bool", env: map[string]string{"BARGE_AUTO_CREATE_TOPICS": "yes please"},
			want: []string{"BARGE_AUTO_CREATE_TOPICS", "not a boolean"}},
		{name: "bad env duration", env: map[string]string{"BARGE_SHUTDOWN_TIMEOUT": "30"},
			want: []string{"BARGE_SHUTDOWN_TIMEOUT", "not a duration"}},
		{name: "bad env log level", env: map[string]string{"BARGE_LOG_LEVEL": "loud"},
			want: []string{"BARGE_LOG_LEVEL", "debug, info, warn, error"}},
		{name: "bad log level in file", file: "log-level: loud\n", want: []string{"log-level", "must be one of"}},
		{name: "bad flag int", args: []string{"--id", "x"}, want: []string{`"--id"`, "not an integer"}},
		{name: "bad flag duration", args: []string{"--shutdown-timeout=forever"}, want: []string{"--shutdown-timeout"}},
		{name: "retention in ms and hours", args: []string{"--log-retention-ms", "1", "--log-retention-hours", "1"},
			want: []string{"--log-retention-ms and --log-retention-hours"}},
		{name: "retention in ms and hours in env",
			env:  map[string]string{"BARGE_LOG_RETENTION_MS": "1", "BARGE_LOG_RETENTION_HOURS": "1"},
			want: []string{"BARGE_LOG_RETENTION_MS", "BARGE_LOG_RETENTION_HOURS"}},
		{name: "invalid config", args: []string{"--default-partitions", "0"}, want: []string{"num.partitions 0"}},
		{name: "short cluster secret", env: map[string]string{"BARGE_CLUSTER_SECRET": "hunter2"},
			want: []string{"--cluster-secret has 7 bytes, want at least 16"}},
		{name: "invalid log config", env: map[string]string{"BARGE_LOG_SEGMENT_BYTES": "1"}, want: []string{"segment.bytes 1"}},
		{name: "no retention check interval", args: []string{"--log-retention-check-interval-ms", "0"},
			want: []string{"log.retention.check.interval.ms must be at least 1 ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append([]string{"serve"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			r := runBarge(t, noServer(t), args...)
			if r.code != cli.ExitUsage {
				t.Errorf("exit code %d, want %d", r.code, cli.ExitUsage)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
			if !strings.Contains(r.stderr, "Run 'barge serve --help' for usage.") {
				t.Errorf("stderr has no usage hint:\n%s", r.stderr)
			}
		})
	}
}

func TestEmptyYAMLIsNoSettings(t *testing.T) {
	var got broker.Config
	path := writeConfig(t, "# nothing set yet\n")
	if r := runBarge(t, capture(&got), "serve", "--config", path); r.code != cli.ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", r.code, r.stderr)
	}
	if got.KafkaAddr != broker.DefaultConfig().KafkaAddr {
		t.Errorf("kafka %q, want the default", got.KafkaAddr)
	}
}

func TestUnknownEnvironmentVariableIsWarned(t *testing.T) {
	t.Setenv("BARGE_KAKFA", "0.0.0.0:9092")
	var got broker.Config
	r := runBarge(t, capture(&got), "serve")
	if r.code != cli.ExitOK {
		t.Fatalf("exit code %d", r.code)
	}
	if !strings.Contains(r.stderr, "unknown environment variable") || !strings.Contains(r.stderr, "BARGE_KAKFA") {
		t.Errorf("no warning about BARGE_KAKFA:\n%s", r.stderr)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"kafka", "kafka", 0}, {"kafak", "kafka", 2}, {"raf", "raft", 1}, {"", "abc", 3}, {"abc", "", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestClusterSecretIsNeverShown: the secret is in neither --help nor the
// debug log of the resolved settings.
func TestClusterSecretIsNeverShown(t *testing.T) {
	const secret = "do-not-print-me-0123456789"
	t.Setenv(envName("cluster-secret"), secret)
	var got broker.Config
	r := runBarge(t, capture(&got), "--log-level", "debug", "serve")
	if r.code != cli.ExitOK || got.ClusterSecret != secret {
		t.Fatalf("exit code %d, secret %q, stderr:\n%s", r.code, got.ClusterSecret, r.stderr)
	}
	help := runBarge(t, noServer(t), "serve", "--help")
	for name, out := range map[string]string{"log": r.stderr + r.stdout, "help": help.stdout + help.stderr} {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the cluster secret:\n%s", name, out)
		}
	}
	if !strings.Contains(r.stderr, "name=cluster-secret value=(set)") {
		t.Errorf("debug log does not say the secret is set:\n%s", r.stderr)
	}
	if !strings.Contains(help.stdout, "BARGE_CLUSTER_SECRET") {
		t.Errorf("help does not name BARGE_CLUSTER_SECRET:\n%s", help.stdout)
	}
}

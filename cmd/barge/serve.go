package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// serveFields are the settings of `barge serve`, in --help order. The
// logging settings (loggingFields) are the root's flags and also apply.
func serveFields() []field {
	b := func(s *settings) *broker.Config { return &s.Broker }
	return []field{
		intField("id", "broker id, unique in the cluster",
			func(s *settings) *int32 { return &b(s).ID }),
		stringField("data", "directory of the partition logs and Raft state",
			func(s *settings) *string { return &b(s).DataDir }),
		stringField("kafka", "Kafka listener, host:port (port 0 picks a free port)",
			func(s *settings) *string { return &b(s).KafkaAddr }),
		stringField("advertise", "Kafka address given to clients and other brokers in Metadata; empty: the --kafka listener's address",
			func(s *settings) *string { return &b(s).AdvertisedKafkaAddr }),
		listenersField("listeners", "named Kafka listeners, NAME=host:port,... (INTERNAL=0.0.0.0:9092,EXTERNAL=0.0.0.0:19092); replaces --kafka; a client is told every broker's address on the listener it connected to",
			func(s *settings) *[]broker.Listener { return &b(s).Listeners }),
		listenersField("advertised-listeners", "address clients dial for each of --listeners, NAME=host:port,... (INTERNAL=kafka1:9092,EXTERNAL=localhost:19092); a listener left out is advertised at its bound address",
			func(s *settings) *[]broker.Listener { return &b(s).AdvertisedListeners }),
		stringField("inter-broker-listener", "the listener of --listeners other brokers replicate from; needed with more than one listener",
			func(s *settings) *string { return &b(s).InterBrokerListener }),
		stringField("raft", "Raft transport address, host:port",
			func(s *settings) *string { return &b(s).RaftAddr }),
		stringField("gossip", "gossip (memberlist) address, host:port, TCP and UDP",
			func(s *settings) *string { return &b(s).GossipAddr }),
		stringField("advertise-raft", "Raft address given to the other brokers; empty: the --raft address, which must then be routable (not 0.0.0.0)",
			func(s *settings) *string { return &b(s).AdvertisedRaftAddr }),
		stringField("advertise-gossip", "gossip address given to the other brokers; empty: the --gossip address (a name is resolved; 0.0.0.0 advertises the private IP memberlist picks)",
			func(s *settings) *string { return &b(s).AdvertisedGossipAddr }),
		stringField("http", "HTTP address of /metrics, /healthz, /readyz, /v1/cluster and /debug/pprof; empty disables",
			func(s *settings) *string { return &b(s).HTTPAddr }),
		stringField("rack", "rack of this broker; replicas are spread over racks",
			func(s *settings) *string { return &b(s).Rack }),
		listField("join", "gossip addresses of brokers to join; repeat the flag or separate with commas",
			func(s *settings) *[]string { return &b(s).Join }),
		intField("bootstrap-expect", "brokers that must see each other to form the first Raft voter set; 0: a broker without --join bootstraps alone",
			func(s *settings) *int { return &b(s).BootstrapExpect }),
		intField("max-voters", "Raft voters; later brokers join as non-voters",
			func(s *settings) *int { return &b(s).MaxVoters }),
		secretField("cluster-secret", "shared secret of the cluster's brokers, at least 16 bytes: gossip is encrypted with a key derived from it and Raft-port connections must prove they know it; every broker needs the same; empty: no authentication",
			func(s *settings) *string { return &b(s).ClusterSecret }),
		boolField("recover-quorum", "at start, make this broker the only Raft voter from its own log, when a majority of voters is lost for good; wipe the lost voters' data before they rejoin (see the README)",
			func(s *settings) *bool { return &b(s).RecoverQuorum }),
		boolField("auto-create-topics", "create a topic when a client asks for one that does not exist; --auto-create-topics=false turns it off (auto.create.topics.enable)",
			func(s *settings) *bool { return &b(s).AutoCreateTopics }),
		intField("default-partitions", "partitions of a topic created without a count (num.partitions)",
			func(s *settings) *int32 { return &b(s).DefaultPartitions }),
		intField("default-replication-factor", "replicas of a topic created without a factor (default.replication.factor)",
			func(s *settings) *int16 { return &b(s).DefaultReplicationFactor }),
		boolField("auto-leader-rebalance-enable", "while this broker is the controller, hand leadership back to the preferred replicas (in the ISR and live only) every check interval; false keeps leaders where failovers put them (auto.leader.rebalance.enable)",
			func(s *settings) *bool { return &b(s).AutoLeaderRebalance }),
		intField("leader-imbalance-per-broker-percentage", "rebalance a broker's leaders once more than this percentage of the partitions it is the preferred replica of are led elsewhere; 0: any (leader.imbalance.per.broker.percentage)",
			func(s *settings) *int { return &b(s).LeaderImbalancePercentage }),
		unitField("leader-imbalance-check-interval-seconds", "", "how often the controller checks the leader balance, in seconds (leader.imbalance.check.interval.seconds)", time.Second,
			func(s *settings) *time.Duration { return &b(s).LeaderImbalanceCheckInterval }),
		intField("max-request-bytes", "largest Kafka request accepted; larger ones close the connection (socket.request.max.bytes)",
			func(s *settings) *int { return &b(s).MaxRequestBytes }),
		boolField("fast-failure-detection", "second-scale Raft and gossip timeouts, for clusters on one machine (tests, demos)",
			func(s *settings) *bool { return &b(s).FastFailureDetection }),
		intField("max-connections", "client connections open at once; at the limit new ones wait in the listen backlog; 0: no limit (max.connections)",
			func(s *settings) *int { return &b(s).MaxConnections }),
		intField("max-connections-per-ip", "client connections open at once from one address; more are closed at once; 0: no limit (max.connections.per.ip)",
			func(s *settings) *int { return &b(s).MaxConnectionsPerIP }),
		intField("queued-max-request-bytes", "bytes of requests read and not yet answered, over all connections; readers wait for room; 0: no limit (queued.max.request.bytes)",
			func(s *settings) *int64 { return &b(s).QueuedMaxRequestBytes }),
		durationField("send-timeout", "close a connection whose client reads nothing of a response for this long; negative disables",
			func(s *settings) *time.Duration { return &b(s).SendTimeout }),
		durationField("replica-lag-time-max", "a follower that has not caught up with its leader for this long leaves the ISR (replica.lag.time.max.ms)",
			func(s *settings) *time.Duration { return &b(s).ReplicaLagMax }),
		durationField("replica-fetch-wait-max", "how long a follower fetch waits at the leader for new data (replica.fetch.wait.max.ms)",
			func(s *settings) *time.Duration { return &b(s).ReplicaFetchMaxWait }),
		intField("storage-min-free-bytes", "free bytes kept on the data disk: below them produces are refused (retriable) and follower fetches pause, so deletes and trims still work; -1: 5% of the disk, at most 1 GiB; 0: no reserve (storage_min_free_bytes)",
			func(s *settings) *int64 { return &b(s).MinFreeBytes }),
		intField("num-replica-fetchers", "fetchers, each with its own connection, a follower runs per leader broker (num.replica.fetchers)",
			func(s *settings) *int { return &b(s).NumReplicaFetchers }),
		durationField("shutdown-timeout", "how long SIGINT or SIGTERM waits for in-flight requests before closing anyway",
			func(s *settings) *time.Duration { return &b(s).ShutdownTimeout }),

		// Broker-wide defaults of the topic-level log settings; topics override them.
		intField("log-segment-bytes", "roll a segment at this size (log.segment.bytes)",
			func(s *settings) *int64 { return &b(s).Log.SegmentBytes }),
		unitField("log-retention-ms", "log-retention", "delete segments older than this many milliseconds; -1 keeps them forever (log.retention.ms)", time.Millisecond,
			func(s *settings) *time.Duration { return &b(s).Log.RetentionMs }),
		unitField("log-retention-hours", "log-retention", "--log-retention-ms in hours; give one of the two (log.retention.hours)", time.Hour,
			func(s *settings) *time.Duration { return &b(s).Log.RetentionMs }),
		intField("log-retention-bytes", "delete the oldest segments while a partition is larger; -1 no limit (log.retention.bytes)",
			func(s *settings) *int64 { return &b(s).Log.RetentionBytes }),
		unitField("log-retention-check-interval-ms", "", "how often every hosted log is checked against its retention, in milliseconds (log.retention.check.interval.ms)", time.Millisecond,
			func(s *settings) *time.Duration { return &b(s).RetentionCheckInterval }),
		intField("message-max-bytes", "largest record batch accepted from a producer (message.max.bytes)",
			func(s *settings) *int { return &b(s).Log.MaxMessageBytes }),
		intField("log-flush-messages", "fsync after this many records; 0 never (log.flush.interval.messages)",
			func(s *settings) *int64 { return &b(s).Log.FlushMessages }),
		unitField("log-flush-ms", "", "fsync when the oldest unflushed record is this many milliseconds old; 0 never (log.flush.interval.ms)", time.Millisecond,
			func(s *settings) *time.Duration { return &b(s).Log.FlushInterval }),

		// Consumer groups and committed offsets.
		intField("offsets-topic-num-partitions", "partitions of __consumer_offsets when it is created (offsets.topic.num.partitions)",
			func(s *settings) *int32 { return &b(s).OffsetsTopicPartitions }),
		unitField("group-initial-rebalance-delay-ms", "", "how long the first rebalance of an empty group waits for more members, in milliseconds (group.initial.rebalance.delay.ms)", time.Millisecond,
			func(s *settings) *time.Duration { return &b(s).Group.InitialRebalanceDelay }),
		unitField("group-min-session-timeout-ms", "", "shortest session timeout a group member may ask for, in milliseconds (group.min.session.timeout.ms)", time.Millisecond,
			func(s *settings) *time.Duration { return &b(s).Group.MinSessionTimeout }),
		unitField("group-max-session-timeout-ms", "", "longest session timeout a group member may ask for, in milliseconds (group.max.session.timeout.ms)", time.Millisecond,
			func(s *settings) *time.Duration { return &b(s).Group.MaxSessionTimeout }),
		intField("group-max-size", "members a group may have (group.max.size)",
			func(s *settings) *int { return &b(s).Group.MaxGroupSize }),
		unitField("offsets-retention-minutes", "", "delete the committed offsets of a group empty this many minutes (offsets.retention.minutes)", time.Minute,
			func(s *settings) *time.Duration { return &b(s).Group.OffsetsRetention }),
		unitField("offsets-retention-check-interval-ms", "", "how often expired offsets are looked for, in milliseconds (offsets.retention.check.interval.ms)", time.Millisecond,
			func(s *settings) *time.Duration { return &b(s).Group.OffsetsRetentionCheckInterval }),
		boolField("group-lag-metrics", "export barge_consumer_group_lag{group,topic} on /metrics: the lag of the groups this broker coordinates, over the partitions it hosts (off by default: a series per group and topic)",
			func(s *settings) *bool { return &b(s).GroupLagMetrics }),
	}
}

// server is what serve needs of a *broker.Broker; tests substitute a fake.
type server interface {
	Start() error
	Shutdown(ctx context.Context) error
	Done() <-chan struct{}
	Err() error
	KafkaAddr() string
	HTTPAddr() string
}

// serveHooks is the outside world serve drives: the broker and the process's
// signals. main uses defaultServeHooks; tests replace both.
type serveHooks struct {
	newServer func(broker.Config) (server, error)
	// signals subscribes to SIGINT and SIGTERM; stop unsubscribes.
	signals func() (ch <-chan os.Signal, stop func())
}

func defaultServeHooks() serveHooks {
	return serveHooks{
		newServer: func(cfg broker.Config) (server, error) {
			b, err := broker.New(cfg)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return b, nil
		},
		signals: func() (<-chan os.Signal, func()) {
			// Room for two: the second signal must not be dropped while the
			// first is being handled.
			ch := make(chan os.Signal, 2)
			signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
			return ch, func() { signal.Stop(ch) }
		},
	}
}

const serveLong = `Run a broker in the foreground.

SIGINT or SIGTERM shuts it down gracefully: in-flight requests finish and the
logs close cleanly, within --shutdown-timeout. A second signal exits at once.

Every flag can also be set by an environment variable, BARGE_ and the flag's
name in upper case with '-' as '_' (BARGE_ID=1, BARGE_JOIN=b2:9094,b3:9094),
and by a key of the same name in a YAML file given with --config or
BARGE_CONFIG:

  id: 1
  kafka: 0.0.0.0:9092
  advertise: kafka1.example.com:9092
  join: [kafka2.example.com:9094, kafka3.example.com:9094]
  log-retention-hours: 24

Flags win over the environment, which wins over the file; a list from a
higher source replaces a lower one's. Unknown keys and malformed values are
usage errors (exit code 2).`

const serveExample = `  # A single broker with data in ./barge-data:
  barge serve

  # The first of three brokers:
  barge serve --id 1 --data /var/lib/barge --kafka 0.0.0.0:9092 \
    --advertise kafka1:9092 --raft kafka1:9093 --gossip kafka1:9094 \
    --join kafka2:9094,kafka3:9094 --bootstrap-expect 3

  # In a container: brokers replicate over INTERNAL, the host connects to
  # EXTERNAL (published as localhost:19092):
  barge serve --id 1 --listeners INTERNAL=0.0.0.0:9092,EXTERNAL=0.0.0.0:19092 \
    --advertised-listeners INTERNAL=barge1:9092,EXTERNAL=localhost:19092 \
    --inter-broker-listener INTERNAL --raft barge1:9093 --gossip 0.0.0.0:9094 \
    --join barge2:9094,barge3:9094 --bootstrap-expect 3

  # Settings from a file, one overridden by the environment:
  BARGE_RACK=eu-west-1a barge serve --config /etc/barge/barge.yaml`

// newServeCommand builds `barge serve`.
func newServeCommand(deps *cli.Deps, hooks serveHooks) *cobra.Command {
	fields := serveFields()
	var configPath string
	cmd := &cobra.Command{
		Use:     "serve",
		Short:   "Run a broker",
		Long:    serveLong,
		Example: serveExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("config") {
				configPath, _ = deps.LookupEnv(configEnv)
			}
			return serve(cmd, deps, hooks, fields, configPath)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&configPath, "config", "", "YAML file of settings, keyed by flag name (env "+configEnv+")")
	addFlags(fs, fields, defaultSettings())
	return cmd
}

// serve resolves the settings, runs the broker and waits for a signal or a
// fatal error. It returns when the broker has stopped.
func serve(cmd *cobra.Command, deps *cli.Deps, hooks serveHooks, fields []field, configPath string) error {
	all := append(loggingFields(), fields...)
	cfg, err := load(all, defaultSettings(), cmd.Flags(), deps.LookupEnv, configPath)
	if err != nil {
		return err
	}
	// The file may set log-format and log-level, which the root could not
	// see; build the logger again from the resolved settings.
	if err := installLogger(deps, cfg.settings); err != nil {
		return err
	}
	logger := deps.Logger.With("component", "serve")
	if deps.Environ != nil {
		for _, name := range unknownEnv(deps.Environ(), all) {
			logger.Warn("ignoring unknown environment variable", "name", name)
		}
	}
	for i := range all {
		if src, ok := cfg.sources[all[i].name]; ok {
			logger.Debug("setting", "name", all[i].name, "value", all[i].show(&cfg.settings), "source", src.String())
		}
	}
	if _, kafka := cfg.sources["kafka"]; kafka && len(cfg.Broker.Listeners) > 0 {
		return cli.Usagef("--kafka and --listeners both set the Kafka listeners; give --listeners only (--kafka is its one-listener shorthand)")
	}
	if err := cfg.Broker.Validate(); err != nil {
		return cli.Usage(err)
	}
	cfg.Broker.Logger = deps.Logger

	srv, err := hooks.newServer(cfg.Broker)
	if err != nil {
		return err
	}
	// Subscribe before Start so that a signal during start-up is a graceful
	// shutdown after it, not the default action of killing the process.
	signals, stop := hooks.signals()
	defer stop()
	if err := srv.Start(); err != nil {
		return err
	}
	logger.Info("serving", "broker", cfg.Broker.ID, "kafka", srv.KafkaAddr(), "http", srv.HTTPAddr(),
		"raft", cfg.Broker.RaftAddr, "gossip", cfg.Broker.GossipAddr, "data", cfg.Broker.DataDir, "config", configPath)

	var sig os.Signal
	select {
	case <-srv.Done():
		if err := srv.Err(); err != nil {
			return fmt.Errorf("broker stopped: %w", err)
		}
		return nil
	case sig = <-signals:
	}

	timeout := cfg.Broker.ShutdownTimeout
	logger.Info("shutting down", "signal", sig.String(), "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(ctx) }()
	select {
	case err := <-stopped:
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		logger.Info("shut down")
		return nil
	case sig := <-signals:
		// The Shutdown goroutine is abandoned: main exits right after.
		return errors.New("shutdown interrupted by a second " + sig.String() + "; logs may need recovery at the next start")
	}
}

package cluster

import (
	"encoding/json"
	"fmt"
)

// CommandVersion is the version this Barge writes. The FSM applies commands
// of versions 1..CommandVersion and rejects newer ones with
// ErrUnsupportedVersion, identically on every broker, so a rolling upgrade
// must finish before a newer controller writes newer commands.
//
// Version 2 adds RegisterBroker.UncleanShutdown and the partitions' ELR;
// a version 1 command never carries them, so old logs replay as before.
// Version 3 adds reassignments in flight (AlterReassignment, the
// partitions' adding and removing replicas), decommissioning
// (DecommissionBroker, UnregisterBroker) and the cluster's dynamic broker
// configs (AlterBrokerConfigs); see reassign.go and decommission.go.
// Version 4 adds storage holds (SetStorageHeld, the brokers' StorageHeld);
// see storagehold.go.
const CommandVersion uint16 = 4

// CommandType names a command in the Raft log. The names are part of the
// on-disk format and never change.
type CommandType string

// The command types.
const (
	TypeInitCluster        CommandType = "init_cluster"
	TypeRegisterBroker     CommandType = "register_broker"
	TypeFenceBroker        CommandType = "fence_broker"
	TypeCreateTopic        CommandType = "create_topic"
	TypeDeleteTopic        CommandType = "delete_topic"
	TypeCreatePartitions   CommandType = "create_partitions"
	TypeAlterConfigs       CommandType = "alter_configs"
	TypeAlterPartition     CommandType = "alter_partition"
	TypeElectLeader        CommandType = "elect_leader"
	TypeReassignPartition  CommandType = "reassign_partition"
	TypeAlterReassignment  CommandType = "alter_reassignment"
	TypeDecommissionBroker CommandType = "decommission_broker"
	TypeUnregisterBroker   CommandType = "unregister_broker"
	TypeAlterBrokerConfigs CommandType = "alter_broker_configs"
	TypeSetStorageHeld     CommandType = "set_storage_held"
	// TypeReadIndex is never written to the log: the controller answers it
	// with the Raft index a reader must have applied (see Node.Sync).
	TypeReadIndex CommandType = "read_index"
	// TypeBrokerHeartbeat is never written to the log either: the
	// controller records it in its heartbeat table (see liveness.go).
	TypeBrokerHeartbeat CommandType = "broker_heartbeat"
	// TypeAwaitReplay is never written to the log: the controller answers
	// it once every live broker has applied the index it names.
	TypeAwaitReplay CommandType = "await_replay"
)

// Payload is the body of a command: one of the command structs below.
type Payload interface {
	Type() CommandType
}

// Command is one entry of the metadata log: a version and a payload. Build
// it with NewCommand; Node.Submit sends it to the controller.
type Command struct {
	Version uint16
	Payload Payload
}

// NewCommand wraps a payload in a command of the current version.
func NewCommand(p Payload) Command { return Command{Version: CommandVersion, Payload: p} }

// Type returns the payload's type, or "" without a payload.
func (c Command) Type() CommandType {
	if c.Payload == nil {
		return ""
	}
	return c.Payload.Type()
}

// InitCluster sets the cluster id once. The controller writes it first.
type InitCluster struct {
	ClusterID string `json:"cluster_id"`
}

// RegisterBroker registers a broker, or re-registers it with a new broker
// epoch: it updates its addresses and unfences it. Offline partitions whose
// ISR (or, with no live ISR member, ELR) holds the broker elect it leader
// (and, where the topic allows unclean election, offline partitions it is a
// replica of). The controller writes it when gossip shows a broker alive
// that the image lacks or has fenced.
//
// A new process (another Incarnation) that reports UncleanShutdown first
// leaves every ISR and ELR (KIP-966), handing leadership to the next
// eligible replica, so it leads nothing until it has caught up and its
// leader added it back through AlterPartition. The one exception is a
// partition it is the only ISR or ELR member of: no replica can be known to
// hold more of the committed records, so it stays and may lead again.
type RegisterBroker struct {
	ID         int32  `json:"id"`
	KafkaAddr  string `json:"kafka_addr"`
	RaftAddr   string `json:"raft_addr"`
	GossipAddr string `json:"gossip_addr,omitempty"`
	HTTPAddr   string `json:"http_addr,omitempty"`
	Rack       string `json:"rack,omitempty"`
	// Incarnation is random per broker process start.
	Incarnation string `json:"incarnation,omitempty"`
	// UncleanShutdown says the process before this one did not shut down
	// cleanly (version 2+). It is one flag for the whole broker rather
	// than a set of partitions: registration comes before the broker opens
	// its logs (the image says which it hosts), and a crash or power loss
	// costs every log of the broker its un-fsynced tail alike, so a
	// per-log answer would differ only for logs fsynced to their end,
	// which the default flush settings never are. The broker sets it
	// unless its clean-shutdown marker, written after every log closed
	// cleanly, was there at start.
	UncleanShutdown bool `json:"unclean_shutdown,omitempty"`
	// DirectoryID is the id of the broker's data directory. When it
	// differs from the registered one, the directory was wiped: the broker
	// is dropped from every ISR first, as a new, empty replica.
	DirectoryID string `json:"directory_id,omitempty"`
	// Listeners are the broker's advertised named listeners (see
	// Broker.Listeners); KafkaAddr is then the inter-broker one's address.
	// Brokers that do not know the field drop it and answer KafkaAddr on
	// every listener.
	Listeners string `json:"listeners,omitempty"`
}

// FenceBroker fences a broker that gossip declared dead or that left: it is
// removed from every ISR (but never empties one; into the ELR when the ISR
// falls below min.insync.replicas), and each partition it led elects the
// first live ISR replica (in replica order), else the first live ELR
// replica, with a bumped leader epoch, or goes offline (leader -1) when none
// is live and the topic does not allow unclean election.
type FenceBroker struct {
	ID int32 `json:"id"`
}

// CreateTopic creates a topic. Callers set Name, NumPartitions and
// ReplicationFactor (-1 for the defaults) and Configs, or an explicit
// Assignment (one replica list per partition). The controller fills ID and
// Assignment before the command enters the log; the FSM refuses a
// CreateTopic without them.
type CreateTopic struct {
	Name              string            `json:"name"`
	ID                TopicID           `json:"id"`
	NumPartitions     int32             `json:"num_partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Assignment        [][]int32         `json:"assignment,omitempty"`
	Configs           map[string]string `json:"configs,omitempty"`
}

// DeleteTopic removes a topic and all its partitions.
type DeleteTopic struct {
	Name string `json:"name"`
}

// CreatePartitions grows a topic to Count partitions. Assignment, if given,
// holds the replica lists of the new partitions only; the controller fills
// it otherwise.
type CreatePartitions struct {
	Topic      string    `json:"topic"`
	Count      int32     `json:"count"`
	Assignment [][]int32 `json:"assignment,omitempty"`
}

// AlterConfigs changes topic configs: incremental (Set, then Delete), or,
// with Replace, the whole config becomes Set (Kafka's legacy AlterConfigs).
type AlterConfigs struct {
	Topic   string            `json:"topic"`
	Set     map[string]string `json:"set,omitempty"`
	Delete  []string          `json:"delete,omitempty"`
	Replace bool              `json:"replace,omitempty"`
}

// AlterPartition is a partition leader's ISR change, as Kafka's
// AlterPartition request. It is refused when LeaderEpoch or PartitionEpoch is
// not the current one, when Leader does not lead, when BrokerEpoch (if not
// zero) is not the leader's, or when ISR is not a subset of the replicas
// holding the leader or names a fenced broker.
type AlterPartition struct {
	Topic          string  `json:"topic"`
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	BrokerEpoch    int64   `json:"broker_epoch,omitempty"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	PartitionEpoch int32   `json:"partition_epoch"`
	ISR            []int32 `json:"isr"`
}

// ElectionType selects how ElectLeader picks a leader.
type ElectionType int8

const (
	// ElectPreferred makes the first replica the leader if it is live and
	// in the ISR (Kafka's PREFERRED, 0).
	ElectPreferred ElectionType = 0
	// ElectUnclean picks as ElectClean does, or failing that the first
	// live replica, whose ISR then holds it alone (Kafka's UNCLEAN, 1).
	ElectUnclean ElectionType = 1
	// ElectClean picks the first live ISR replica, else the first live ELR
	// replica (KIP-966); the controller uses it for offline partitions.
	ElectClean ElectionType = 2
)

// ElectLeader elects a leader for one partition. It is refused with
// ErrElectionNotNeeded when the partition already has the leader the
// election would pick (or, for clean and unclean elections, has a live
// leader at all).
type ElectLeader struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Election  ElectionType `json:"election"`
}

// ReassignPartition replaces a partition's replica list at once (version 1;
// AlterReassignment is the move that copies the data first). The new ISR is the
// old ISR restricted to the new replicas and must not be empty, so no
// committed data is lost; added replicas start outside the ISR and join it
// through AlterPartition once caught up. The leader stays if it is still a
// replica, otherwise the first live replica of the new ISR leads. It is
// refused while an AlterReassignment of the partition is in flight.
type ReassignPartition struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
}

func (InitCluster) Type() CommandType       { return TypeInitCluster }
func (RegisterBroker) Type() CommandType    { return TypeRegisterBroker }
func (FenceBroker) Type() CommandType       { return TypeFenceBroker }
func (CreateTopic) Type() CommandType       { return TypeCreateTopic }
func (DeleteTopic) Type() CommandType       { return TypeDeleteTopic }
func (CreatePartitions) Type() CommandType  { return TypeCreatePartitions }
func (AlterConfigs) Type() CommandType      { return TypeAlterConfigs }
func (AlterPartition) Type() CommandType    { return TypeAlterPartition }
func (ElectLeader) Type() CommandType       { return TypeElectLeader }
func (ReassignPartition) Type() CommandType { return TypeReassignPartition }
func (ReadIndex) Type() CommandType         { return TypeReadIndex }

// ReadIndex asks the controller for the Raft index up to which it has
// committed changes, after confirming it is still the leader (Raft's
// ReadIndex). It changes nothing and is never written to the log.
type ReadIndex struct{}

// BrokerHeartbeat tells the controller that a broker process is alive and
// can reach it, and how it registers (Kafka's BrokerHeartbeat with the
// registration's fields). ShuttingDown (Kafka's WantShutDown) says the
// process is in controlled shutdown: the controller must not unfence it
// again. Every broker sends one every Timeouts.BrokerHeartbeat; it changes
// nothing in the image and is never written to the log.
type BrokerHeartbeat struct {
	ID              int32  `json:"id"`
	KafkaAddr       string `json:"kafka_addr"`
	RaftAddr        string `json:"raft_addr"`
	GossipAddr      string `json:"gossip_addr,omitempty"`
	HTTPAddr        string `json:"http_addr,omitempty"`
	Rack            string `json:"rack,omitempty"`
	Incarnation     string `json:"incarnation"`
	UncleanShutdown bool   `json:"unclean_shutdown,omitempty"`
	ShuttingDown    bool   `json:"shutting_down,omitempty"`
	// StorageHeld says the broker's data disk is below its free-space
	// reserve: it refuses produces and does not fetch as a follower (see
	// storagehold.go).
	StorageHeld bool `json:"storage_held,omitempty"`
	// Listeners are the broker's advertised named listeners (see
	// RegisterBroker.Listeners).
	Listeners string `json:"listeners,omitempty"`
	// AppliedIndex is the last metadata index the broker has applied
	// (Kafka's CurrentMetadataOffset).
	AppliedIndex uint64 `json:"applied_index,omitempty"`
	// DirectoryID and ClusterID are the broker's data directory id and
	// cluster id (meta.properties), as in its gossip metadata.
	DirectoryID string `json:"directory_id,omitempty"`
	ClusterID   string `json:"cluster_id,omitempty"`
}

// AwaitReplay asks the controller to answer once every registered,
// unfenced broker that heartbeats has reported applying Index: a broker in
// controlled shutdown waits for it after its fence, so that whichever
// broker a client asks next already names the new leaders.
type AwaitReplay struct {
	Index uint64 `json:"index"`
}

func (AwaitReplay) Type() CommandType { return TypeAwaitReplay }

func (BrokerHeartbeat) Type() CommandType { return TypeBrokerHeartbeat }

func (h BrokerHeartbeat) member() Member {
	return Member{ID: h.ID, KafkaAddr: h.KafkaAddr, RaftAddr: h.RaftAddr, GossipAddr: h.GossipAddr,
		HTTPAddr: h.HTTPAddr, Rack: h.Rack, Incarnation: h.Incarnation, UncleanShutdown: h.UncleanShutdown, Listeners: h.Listeners,
		DirectoryID: h.DirectoryID, ClusterID: h.ClusterID}
}

// newPayload returns a pointer to a zero payload of type t.
func newPayload(t CommandType) (Payload, bool) {
	switch t {
	case TypeInitCluster:
		return &InitCluster{}, true
	case TypeRegisterBroker:
		return &RegisterBroker{}, true
	case TypeFenceBroker:
		return &FenceBroker{}, true
	case TypeCreateTopic:
		return &CreateTopic{}, true
	case TypeDeleteTopic:
		return &DeleteTopic{}, true
	case TypeCreatePartitions:
		return &CreatePartitions{}, true
	case TypeAlterConfigs:
		return &AlterConfigs{}, true
	case TypeAlterPartition:
		return &AlterPartition{}, true
	case TypeElectLeader:
		return &ElectLeader{}, true
	case TypeReassignPartition:
		return &ReassignPartition{}, true
	case TypeAlterReassignment:
		return &AlterReassignment{}, true
	case TypeDecommissionBroker:
		return &DecommissionBroker{}, true
	case TypeUnregisterBroker:
		return &UnregisterBroker{}, true
	case TypeAlterBrokerConfigs:
		return &AlterBrokerConfigs{}, true
	case TypeSetStorageHeld:
		return &SetStorageHeld{}, true
	case TypeReadIndex:
		return &ReadIndex{}, true
	case TypeBrokerHeartbeat:
		return &BrokerHeartbeat{}, true
	case TypeAwaitReplay:
		return &AwaitReplay{}, true
	}
	return nil, false
}

// deref turns a *T payload into T so the FSM's type switch sees values.
func deref(p Payload) Payload {
	switch v := p.(type) {
	case *InitCluster:
		return *v
	case *RegisterBroker:
		return *v
	case *FenceBroker:
		return *v
	case *CreateTopic:
		return *v
	case *DeleteTopic:
		return *v
	case *CreatePartitions:
		return *v
	case *AlterConfigs:
		return *v
	case *AlterPartition:
		return *v
	case *ElectLeader:
		return *v
	case *ReassignPartition:
		return *v
	case *AlterReassignment:
		return *v
	case *DecommissionBroker:
		return *v
	case *UnregisterBroker:
		return *v
	case *AlterBrokerConfigs:
		return *v
	case *SetStorageHeld:
		return *v
	case *ReadIndex:
		return *v
	case *BrokerHeartbeat:
		return *v
	case *AwaitReplay:
		return *v
	}
	return p
}

// commandEnvelope is the wire and log form of a Command.
type commandEnvelope struct {
	Version uint16          `json:"v"`
	Type    CommandType     `json:"type"`
	Body    json.RawMessage `json:"body"`
}

// MarshalJSON encodes the command as {"v":..,"type":..,"body":{..}}.
func (c Command) MarshalJSON() ([]byte, error) {
	if c.Payload == nil {
		return nil, errorf(ErrInvalidCommand, "command without payload")
	}
	body, err := json.Marshal(deref(c.Payload))
	if err != nil {
		return nil, err
	}
	return json.Marshal(commandEnvelope{Version: c.Version, Type: c.Payload.Type(), Body: body})
}

// UnmarshalJSON decodes what MarshalJSON wrote. An unknown type or a
// version above CommandVersion is an error wrapping ErrInvalidCommand or
// ErrUnsupportedVersion.
func (c *Command) UnmarshalJSON(b []byte) error {
	var env commandEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return errorf(ErrInvalidCommand, "decode: %v", err)
	}
	if env.Version == 0 || env.Version > CommandVersion {
		return errorf(ErrUnsupportedVersion, "%s version %d (this broker knows 1..%d)",
			env.Type, env.Version, CommandVersion)
	}
	p, ok := newPayload(env.Type)
	if !ok {
		return errorf(ErrInvalidCommand, "unknown command type %q", env.Type)
	}
	if err := json.Unmarshal(env.Body, p); err != nil {
		return errorf(ErrInvalidCommand, "decode %s: %v", env.Type, err)
	}
	c.Version, c.Payload = env.Version, deref(p)
	return nil
}

// encodeCommand returns the bytes written to the Raft log.
func encodeCommand(c Command) ([]byte, error) { return json.Marshal(c) }

// decodeCommand parses a Raft log entry.
func decodeCommand(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		if sentinelOf(err) == nil {
			err = errorf(ErrInvalidCommand, "decode: %v", err)
		}
		return Command{}, err
	}
	return c, nil
}

// String describes a command for logs.
func (c Command) String() string {
	return fmt.Sprintf("%s(v%d) %+v", c.Type(), c.Version, deref(c.Payload))
}

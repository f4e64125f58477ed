// Package cluster keeps Barge's cluster metadata: a Raft log (hashicorp/raft
// over raft-boltdb, snapshots under <data>/raft) whose FSM holds the metadata
// image, the controller that runs on the Raft leader, and gossip membership
// (hashicorp/memberlist) that finds peers and detects failures.
//
// # Image
//
// The FSM applies versioned commands (commands.go) to an immutable Image
// (image.go) and publishes the new one with an atomic pointer swap, so
// request handlers read metadata with one atomic load and never wait on
// Raft. apply.go is the deterministic core: the same log gives every broker
// the same image, and every command is validated there (a refused command
// changes nothing and returns an error that ErrorCode maps to a Kafka code).
// Subscribers follow changes in log order through a bounded buffer; one that
// falls behind gets a single resync with the latest image instead of
// stalling the FSM (subscribe.go).
//
// # Controller
//
// The Raft leader is the controller. It prepares admin commands (topic ids,
// rack-aware replica assignment with balanced leaders; plan.go and
// assign.go) and reconciles the image and the Raft configuration with the
// live gossip members (controller.go): it registers and unfences live
// brokers, fences dead or departed ones (fencing moves leadership to the
// first live ISR member, else the first live eligible leader replica of
// KIP-966, with a bumped leader epoch, or takes the partition offline),
// takes brokers that restarted uncleanly out of ISRs and ELRs (apply.go,
// dropUnclean), adds brokers as voters up to MaxVoters and as non-voters after
// that, and replaces a voter that stayed dead with a live non-voter. The
// decisions are pure functions of (image, members, Raft configuration,
// time); a small loop per node drives them while the node leads.
//
// # Forwarding
//
// Any broker may Submit a command. Off the controller it is forwarded over a
// small protocol of its own that shares the Raft TCP port: every connection
// to that port starts with one byte, 'R' for the Raft transport or 'F' for
// forwarding ('r' and 'f' with a cluster secret; mux.go), so no extra listener or address is needed and the
// controller's forwarding address is simply the Raft leader's address. A
// forwarding connection carries one request and one response, each a 4-byte
// length and a JSON body (forward.go); errors travel as the text of their
// sentinel, so errors.Is and ErrorCode work on the forwarding broker too.
// The broker can replace the transport through Config.Forwarder (e.g. with
// Kafka's Envelope forwarding) without touching the rest. Submit returns
// once the command is committed and applied on the submitting broker.
//
// # Membership and bootstrap
//
// Each broker gossips its id and its Kafka, Raft and HTTP addresses and
// rack as memberlist node metadata, under the node name "broker-<id>"; a
// broker whose id a live member at another address holds fails to start
// with ErrDuplicateBrokerID. A lone broker (no Join) bootstraps a one-voter
// cluster; with BootstrapExpect N the broker with the lowest id among the
// first N that see each other bootstraps all N as voters, once the view has
// been stable for Timeouts.BootstrapSettle and none of them belongs to a
// formed cluster yet. Brokers that come later are added by the controller.
//
// # Identity and authentication
//
// <data>/meta.properties ties a data directory to a broker id, a random
// directory id and a cluster id (identity.go), checked at every start. The
// cluster id is gossiped too, and merges with brokers of another cluster are
// refused, so two clusters never become one. A known broker with a new
// directory id lost its data and Raft state; the controller takes it out of
// every ISR and out of the Raft configuration, to add it back as a new
// server (directory.go). With Config.ClusterSecret gossip is encrypted
// (memberlist's keyring) and every Raft-port connection opens with the
// authenticated protocol byte ('r' or 'f') and a mutual HMAC
// challenge-response (auth.go) before the mux hands it on.
package cluster

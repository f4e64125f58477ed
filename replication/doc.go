// Package replication owns the partition replicas hosted on one broker: their
// roles (leader, follower, stopped) as the metadata log dictates them, the
// follower fetchers that pull the leaders' batches and append them verbatim,
// the leader's view of its followers (log end offsets, last caught-up
// times), the high watermark, ISR shrink and expand proposals, and the
// acks=all produces parked until the high watermark passes them.
//
// The broker package calls it: it creates a Replica per hosted partition,
// feeds it metadata changes in log order through Manager.Update, routes
// produce appends through Replica.AppendAsLeader and follower fetches
// through Replica.HandleFollowerFetch. storage stays network-free; the
// package talks to other brokers only through the Kafka protocol (Fetch,
// sent by a fetcher per source broker) and to the controller through an
// injected AlterPartition function.
//
// Kafka's protocol is described, with sources, in ../shared/REPLICATION.md;
// section numbers in comments (§2.2) refer to it.
package replication

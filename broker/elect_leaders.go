package broker

import (
	"context"
	"errors"
	"sync"

	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ElectLeaders v0-2 (KIP-183, KIP-460): preferred and unclean leader
// elections, as kafka-leader-election and kadm ask for them. Any broker
// takes the request; each partition's election is a cluster.ElectLeader
// command that Node.Submit forwards to the controller, which refuses it
// with the Kafka code when it cannot or need not be done
// (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
// ELIGIBLE_LEADERS_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION). A null topic
// list means every partition of the cluster; as in Kafka, the answer then
// leaves out the partitions that needed no election.
func init() { register(kmsg.ElectLeaders, 0, 2, replying(handleElectLeaders)) }

// electParallelism bounds the elections in flight for one request: each
// waits for a Raft commit, and a request for every partition should not
// take as many round trips in a row.
const electParallelism = 8

// electTarget is one partition of an ElectLeaders request.
type electTarget struct {
	topic     string
	partition int32
}

func handleElectLeaders(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	var election cluster.ElectionType
	switch r.ElectionType { // always 0 (preferred) in v0
	case 0:
		election = cluster.ElectPreferred
	case 1:
		election = cluster.ElectUnclean
	default:
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	all := r.Topics == nil
	targets := electTargets(b.node.Image(), r.Topics, election)
	errs := make([]error, len(targets))
	var (
		mu      sync.Mutex
		applied uint64
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, electParallelism)
	for i, tg := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := b.node.Submit(ctx, cluster.NewCommand(cluster.ElectLeader{Topic: tg.topic, Partition: tg.partition, Election: election}))
			errs[i] = err
			if err == nil {
				mu.Lock()
				applied = max(applied, res.Index)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Answer once this broker's metadata names the new leaders, so the
	// client's next Metadata request here already sees them.
	if applied > 0 {
		b.replicas.waitApplied(ctx, applied)
	}
	byTopic := map[string]int{}
	elected := 0
	for i, tg := range targets {
		err := errs[i]
		if all && errors.Is(err, cluster.ErrElectionNotNeeded) {
			continue
		}
		ti, ok := byTopic[tg.topic]
		if !ok {
			ti = len(resp.Topics)
			byTopic[tg.topic] = ti
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = tg.topic
			resp.Topics = append(resp.Topics, st)
		}
		sp := kmsg.NewElectLeadersResponseTopicPartition()
		sp.Partition = tg.partition
		if err != nil {
			sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
		} else {
			elected++
		}
		resp.Topics[ti].Partitions = append(resp.Topics[ti].Partitions, sp)
	}
	b.logger.Info("leader election", "type", r.ElectionType, "all_partitions", all, "partitions", len(targets), "elected", elected)
	return resp
}

// electTargets lists the partitions a request names, in request order
// without repeats; with a null topic list, every partition of img that the
// election could change (the rest need none).
func electTargets(img *cluster.Image, topics []kmsg.ElectLeadersRequestTopic, election cluster.ElectionType) []electTarget {
	var out []electTarget
	if topics == nil {
		for _, t := range img.Topics() {
			for _, p := range t.Partitions {
				needed := p.Leader == cluster.NoLeader
				if election == cluster.ElectPreferred {
					needed = len(p.Replicas) > 0 && p.Leader != p.Replicas[0]
				}
				if needed {
					out = append(out, electTarget{topic: t.Name, partition: p.Index})
				}
			}
		}
		return out
	}
	seen := map[electTarget]bool{}
	for _, rt := range topics {
		for _, p := range rt.Partitions {
			tg := electTarget{topic: rt.Topic, partition: p}
			if seen[tg] {
				continue
			}
			seen[tg] = true
			// Unknown topics and partitions too go to the controller: its
			// image is the newest, and it answers UNKNOWN_TOPIC_OR_PARTITION.
			out = append(out, tg)
		}
	}
	return out
}

package workload

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/barge-broker/barge/jepsen/history"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Group is the consumer group of the subscribe-mode consumers.
const Group = "jepsen-group"

// ConsumeGroup runs one subscribe-mode member of Group until ctx ends:
// polls, then commits what it polled (manual commits, no auto-commit),
// recording assignments, revocations, polls and commits. Every restart
// it closes its client and joins again with a fresh one (a client crash
// in Jepsen's terms), so the group rebalances and members resume from
// the committed offsets while faults happen.
func ConsumeGroup(ctx context.Context, cfg Config, process int, restart time.Duration) error {
	for ctx.Err() == nil {
		if err := groupSession(ctx, cfg, process, restart); err != nil {
			return err
		}
	}
	return nil
}

func groupSession(ctx context.Context, cfg Config, process int, life time.Duration) error {
	member := func(f string) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			reads := map[int32][]history.Record{}
			for _, p := range m[cfg.Topic] {
				reads[p] = nil
			}
			cfg.Rec.Add(history.Op{Process: process, Type: history.Invoke, F: f})
			cfg.Rec.Add(history.Op{Process: process, Type: history.OK, F: f, Reads: reads})
		}
	}
	cl, err := kgo.NewClient(append(clientOpts(cfg),
		kgo.ConsumerGroup(Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Rebalances happen only between a poll and its commit's end, so
		// each poll belongs to one assignment.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(member(history.FAssign)),
		kgo.OnPartitionsRevoked(member(history.FRevoke)),
		kgo.OnPartitionsLost(member(history.FRevoke)),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("workload: group member %d: %w", process, err)
	}
	defer cl.Close()
	end := time.Now().Add(life)
	for ctx.Err() == nil && time.Now().Before(end) {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		cfg.Rec.Add(history.Op{Process: process, Type: history.Invoke, F: history.FPoll})
		fs := cl.PollFetches(pctx)
		cancel()
		reads, errs := collect(fs)
		op := history.Op{Process: process, Type: history.OK, F: history.FPoll, Reads: reads}
		if len(errs) > 0 {
			op.Type, op.Error = history.Info, strings.Join(errs, "; ")
		}
		cfg.Rec.Add(op)
		if len(reads) > 0 {
			commits := map[int32]int64{}
			var recs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) {
				recs = append(recs, r)
				commits[r.Partition] = r.Offset + 1
			})
			cfg.Rec.Add(history.Op{Process: process, Type: history.Invoke, F: history.FCommit, Commits: commits})
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := cl.CommitRecords(cctx, recs...)
			cancel()
			c := history.Op{Process: process, Type: history.OK, F: history.FCommit, Commits: commits}
			if err != nil {
				c.Type, c.Error = history.Info, err.Error()
			}
			cfg.Rec.Add(c)
		}
		cl.AllowRebalance()
	}
	return nil
}

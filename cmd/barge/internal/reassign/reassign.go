// Package reassign is what `barge partition move|status|cancel`, `barge
// cluster balance` and `barge broker decommission` share: moves of
// partitions as Kafka's AlterPartitionReassignments and
// ListPartitionReassignments carry them (franz-go's kadm), the replication
// throttle as the cluster's dynamic broker configs, waiting for moves to
// finish, and the balance planner.
package reassign

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Move is one partition's move: its replicas now and the ones asked for.
type Move struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"` // now
	Target    []int32 `json:"target"`   // asked for
	Error     string  `json:"error"`
}

// Execute starts the moves; each refused one gets its Error. It returns the
// number refused.
func Execute(ctx context.Context, adm *kadm.Client, moves []Move) (int, error) {
	var req kadm.AlterPartitionAssignmentsReq
	for _, m := range moves {
		if m.Error == "" {
			req.Assign(m.Topic, m.Partition, m.Target)
		}
	}
	return apply(ctx, adm, req, moves)
}

// Cancel cancels the moves in flight of the partitions named.
func Cancel(ctx context.Context, adm *kadm.Client, moves []Move) (int, error) {
	var req kadm.AlterPartitionAssignmentsReq
	for _, m := range moves {
		req.CancelAssign(m.Topic, m.Partition)
	}
	return apply(ctx, adm, req, moves)
}

func apply(ctx context.Context, adm *kadm.Client, req kadm.AlterPartitionAssignmentsReq, moves []Move) (int, error) {
	failed := 0
	for _, m := range moves {
		if m.Error != "" {
			failed++
		}
	}
	if len(req) == 0 {
		return failed, nil
	}
	resp, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return failed, fmt.Errorf("alter partition reassignments: %w", err)
	}
	for i := range moves {
		m := &moves[i]
		if m.Error != "" {
			continue
		}
		r, ok := resp[m.Topic][m.Partition]
		switch {
		case !ok:
			m.Error = "no answer for this partition"
		case r.Err != nil:
			m.Error = ErrorText(r.Err, r.ErrMessage)
		}
		if m.Error != "" {
			failed++
		}
	}
	return failed, nil
}

// ErrorText is an error of a move with the broker's message.
func ErrorText(err error, msg string) string {
	if msg != "" {
		return fmt.Sprintf("%v: %s", err, msg)
	}
	return err.Error()
}

// InFlight lists the moves in flight of the given topics (all topics when
// none is given), from ListPartitionReassignments.
func InFlight(ctx context.Context, adm *kadm.Client, topics ...string) (kadm.ListPartitionReassignmentsResponses, error) {
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	set := kadm.TopicsSet{}
	for _, t := range md.Topics {
		if t.Err != nil {
			if errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
				return nil, fmt.Errorf("topic %q does not exist (see 'barge topic list')", t.Topic)
			}
			return nil, fmt.Errorf("topic %q: %w", t.Topic, t.Err)
		}
		for p := range t.Partitions {
			set.Add(t.Topic, p)
		}
	}
	out, err := adm.ListPartitionReassignments(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("list partition reassignments: %w", err)
	}
	return out, nil
}

// Wait polls until none of the moves is in flight any more, or ctx ends.
// progress, when set, is called after each poll with the number left.
func Wait(ctx context.Context, adm *kadm.Client, moves []Move, poll time.Duration, progress func(left int)) error {
	topics := map[string]bool{}
	for _, m := range moves {
		if m.Error == "" {
			topics[m.Topic] = true
		}
	}
	if len(topics) == 0 {
		return nil
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	slices.Sort(names)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		inFlight, err := InFlight(ctx, adm, names...)
		if err != nil {
			return err
		}
		left := 0
		for _, m := range moves {
			if _, ok := inFlight[m.Topic][m.Partition]; ok && m.Error == "" {
				left++
			}
		}
		if progress != nil {
			progress(left)
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d move(s) still in flight: %w", left, ctx.Err())
		case <-t.C:
		}
	}
}

// Throttle names the replication throttle configs (Kafka's).
const (
	LeaderRate   = "leader.replication.throttled.rate"
	FollowerRate = "follower.replication.throttled.rate"
)

// SetThrottle sets the cluster's replication throttle (both rates) to
// bytesPerSec, or removes it with 0, as kafka-reassign-partitions
// --throttle does (on the cluster default broker configs).
func SetThrottle(ctx context.Context, adm *kadm.Client, bytesPerSec int64) error {
	var cfgs []kadm.AlterConfig
	for _, name := range []string{LeaderRate, FollowerRate} {
		if bytesPerSec > 0 {
			v := strconv.FormatInt(bytesPerSec, 10)
			cfgs = append(cfgs, kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: &v})
		} else {
			cfgs = append(cfgs, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: name})
		}
	}
	resp, err := adm.AlterBrokerConfigs(ctx, cfgs)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil {
				err = errors.New(ErrorText(r.Err, r.ErrMessage))
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("set the replication throttle: %w", err)
	}
	return nil
}

// ParseRate parses a byte rate: a number of bytes per second with an
// optional KiB, MiB or GiB suffix (also K, M, G, KB, MB, GB as powers of
// 1024); 0 means none.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "/s"), "B"))
	t = strings.TrimSuffix(t, "i")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "K"), strings.HasSuffix(t, "k"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a byte rate (e.g. 10MiB, 500KiB, 1048576, or 0 for none)", s)
	}
	return n * mult, nil
}

// FormatIDs prints broker ids as 1,2,3.
func FormatIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

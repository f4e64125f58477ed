// Package group is `barge group`: list consumer groups with their lag,
// describe one (members, assignments, committed offsets and lag), seek its
// offsets, delete it or some of its offsets, all over the Kafka protocol
// (franz-go's kadm), as rpk group and kafka-consumer-groups do.
//
// Commands that act on several items print a result for each, with an
// "error" field that is empty on success, and exit 1 if any failed.
package group

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

// requestTimeout bounds a command once the cluster answered.
const requestTimeout = 30 * time.Second

// NewCommand builds `barge group` and its verbs.
func NewCommand(deps *cli.Deps) *cobra.Command {
	cmd, c := cli.NewNoun(deps, "group", "List, describe, seek and delete consumer groups",
		`Manage consumer groups over the Kafka protocol (--brokers): see their members,
committed offsets and lag, move their offsets, and delete them.`)
	cmd.AddCommand(
		newListCommand(c),
		newDescribeCommand(c),
		newSeekCommand(c),
		newDeleteCommand(c),
		newOffsetDeleteCommand(c),
	)
	return cmd
}

// adminClient connects to the cluster for one command of this noun.
func adminClient(cmd *cobra.Command, c *cli.Common) (*kadm.Client, context.Context, context.CancelFunc, error) {
	return connect.CommandAdmin(cmd, c, requestTimeout)
}

// errorText explains an error about a group (and a topic, when the error
// is about one), naming the likely cause and the fix for the common ones.
func errorText(group, topic string, err error) string {
	if err == nil {
		return ""
	}
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Sprintf("group %q does not exist (see 'barge group list')", group)
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Sprintf("group %q has active members: stop its consumers first", group)
	case errors.Is(err, kerr.GroupSubscribedToTopic):
		return fmt.Sprintf("members of group %q consume topic %q: stop them, or drop the topic from their subscription, first", group, topic)
	case errors.Is(err, kerr.UnknownTopicOrPartition) && topic != "":
		return fmt.Sprintf("topic %q does not exist; drop the group's offsets for it with 'barge group offset-delete %s --topic %s'", topic, group, topic)
	case errors.Is(err, kerr.CoordinatorNotAvailable), errors.Is(err, kerr.CoordinatorLoadInProgress), errors.Is(err, kerr.NotCoordinator):
		return fmt.Sprintf("%v: the group's coordinator is starting or moving; try again in a few seconds", err)
	}
	return err.Error()
}

// active reports whether a group in state has members holding its
// partitions: its offsets must not be moved from outside then.
func active(state string) bool { return state != "Empty" && state != "Dead" && state != "" }

// orDash prints an offset or lag, "-" when unknown (negative).
func orDash(n int64) any {
	if n < 0 {
		return nil
	}
	return n
}

// sortedTopics returns the keys of m in order.
func sortedTopics[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// sortedPartitions returns the partitions of a listing in order, without
// kadm's placeholder -1 for a topic that does not exist.
func sortedPartitions[V any](m map[int32]V) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		if p >= 0 {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

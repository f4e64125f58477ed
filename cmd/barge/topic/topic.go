// Package topic is `barge topic`: create, list, describe, delete, add
// partitions, alter configs and trim topics, all over the Kafka protocol
// (franz-go's kadm), as rpk topic and kafka-topics do.
//
// Commands that act on several topics print a result for each, with an
// "error" field that is empty on success, and exit 1 if any failed.
package topic

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

// requestTimeout bounds a command once the cluster answered.
const requestTimeout = 30 * time.Second

// NewCommand builds `barge topic` and its verbs.
func NewCommand(deps *cli.Deps) *cobra.Command {
	cmd, c := cli.NewNoun(deps, "topic", "Create, list, describe, alter, trim and delete topics",
		`Manage topics over the Kafka protocol (--brokers).`)
	cmd.AddCommand(
		newCreateCommand(c),
		newListCommand(c),
		newDescribeCommand(c),
		newDeleteCommand(c),
		newAddPartitionsCommand(c),
		newAlterConfigCommand(c),
		newTrimCommand(c),
	)
	return cmd
}

// adminClient connects to the cluster for one command of this noun.
func adminClient(cmd *cobra.Command, c *cli.Common) (*kadm.Client, context.Context, context.CancelFunc, error) {
	return connect.CommandAdmin(cmd, c, requestTimeout)
}

// TopicResult is the outcome for one topic of a command that changes
// topics (delete, add-partitions, alter-config).
type TopicResult struct {
	Topic string `json:"topic"`
	// Error is empty on success.
	Error string `json:"error"`
}

// topicResults turns per-topic answers into results in the order the topics
// were asked for; a topic the cluster did not answer for is an error too.
func topicResults[R any](topics []string, resps map[string]R, errOf func(R) (error, string)) []TopicResult {
	out := make([]TopicResult, 0, len(topics))
	for _, t := range topics {
		res := TopicResult{Topic: t, Error: "no answer for this topic"}
		if r, ok := resps[t]; ok {
			err, msg := errOf(r)
			res.Error = errorText(t, err, msg)
		}
		out = append(out, res)
	}
	return out
}

// errorText explains a per-topic error, naming the likely cause for the
// common ones; msg is the broker's error message, if any.
func errorText(topic string, err error, msg string) string {
	if err == nil {
		return ""
	}
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Sprintf("topic %q does not exist (see 'barge topic list')", topic)
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Sprintf("topic %q already exists", topic)
	case errors.Is(err, kerr.InvalidTopicException):
		return fmt.Sprintf("invalid topic name %q: use letters, digits, '.', '_' and '-', at most 249 characters", topic)
	}
	// The broker's message says more than the error code's name.
	if msg != "" {
		return fmt.Sprintf("%v: %s", err, msg)
	}
	return err.Error()
}

// topicID prints a topic id as Kafka does (URL-safe base64, no padding);
// "" for the zero id.
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// countFailed counts the results with an error.
func countFailed(rs []TopicResult) int {
	n := 0
	for _, r := range rs {
		if r.Error != "" {
			n++
		}
	}
	return n
}

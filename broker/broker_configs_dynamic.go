package broker

import (
	"context"
	"fmt"
	"slices"

	"github.com/barge-broker/barge/cluster"
	"github.com/twmb/franz-go/pkg/kerr"
)

// alterDynamicBrokerConfigs changes the cluster's dynamic broker configs
// (the replication throttle rates), as Kafka's cluster-wide default broker
// configs: the BROKER resource with an empty name (kafka-configs
// --entity-type brokers --entity-default). Every other broker config is
// static. cmd is the change as the topic path built it; Replace (the legacy
// AlterConfigs) deletes the dynamic configs it does not set.
func (b *Broker) alterDynamicBrokerConfigs(ctx context.Context, name string, cmd *cluster.AlterConfigs, validateOnly bool) (int16, *string) {
	fail := func(code int16, format string, args ...any) (int16, *string) {
		msg := fmt.Sprintf(format, args...)
		return code, &msg
	}
	dynamic := cluster.DynamicBrokerConfigs()
	for k := range cmd.Set {
		if !slices.Contains(dynamic, k) {
			return fail(kerr.InvalidRequest.Code, "broker config %q is static in Barge: set it with barge serve flags, the environment or the config file (dynamic: %v)", k, dynamic)
		}
	}
	for _, k := range cmd.Delete {
		if !slices.Contains(dynamic, k) {
			return fail(kerr.InvalidRequest.Code, "broker config %q is static in Barge (dynamic: %v)", k, dynamic)
		}
	}
	if name != "" {
		return fail(kerr.InvalidRequest.Code, "broker %q: Barge's dynamic broker configs are cluster-wide; alter the cluster default (the broker resource with an empty name, kafka-configs --entity-default)", name)
	}
	change := cluster.AlterBrokerConfigs{Set: cmd.Set, Delete: cmd.Delete}
	if cmd.Replace {
		for _, k := range dynamic {
			if _, ok := cmd.Set[k]; !ok {
				change.Delete = append(change.Delete, k)
			}
		}
	}
	for k, v := range change.Set {
		if err := cluster.ValidateBrokerConfig(k, v); err != nil {
			return errorCode(err), errorMessage(err)
		}
	}
	if validateOnly {
		return 0, nil
	}
	res, err := b.node.Submit(ctx, cluster.NewCommand(change))
	if err != nil {
		return errorCode(err), errorMessage(err)
	}
	b.replicas.waitApplied(ctx, res.Index)
	b.logger.Info("dynamic broker configs changed", "set", fmt.Sprint(change.Set), "delete", fmt.Sprint(change.Delete))
	return 0, nil
}

package broker

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Configs: DescribeConfigs v0-4, AlterConfigs v0-2 (replaces a topic's whole
// config, the legacy API librdkafka and kafka-python use), and
// IncrementalAlterConfigs v0-1 (set, delete, append, subtract). Topics are
// configurable; broker configs are described and static (set by flags),
// except the replication throttle rates, which are cluster-wide dynamic
// configs (broker_configs_dynamic.go).
func init() {
	register(kmsg.DescribeConfigs, 0, 4, replying(handleDescribeConfigs))
	register(kmsg.AlterConfigs, 0, 2, replying(handleAlterConfigs))
	register(kmsg.IncrementalAlterConfigs, 0, 1, replying(handleIncrementalAlterConfigs))
}

// topicConfigValue returns a topic config's effective value and its source
// for a topic of rf replicas (min.insync.replicas depends on it; rf < 1 when
// unknown, as for a validate-only create with the default factor).
func (b *Broker) topicConfigValue(overrides map[string]string, name string, rf int) (string, int8) {
	if v, ok := overrides[name]; ok {
		return v, int8(kmsg.ConfigSourceDynamicTopicConfig)
	}
	if name == cluster.ConfigMinInsyncReplicas && rf > 0 {
		return strconv.Itoa(cluster.DefaultMinInsyncReplicas(rf)), int8(kmsg.ConfigSourceDefaultConfig)
	}
	return topicConfigs[name].value(b.cfg.Log), int8(kmsg.ConfigSourceDefaultConfig)
}

// defaultReplicationFactor is default.replication.factor as it applies now:
// the configured one, or min(3, live brokers) when it is automatic.
func (b *Broker) defaultReplicationFactor() int16 {
	if b.cfg.DefaultReplicationFactor > 0 {
		return b.cfg.DefaultReplicationFactor
	}
	return int16(max(1, min(3, len(b.node.Image().LiveBrokers()))))
}

// brokerConfigs are the broker settings DescribeConfigs reports, read-only.
func (b *Broker) brokerConfigs() map[string]string {
	out := map[string]string{
		"broker.id":                  strconv.Itoa(int(b.cfg.ID)),
		"auto.create.topics.enable":  strconv.FormatBool(b.cfg.AutoCreateTopics),
		"num.partitions":             strconv.Itoa(int(b.cfg.DefaultPartitions)),
		"default.replication.factor": strconv.Itoa(int(b.defaultReplicationFactor())),
		"socket.request.max.bytes":   strconv.Itoa(b.cfg.MaxRequestBytes),
		"connections.max.idle.ms":    itoa(b.cfg.IdleTimeout.Milliseconds()),
		"max.connections":            strconv.Itoa(b.cfg.MaxConnections),
		"max.connections.per.ip":     strconv.Itoa(b.cfg.MaxConnectionsPerIP),
		"queued.max.request.bytes":   itoa(b.cfg.QueuedMaxRequestBytes),
		"log.dirs":                   b.cfg.DataDir,
		"broker.rack":                b.cfg.Rack,
	}
	for name, d := range topicConfigs {
		out["log."+name] = d.value(b.cfg.Log) // Kafka names most topic defaults log.<name>
	}
	out["message.max.bytes"] = topicConfigs["max.message.bytes"].value(b.cfg.Log)
	return out
}

func handleDescribeConfigs(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	img := b.node.Image()
	var topics []string
	for _, res := range r.Resources {
		if res.ResourceType == kmsg.ConfigResourceTypeTopic {
			topics = append(topics, res.ResourceName)
		}
	}
	if b.anyUnknown(img, topics) {
		b.syncMetadata(ctx)
		img = b.node.Image()
	}
	for _, res := range r.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = res.ResourceType, res.ResourceName
		var entries map[string]string
		var sourceOf func(string) (string, int8)
		switch res.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, ok := img.Topic(res.ResourceName)
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				resp.Resources = append(resp.Resources, sr)
				continue
			}
			entries = map[string]string{}
			for name := range topicConfigs {
				entries[name] = ""
			}
			sourceOf = func(name string) (string, int8) { return b.topicConfigValue(t.Configs, name, t.ReplicationFactor()) }
		case kmsg.ConfigResourceTypeBroker:
			if id, err := strconv.Atoi(res.ResourceName); res.ResourceName != "" && (err != nil || int32(id) != b.cfg.ID) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := fmt.Sprintf("broker %q: ask that broker for its configs", res.ResourceName)
				sr.ErrorMessage = &msg
				resp.Resources = append(resp.Resources, sr)
				continue
			}
			entries = b.brokerConfigs()
			dynamic := img.BrokerConfigs()
			for _, name := range cluster.DynamicBrokerConfigs() {
				entries[name] = dynamic[name] // empty when unset: unthrottled
			}
			sourceOf = func(name string) (string, int8) {
				if v, ok := dynamic[name]; ok {
					return v, int8(kmsg.ConfigSourceDynamicDefaultBrokerConfig)
				}
				if slices.Contains(cluster.DynamicBrokerConfigs(), name) {
					return "", int8(kmsg.ConfigSourceDefaultConfig)
				}
				return entries[name], int8(kmsg.ConfigSourceStaticBrokerConfig)
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := fmt.Sprintf("config resource type %d is not supported", res.ResourceType)
			sr.ErrorMessage = &msg
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		names := make([]string, 0, len(entries))
		for name := range entries {
			if res.ConfigNames == nil || slices.Contains(res.ConfigNames, name) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			value, source := sourceOf(name)
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			v := value
			c.Name, c.Value = name, &v
			c.Source = kmsg.ConfigSource(source)
			c.IsDefault = source == int8(kmsg.ConfigSourceDefaultConfig)
			c.ReadOnly = res.ResourceType == kmsg.ConfigResourceTypeBroker && !slices.Contains(cluster.DynamicBrokerConfigs(), name)
			if r.IncludeSynonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = name, &v, c.Source
				c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
			}
			sr.Configs = append(sr.Configs, c)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// alterTopicConfigs validates and submits one topic's config change.
func (b *Broker) alterTopicConfigs(ctx context.Context, resourceType kmsg.ConfigResourceType, name string, cmd *cluster.AlterConfigs, validateOnly bool) (int16, *string) {
	fail := func(code int16, format string, args ...any) (int16, *string) {
		msg := fmt.Sprintf(format, args...)
		return code, &msg
	}
	switch resourceType {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return b.alterDynamicBrokerConfigs(ctx, name, cmd, validateOnly)
	default:
		return fail(kerr.InvalidRequest.Code, "config resource type %d is not supported", resourceType)
	}
	if _, ok := b.node.Image().Topic(name); !ok {
		return fail(kerr.UnknownTopicOrPartition.Code, "unknown topic %q", name)
	}
	for k, v := range cmd.Set {
		if err := cluster.ValidateTopicConfig(k, v); err != nil {
			return errorCode(err), errorMessage(err)
		}
	}
	for _, k := range cmd.Delete {
		if _, ok := topicConfigs[k]; !ok {
			return fail(kerr.InvalidConfig.Code, "unknown topic config %q", k)
		}
	}
	if validateOnly {
		return 0, nil
	}
	if _, err := b.node.Submit(ctx, cluster.NewCommand(*cmd)); err != nil {
		return errorCode(err), errorMessage(err)
	}
	return 0, nil
}

func handleAlterConfigs(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	ctx, cancel := adminContext(ctx, 0)
	defer cancel()
	for _, res := range r.Resources {
		cmd := &cluster.AlterConfigs{Topic: res.ResourceName, Set: map[string]string{}, Replace: true}
		for _, c := range res.Configs {
			if c.Value != nil {
				cmd.Set[c.Name] = *c.Value
			}
		}
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = res.ResourceType, res.ResourceName
		sr.ErrorCode, sr.ErrorMessage = b.alterTopicConfigs(ctx, res.ResourceType, res.ResourceName, cmd, r.ValidateOnly)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func handleIncrementalAlterConfigs(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	ctx, cancel := adminContext(ctx, 0)
	defer cancel()
	img := b.node.Image()
	for _, res := range r.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = res.ResourceType, res.ResourceName
		cmd := &cluster.AlterConfigs{Topic: res.ResourceName, Set: map[string]string{}}
		current := map[string]string{}
		if t, ok := img.Topic(res.ResourceName); ok {
			current = t.Configs
		}
		for _, c := range res.Configs {
			value := ""
			if c.Value != nil {
				value = *c.Value
			}
			switch c.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				cmd.Set[c.Name] = value
			case kmsg.IncrementalAlterConfigOpDelete:
				cmd.Delete = append(cmd.Delete, c.Name)
			case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
				// Only list-valued configs take these; cleanup.policy is
				// the one Barge accepts.
				list := splitList(current[c.Name])
				if c.Op == kmsg.IncrementalAlterConfigOpAppend && !slices.Contains(list, value) {
					list = append(list, value)
				} else if c.Op == kmsg.IncrementalAlterConfigOpSubtract {
					list = slices.DeleteFunc(list, func(s string) bool { return s == value })
				}
				cmd.Set[c.Name] = strings.Join(list, ",")
			default:
				sr.ErrorCode = kerr.InvalidRequest.Code
			}
		}
		if sr.ErrorCode == 0 {
			sr.ErrorCode, sr.ErrorMessage = b.alterTopicConfigs(ctx, res.ResourceType, res.ResourceName, cmd, r.ValidateOnly)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func splitList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

package broker

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

// Info is one broker as `broker list` and `broker describe` show it.
type Info struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack"`
	// Alive is registered and unfenced: the broker heartbeats to the
	// controller and may lead and be in ISRs. Fenced is its opposite for
	// a registered broker (down, or shutting down).
	Alive        bool `json:"alive"`
	Fenced       bool `json:"fenced"`
	IsController bool `json:"is_controller"`
	// Leaders and Replicas count the partitions it leads and those it
	// holds a replica of; OutOfSync, the replicas it holds that are not in
	// their partition's ISR.
	Leaders   int `json:"leaders"`
	Replicas  int `json:"replicas"`
	OutOfSync int `json:"out_of_sync"`
	// LogDirBytes is the size of its partition logs (DescribeLogDirs: the
	// segment files), -1 when it could not be asked (a fenced broker).
	LogDirBytes int64    `json:"log_dir_bytes"`
	LogDirs     []LogDir `json:"log_dirs"`
	// Partitions are the replicas it hosts (describe only).
	Partitions []Hosted `json:"partitions,omitempty"`
}

// LogDir is one log directory of a broker.
type LogDir struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
	// TotalBytes and UsableBytes describe the volume; -1 if unreported.
	TotalBytes  int64  `json:"total_bytes"`
	UsableBytes int64  `json:"usable_bytes"`
	Error       string `json:"error"`
}

// Hosted is one partition replica on the broker.
type Hosted struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Leader    int32  `json:"leader"`
	InISR     bool   `json:"in_isr"`
	// Bytes and OffsetLag come from DescribeLogDirs; -1 when the broker
	// did not report the replica (it is down, or has not opened it yet).
	Bytes     int64 `json:"bytes"`
	OffsetLag int64 `json:"offset_lag"`
}

// connectAdmin connects for one command: the kgo client for the raw
// DescribeCluster request and the kadm client over it.
func connectAdmin(cmd *cobra.Command, c *cli.Common) (*kgo.Client, *kadm.Client, context.Context, context.CancelFunc, error) {
	ctx, stop := c.Context(cmd.Context())
	brokers, err := c.Cluster.Brokers()
	if err != nil {
		stop()
		return nil, nil, nil, nil, err
	}
	cl, err := connect.Kafka(ctx, c.Logger, brokers)
	if err != nil {
		stop()
		return nil, nil, nil, nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(requestTimeout.Milliseconds()))
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	return cl, adm, ctx, func() { cancel(); stop(); cl.Close() }, nil
}

// gather describes every registered broker: DescribeCluster v2 with the
// fenced brokers (KIP-1073) for who exists, Metadata for leaders and
// replicas, DescribeLogDirs of every live broker for the sizes. With
// hosted, each broker's partitions are listed too.
func gather(ctx context.Context, cl *kgo.Client, adm *kadm.Client, hosted bool) ([]Info, error) {
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dreq.IncludeFencedBrokers = true
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("describe cluster: %w", err)
	}
	byID := map[int32]*Info{}
	var out []*Info
	for _, b := range dresp.Brokers {
		in := &Info{ID: b.NodeID, Host: b.Host, Port: b.Port, Alive: !b.IsFenced, Fenced: b.IsFenced,
			IsController: b.NodeID == dresp.ControllerID, LogDirBytes: -1, LogDirs: []LogDir{}}
		if b.Rack != nil {
			in.Rack = *b.Rack
		}
		byID[b.NodeID] = in
		out = append(out, in)
	}
	md, err := adm.Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	type replicaKey struct {
		broker    int32
		topic     string
		partition int32
	}
	hostedAt := map[replicaKey]*Hosted{}
	for _, td := range md.Topics.Sorted() {
		for _, p := range td.Partitions.Sorted() {
			if in := byID[p.Leader]; in != nil {
				in.Leaders++
			}
			for _, r := range p.Replicas {
				in := byID[r]
				if in == nil {
					continue
				}
				in.Replicas++
				inISR := slices.Contains(p.ISR, r)
				if !inISR {
					in.OutOfSync++
				}
				if hosted {
					in.Partitions = append(in.Partitions, Hosted{Topic: td.Topic, Partition: p.Partition,
						Leader: p.Leader, InISR: inISR, Bytes: -1, OffsetLag: -1})
				}
			}
		}
	}
	for _, in := range out {
		for i := range in.Partitions {
			h := &in.Partitions[i]
			hostedAt[replicaKey{in.ID, h.Topic, h.Partition}] = h
		}
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil && len(dirs) == 0 {
		return nil, fmt.Errorf("describe log dirs: %w", err)
	}
	for _, d := range dirs.Sorted() {
		in := byID[d.Broker]
		if in == nil {
			continue
		}
		ld := LogDir{Path: d.Dir, Bytes: d.Size(), TotalBytes: d.TotalBytes, UsableBytes: d.UsableBytes}
		if d.Err != nil {
			ld.Error = d.Err.Error()
		}
		in.LogDirs = append(in.LogDirs, ld)
		in.LogDirBytes = max(in.LogDirBytes, 0) + ld.Bytes
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if h := hostedAt[replicaKey{d.Broker, p.Topic, p.Partition}]; h != nil {
				h.Bytes, h.OffsetLag = p.Size, p.OffsetLag
			}
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	res := make([]Info, len(out))
	for i, in := range out {
		res[i] = *in
	}
	return res, nil
}

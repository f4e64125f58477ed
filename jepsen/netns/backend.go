package netns

import (
	"context"
	"fmt"
	"time"

	"github.com/barge-broker/barge/jepsen/backend"
)

// Backend returns c as a backend.Cluster (brokers by index).
func (c *Cluster) Backend() backend.Cluster { return indexed{c} }

type indexed struct{ c *Cluster }

func (x indexed) Size() int       { return len(x.c.Nodes) }
func (x indexed) Seeds() []string { return x.c.Seeds() }
func (x indexed) IP(i int) string { return x.c.Nodes[i].IP }
func (x indexed) Iface(i int) string {
	return fmt.Sprintf("%sp%d", x.c.prefix, x.c.Nodes[i].ID)
}
func (x indexed) DataDir(i int) string { return x.c.Nodes[i].dir }
func (x indexed) Running(i int) bool   { return x.c.Nodes[i].Running() }
func (x indexed) Start(i int) error    { return x.c.Start(x.c.Nodes[i]) }
func (x indexed) Kill(i int) error     { return x.c.Kill(x.c.Nodes[i]) }
func (x indexed) Pause(i int) error    { return x.c.Pause(x.c.Nodes[i]) }
func (x indexed) Resume(i int) error   { return x.c.Resume(x.c.Nodes[i]) }
func (x indexed) Teardown() error      { return x.c.Teardown() }

func (x indexed) AdminAddrs() []string {
	var out []string
	for _, n := range x.c.Nodes {
		out = append(out, n.HTTPAddr())
	}
	return out
}

func (x indexed) WaitReady(ctx context.Context, i int, d time.Duration) error {
	return x.c.WaitReady(ctx, x.c.Nodes[i], d)
}

func (x indexed) NetExec(ctx context.Context, i int, args ...string) error {
	return run(ctx, append([]string{"ip", "netns", "exec", x.c.Nodes[i].NS}, args...)...)
}

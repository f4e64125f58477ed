package cluster

import (
	"testing"
	"time"
)

// Losing two of three voters for good stops the metadata: no controller.
// Restarted with RecoverQuorum, the survivor is the only voter, keeps the
// image it had, and takes metadata changes again.
func TestRecoverQuorumFromTheLastVoter(t *testing.T) {
	tc := threeBrokers(t)
	ctx := ctxTimeout(t, 20*time.Second)
	ctrl := tc.waitController(10 * time.Second)
	if _, err := ctrl.Submit(ctx, NewCommand(CreateTopic{Name: "kept", NumPartitions: 1, ReplicationFactor: 1})); err != nil {
		t.Fatal(err)
	}
	tc.waitSameImage(10*time.Second, 3)
	tc.kill(2)
	tc.kill(3)
	tc.kill(1)
	cfg := tc.cfgs[1]
	cfg.RecoverQuorum = true
	n := tc.start(cfg)
	waitFor(t, 20*time.Second, "the survivor to lead alone", func() (bool, string) {
		return n.IsController(), "not the controller"
	})
	servers, err := n.Servers()
	if err != nil || len(servers) != 1 || servers[0].ID != 1 || !servers[0].IsVoter {
		t.Fatalf("raft configuration after recovery: %+v, %v; want broker 1 alone", servers, err)
	}
	if _, ok := n.Image().Topic("kept"); !ok {
		t.Fatal("the recovered image lost the topic created before")
	}
	if _, err := n.Submit(ctx, NewCommand(CreateTopic{Name: "after", NumPartitions: 1, ReplicationFactor: 1})); err != nil {
		t.Fatalf("metadata change after the recovery: %v", err)
	}
}

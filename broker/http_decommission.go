package broker

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/barge-broker/barge/cluster"
)

// DecommissionStatus is the answer of /v1/brokers/{id}/decommission: how
// far the decommissioning of a broker is, and whether it may be stopped.
type DecommissionStatus struct {
	cluster.DecommissionStatus
	// InRaftConfig says the broker is still a Raft voter or non-voter.
	InRaftConfig bool `json:"in_raft_config"`
	// SafeToStop is true once the broker hosts no replica, is
	// unregistered and is out of the Raft configuration: stopping it
	// then loses nothing and costs the quorum nothing.
	SafeToStop bool `json:"safe_to_stop"`
}

// serveDecommission is the admin API of decommissioning, which Kafka has no
// API for: POST starts it (refused with 409 and the reason when it would
// leave fewer live brokers than a topic's replication factor), DELETE
// cancels it (recommission), GET reports progress. Any broker answers; the
// change goes to the controller as the Kafka admin APIs' do.
func (b *Broker) serveDecommission(w http.ResponseWriter, r *http.Request) {
	id64, err := strconv.ParseInt(r.PathValue("id"), 10, 32)
	if err != nil || id64 < 0 {
		http.Error(w, "broker id: want a non-negative integer, got "+strconv.Quote(r.PathValue("id")), http.StatusBadRequest)
		return
	}
	id := int32(id64)
	ctx, cancel := context.WithTimeout(r.Context(), adminHTTPTimeout)
	defer cancel()
	switch r.Method {
	case http.MethodPost, http.MethodDelete:
		res, err := b.node.Submit(ctx, cluster.NewCommand(cluster.DecommissionBroker{ID: id, Cancel: r.Method == http.MethodDelete}))
		if err != nil {
			status := http.StatusConflict
			if errors.Is(err, cluster.ErrNoController) || errors.Is(err, cluster.ErrNotController) || errors.Is(err, cluster.ErrTimeout) {
				status = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), status)
			return
		}
		b.replicas.waitApplied(ctx, res.Index)
		if r.Method == http.MethodPost {
			b.logger.Info("decommissioning broker", "broker", id)
		} else {
			b.logger.Info("recommissioning broker", "broker", id)
		}
	case http.MethodGet:
		b.syncMetadata(ctx)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "use GET, POST or DELETE", http.StatusMethodNotAllowed)
		return
	}
	st := DecommissionStatus{DecommissionStatus: b.node.Image().Decommission(id)}
	servers, err := b.node.Servers()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	for _, s := range servers {
		if s.ID == id {
			st.InRaftConfig = true
		}
	}
	st.SafeToStop = st.State == "removed" && !st.InRaftConfig
	b.writeJSON(w, r.URL.Path, st)
}

// adminHTTPTimeout bounds an admin API change, as Kafka admin requests'
// default timeout does.
const adminHTTPTimeout = 30 * time.Second

package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveHTTP serves, on the listener Start bound, /metrics, /healthz, /readyz, /v1/cluster (and its
// health and quorum, health.go) and /debug/pprof.
func (b *Broker) serveHTTP() {
	ln := b.httpLn
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(b.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !b.Ready() {
			http.Error(w, "not ready: metadata not loaded yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/v1/cluster", b.serveClusterJSON)
	mux.HandleFunc("/v1/cluster/health", b.serveHealth)
	mux.HandleFunc("/v1/cluster/quorum", b.serveQuorum)
	mux.HandleFunc("/v1/brokers/{id}/decommission", b.serveDecommission)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	b.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	b.goBackground("http listener", func() {
		if err := b.httpSrv.Serve(ln); err != nil && err != http.ErrServerClosed {
			b.logger.Error("http listener stopped", "err", err)
		}
	})
}

// serveClusterJSON answers /v1/cluster with this broker's view of the
// cluster: the metadata image, the controller and whether it is ready.
func (b *Broker) serveClusterJSON(w http.ResponseWriter, _ *http.Request) {
	img := b.node.Image()
	controller, hasController := b.node.Controller()
	out := map[string]any{
		"broker_id":  b.cfg.ID,
		"ready":      b.Ready(),
		"cluster_id": img.ClusterID(),
		"brokers":    img.Brokers(),
		"topics":     img.Topics(),
	}
	if hasController {
		out["controller_id"] = controller
	} else {
		out["controller_id"] = -1
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		b.logger.Debug("writing /v1/cluster", "err", err)
	}
}

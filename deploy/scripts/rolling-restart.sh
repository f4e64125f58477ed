#!/usr/bin/env bash
# Restart the brokers of a Barge cluster one at a time, each with a
# controlled shutdown, waiting for the whole cluster to be healthy again
# before the next. Stops at the first failure, exiting non-zero, so a bad
# broker never takes a second one down with it.
#
# usage: rolling-restart.sh -c 'RESTART COMMAND {}' [-t TIMEOUT] BROKER...
#
#   -c CMD   how to restart one broker; {} is replaced by its name. Run by
#            sh -c. It must stop the broker with SIGTERM (Barge's controlled
#            shutdown: leadership moves away, logs close cleanly) and
#            return once it has stopped; it may return before the broker
#            is back. Examples:
#              systemd:    -c 'ssh {} sudo systemctl restart barge'
#              docker:     -c 'docker restart --time 60 {}'
#              kubernetes: -c 'kubectl -n barge delete pod {} --wait=true'
#              barge dev:  -c 'barge dev --restart {}'
#   -t DUR   how long to wait for the cluster to be healthy after each
#            restart (and before the first), as barge's --timeout: 5m.
#   -b PATH  the barge binary (default: $BARGE_BIN, else barge on PATH).
#
# The cluster is found as by every barge command: BARGE_ADMIN (the brokers'
# --http addresses) and BARGE_BROKERS, or -- followed by barge flags:
#   rolling-restart.sh -c '...' kafka1 kafka2 kafka3 -- --admin kafka1:9644
#
# Exit codes: 0 all restarted and healthy; 1 a restart or a health wait
# failed (the message names the broker and the ones not yet restarted);
# 2 usage.
set -euo pipefail

usage() {
	sed -n '/^# usage:/,/^# Exit codes/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

log() { printf '%s rolling-restart: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

restart_cmd=""
timeout="5m"
barge="${BARGE_BIN:-barge}"
while getopts "c:t:b:h" opt; do
	case "$opt" in
	c) restart_cmd="$OPTARG" ;;
	t) timeout="$OPTARG" ;;
	b) barge="$OPTARG" ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))

brokers=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	brokers+=("$1")
	shift
done
[ $# -gt 0 ] && shift # the --
barge_flags=("$@")

[ -n "$restart_cmd" ] || { echo "rolling-restart: -c RESTART_COMMAND is required" >&2; usage; }
[ "${#brokers[@]}" -gt 0 ] || { echo "rolling-restart: name at least one broker" >&2; usage; }
case "$restart_cmd" in
*"{}"*) ;;
*) echo "rolling-restart: -c must contain {} (the broker's name)" >&2; exit 2 ;;
esac
command -v "$barge" >/dev/null 2>&1 || { echo "rolling-restart: barge binary '$barge' not found (-b or BARGE_BIN)" >&2; exit 2; }

wait_healthy() {
	"$barge" cluster health --exit-when-healthy --timeout "$timeout" ${barge_flags[@]+"${barge_flags[@]}"} >&2
}

# Restarting a broker of an unhealthy cluster can take the last in-sync
# replica of a partition offline: refuse to start.
log "checking the cluster is healthy before the first restart"
if ! wait_healthy; then
	log "cluster not healthy within $timeout; nothing restarted"
	exit 1
fi

remaining=("${brokers[@]}")
for b in "${brokers[@]}"; do
	remaining=("${remaining[@]:1}")
	cmd="${restart_cmd//\{\}/$b}"
	log "restarting $b: $cmd"
	if ! sh -c "$cmd" >&2; then
		log "restart command for $b failed; not restarted: ${remaining[*]:-none}"
		exit 1
	fi
	log "waiting up to $timeout for the cluster to be healthy"
	if ! wait_healthy; then
		log "cluster not healthy within $timeout after restarting $b; stopping; not restarted: ${remaining[*]:-none}"
		exit 1
	fi
	log "$b restarted; cluster healthy"
done
log "all ${#brokers[@]} brokers restarted"

#!/usr/bin/env bash
# bench-scale.sh: thousands of partitions (issue 16). One broker with
# PARTS partitions (RF=1) and a three-broker cluster with R3_PARTS
# partitions (RF=3, acks=all), each against a fresh run of the same setup
# with 10 partitions: how long creating the topic takes (until every
# partition is led), RSS after creation and after a produce run, open
# descriptors, the produce throughput against 10 partitions, how long a
# client's Metadata request for the topic takes (`barge topic describe`,
# process start included) and one retention check over every hosted log
# (barge_retention_check_seconds), and how long the brokers take after a
# kill -9 of every one of them until every partition is led again.
#
#   usage: cmd/barge/perf/bench-scale.sh     (make bench-scale)
#          PARTS=10000 R3_PARTS=3000 RECORDS=500000 cmd/barge/perf/bench-scale.sh
#          R3_PARTS=0 cmd/barge/perf/bench-scale.sh   (the single broker only)
#          PROFILE_DIR=/tmp/prof PROFILE_SECONDS=3 cmd/barge/perf/bench-scale.sh
#          LOG_LEVEL=info BENCH_KEEP=1 cmd/barge/perf/bench-scale.sh  (brokers log how long opening the logs took)
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
W=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/barge-scale.XXXXXX")}
mkdir -p "$W"
PARTS=${PARTS:-10000}
R3_PARTS=${R3_PARTS:-3000}
RECORDS=${RECORDS:-500000}
WAIT_S=${WAIT_S:-300} # bound on every wait for partitions to be led
STOP_S=${STOP_S:-120} # bound on a broker's controlled shutdown before kill -9
PIDS=()
cleanup() {
	stop # defined below; bounded by STOP_S
	if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$W"; fi
}
trap cleanup EXIT
cd "$ROOT"
if [ -n "${BARGE_BIN:-}" ]; then
	cp "$BARGE_BIN" "$W/barge"
else
	CGO_ENABLED=0 go build -o "$W/barge" ./cmd/barge
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
rss_mib() { awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }

declare -a KAFKA HTTP GOSSIP RAFT
# cluster N: fresh addresses and data for N brokers, started.
cluster() {
	local n=$1 i seeds="" extra=()
	PIDS=()
	KAFKA=() HTTP=() GOSSIP=() RAFT=()
	for i in $(seq 0 $((n - 1))); do
		KAFKA[$i]=127.0.0.1:$(port) HTTP[$i]=127.0.0.1:$(port) GOSSIP[$i]=127.0.0.1:$(port) RAFT[$i]=127.0.0.1:$(port)
		seeds+="${seeds:+,}${GOSSIP[$i]}"
		rm -rf "$W/data-$i"
	done
	BROKERS=$(IFS=,; echo "${KAFKA[*]}")
	if [ "$n" -gt 1 ]; then extra=(--join "$seeds" --bootstrap-expect "$n"); fi
	EXTRA=("${extra[@]}")
	for i in $(seq 0 $((n - 1))); do start "$i"; done
	"$W/barge" cluster health --brokers "$BROKERS" --admin "${HTTP[0]}" --exit-when-healthy --timeout 60s > /dev/null
}
start() {
	local i=$1
	"$W/barge" serve --id "$i" --data "$W/data-$i" --kafka "${KAFKA[$i]}" --http "${HTTP[$i]}" \
		--gossip "${GOSSIP[$i]}" --raft "${RAFT[$i]}" "${EXTRA[@]}" --log-retention-check-interval-ms 1000 --log-level "${LOG_LEVEL:-warn}" >> "$W/broker-$i.log" 2>&1 &
	PIDS[$i]=$!
}
# stop: SIGTERM to every broker, then kill -9 for one still up after
# STOP_S seconds (a shutdown that hangs is reported, not waited out).
stop() {
	local p i
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for i in $(seq $((STOP_S * 10))); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$p" 2>/dev/null; then
			echo "bench-scale: broker pid $p still running ${STOP_S}s after SIGTERM; killed" >&2
			kill -9 "$p" 2>/dev/null || true
		fi
		wait "$p" 2>/dev/null || true
	done
	PIDS=()
}
# led: partitions led by all brokers together (barge_partitions_leading: logs open, replicas leading), 0 while one is not up.
led() {
	local i sum=0 v
	for i in "${!HTTP[@]}"; do
		v=$(curl -sf "http://${HTTP[$i]}/metrics" 2>/dev/null | awk '/^barge_partitions_leading /{print $2}') || v=""
		sum=$(awk -v s="$sum" -v v="${v:-0}" 'BEGIN{printf "%d", s+v}')
	done
	echo "$sum"
}
# ready: every broker answers /readyz (its first reconcile, which opens
# the logs, is done). Cheap to poll, unlike /metrics with a series per
# partition, which would slow down what it measures.
ready() {
	local i
	for i in "${!HTTP[@]}"; do curl -sf "http://${HTTP[$i]}/readyz" > /dev/null 2>&1 || return 1; done
}
# wait_led N: until N partitions are led (bounded by WAIT_S).
wait_led() {
	local want=$1 t0
	t0=$(now)
	while ! ready || [ "$(led)" -lt "$want" ]; do
		if [ "$(awk -v a="$t0" -v b="$(now)" -v w="$WAIT_S" 'BEGIN{print (b-a > w)}')" = 1 ]; then
			echo "bench-scale: only $(led) of $want partitions led after ${WAIT_S}s" >&2
			return 1
		fi
		sleep 0.2
	done
}
produce() { # ACKS: prints MB/s
	"$W/barge" perf produce t --brokers "$BROKERS" --records "$RECORDS" --record-size 1024 --acks "$1" --linger 5ms -o json |
		python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["mib_per_sec"]*1048576/1e6))'
}
# describe_ms: the median of three `barge topic describe t` (one Metadata
# request for the topic and its answer printed), in milliseconds.
describe_ms() {
	local i t0 all=()
	for i in 1 2 3; do
		t0=$(now)
		"$W/barge" topic describe t --brokers "$BROKERS" -o json > /dev/null
		all+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.0f", (b-a)*1000}')")
	done
	printf '%s\n' "${all[@]}" | sort -n | sed -n 2p
}
# retention_ms: broker 0's mean retention check so far, in milliseconds,
# once it has made one.
retention_ms() {
	local i v
	for i in $(seq 50); do
		v=$(curl -sf "http://${HTTP[0]}/metrics" | awk '/^barge_retention_check_seconds_sum /{s=$2} /^barge_retention_check_seconds_count /{c=$2} END{if (c > 0) printf "%.1f", s/c*1000}')
		if [ -n "$v" ]; then echo "$v"; return; fi
		sleep 0.2
	done
	echo n/a
}
rss_all() { local i out=""; for i in "${!PIDS[@]}"; do out+="${out:+/}$(rss_mib "${PIDS[$i]}")"; done; echo "$out"; }
fds_all() { local i out=""; for i in "${!PIDS[@]}"; do out+="${out:+/}$(fds "${PIDS[$i]}")"; done; echo "$out"; }

# scenario BROKERS PARTS RF ACKS: sets RESULT (in this shell, so the trap
# still sees the brokers) to
#   create_s rss_created fds mbs rss_after_produce recovery_s rss_recovered describe_ms retention_ms
scenario() {
	local n=$1 parts=$2 rf=$3 acks=$4 t0 create rss1 nfd mbs rss2 rec rss3 i meta ret
	cluster "$n"
	t0=$(now)
	"$W/barge" topic create t --brokers "$BROKERS" -p "$parts" -r "$rf" > /dev/null
	wait_led "$parts"
	create=$(since "$t0")
	rss1=$(rss_all) nfd=$(fds_all)
	local profs=()
	if [ -n "${PROFILE_DIR:-}" ]; then # CPU profiles of every broker during the produce run
		mkdir -p "$PROFILE_DIR"
		for i in "${!HTTP[@]}"; do
			curl -s "http://${HTTP[$i]}/debug/pprof/profile?seconds=${PROFILE_SECONDS:-3}" -o "$PROFILE_DIR/b$n-p$parts-broker$i.pprof" &
			profs+=($!)
		done
	fi
	mbs=$(produce "$acks")
	for p in "${profs[@]}"; do wait "$p" || true; done
	rss2=$(rss_all)
	meta=$(describe_ms) ret=$(retention_ms)
	for p in "${PIDS[@]}"; do kill -9 "$p"; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	t0=$(now)
	for i in $(seq 0 $((n - 1))); do start "$i"; done
	wait_led "$parts"
	rec=$(since "$t0")
	rss3=$(rss_all)
	stop
	RESULT="$create $rss1 $nfd $mbs $rss2 $rec $rss3 $meta $ret"
}

report() { # TITLE BASE_LINE BIG_LINE BIG_PARTS
	local title=$1 c10 r10 f10 m10 p10 k10 q10 d10 e10 c r f m p k q d e
	read -r c10 r10 f10 m10 p10 k10 q10 d10 e10 <<< "$2"
	read -r c r f m p k q d e <<< "$3"
	echo
	echo "=== $title ($(date -u +%FT%TZ))"
	printf '%-46s %14s %14s\n' "" "10" "$4"
	printf '%-46s %14s %14s\n' "create until all led (s)" "$c10" "$c"
	printf '%-46s %14s %14s\n' "RSS after creation (MiB, per broker)" "$r10" "$r"
	printf '%-46s %14s %14s\n' "open fds after creation (per broker)" "$f10" "$f"
	printf '%-46s %14s %14s\n' "produce MB/s" "$m10" "$m"
	printf '%-46s %14s %14s\n' "RSS after produce (MiB, goal < 1024)" "$p10" "$p"
	printf '%-46s %14s %14s\n' "topic describe (Metadata) (ms)" "$d10" "$d"
	printf '%-46s %14s %14s\n' "one retention check, broker 0 (ms)" "$e10" "$e"
	printf '%-46s %14s %14s\n' "recovery after kill -9 (s, goal < 10)" "$k10" "$k"
	printf '%-46s %14s %14s\n' "RSS after recovery (MiB)" "$q10" "$q"
	printf '%-46s %14s\n' "throughput $4 : 10 (goal >= 0.5)" "$(awk -v a="$m" -v b="$m10" 'BEGIN{printf "%.2f", a/b}')"
}

echo "bench-scale: $RECORDS x 1 KiB per produce run; work directory $W"
if [ "$PARTS" -gt 0 ]; then
	scenario 1 10 1 1
	base=$RESULT
	scenario 1 "$PARTS" 1 1
	report "one broker, RF=1, acks=1" "$base" "$RESULT" "$PARTS"
fi
if [ "$R3_PARTS" -gt 0 ]; then
	scenario 3 10 3 all
	base=$RESULT
	scenario 3 "$R3_PARTS" 3 all
	report "three brokers, RF=3, acks=all" "$base" "$RESULT" "$R3_PARTS"
fi

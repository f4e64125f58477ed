#!/usr/bin/env bash
# bench-partitions.sh: one broker, the same bytes produced over 10 and over
# 1,000 partitions (franz-go through `barge perf produce`, acks=1, 1 KiB
# records, linger 5 ms), each run's throughput, broker CPU per GB and peak
# RSS, and the ratios 1,000 : 10 measured in the same run (issue 16).
# A plain program that pwrites the same bytes to a file, run before and
# after the brokers (the cheaper run counts), is the CPU baseline; peak RSS is set against twice the
# idle RSS plus the request-memory cap. With RUNS > 1 the ratios' median
# and range close the output: this shared 2-core VM is noisy.
#
#   usage: cmd/barge/perf/bench-partitions.sh     (make bench-partitions)
#          RECORDS=500000 RUNS=5 cmd/barge/perf/bench-partitions.sh
#          BARGE_BIN=/path/to/older/barge cmd/barge/perf/bench-partitions.sh
#          PROFILE_DIR=/tmp/prof PROFILE_SECONDS=3 cmd/barge/perf/bench-partitions.sh
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
W=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/barge-parts.XXXXXX")}
RECORDS=${RECORDS:-500000}
RUNS=${RUNS:-3}
PID=""
cleanup() {
	if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$W"; fi
}
trap cleanup EXIT
cd "$ROOT"
if [ -n "${BARGE_BIN:-}" ]; then # compare another build (an older commit, say)
	cp "$BARGE_BIN" "$W/barge"
else
	CGO_ENABLED=0 go build -o "$W/barge" ./cmd/barge
fi
go build -o "$W/pwritebase" ./cmd/barge/perf/pwritebase
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cpu_seconds() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$1/status"; }

# run PARTITIONS: a fresh broker, one produce run; prints "MB/s cpu_s_per_GB peak_rss_MiB idle_rss_MiB"
run() {
	local parts=$1 kafka http out before after gb mibs idle
	kafka=127.0.0.1:$(port) http=127.0.0.1:$(port)
	rm -rf "$W/data"
	"$W/barge" serve --data "$W/data" --kafka "$kafka" --http "$http" --raft 127.0.0.1:$(port) \
		--gossip 127.0.0.1:$(port) --log-level warn > "$W/broker.log" 2>&1 &
	PID=$!
	"$W/barge" cluster health --brokers "$kafka" --admin "$http" --exit-when-healthy --timeout 30s > /dev/null
	"$W/barge" topic create t --brokers "$kafka" -p "$parts" -r 1 > /dev/null
	idle=$(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$PID/status")
	before=$(cpu_seconds "$PID")
	local prof=""
	if [ -n "${PROFILE_DIR:-}" ]; then # a CPU profile of the first seconds of the produce run
		mkdir -p "$PROFILE_DIR"
		curl -s "http://$http/debug/pprof/profile?seconds=${PROFILE_SECONDS:-3}" -o "$PROFILE_DIR/broker-$parts.pprof" &
		prof=$!
	fi
	out=$("$W/barge" perf produce t --brokers "$kafka" --records "$RECORDS" --record-size 1024 --acks 1 --linger 5ms -o json)
	after=$(cpu_seconds "$PID")
	if [ -n "$prof" ]; then wait "$prof" || true; fi
	mibs=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["mib_per_sec"])')
	gb=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"]/1e9)')
	local line
	line="$(awk -v m="$mibs" 'BEGIN{printf "%.1f", m*1048576/1e6}') $(awk -v a="$before" -v b="$after" -v g="$gb" 'BEGIN{printf "%.2f", (b-a)/g}') $(peak_rss_mib "$PID") $idle"
	kill "$PID"
	wait "$PID" 2>/dev/null || true
	PID=""
	echo "$line" # last: the caller reads it only once the broker is gone
}

# The baseline: a plain program pwrites the same number of bytes, one 1 MiB
# producer batch per write, to a fresh file (cmd/barge/perf/pwritebase).
# With -tcp it also receives each batch over loopback TCP and checks its
# CRC-32C first: the floor for any broker.
pwrite_cpu_per_gb() { "$W/pwritebase" -file "$W/pwrite.dat" -bytes $((RECORDS * 1024)) -write-bytes 1048576 "$@"; }

# The request-memory cap: the broker's queued.max.request.bytes default.
CAP_MIB=256
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
# summary NAME VALUES...: median and range of the per-run values
summary() {
	local name=$1
	shift
	printf '%-44s %s\n' "$name" "$(printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "median %.2f  (min %.2f, max %.2f, %d runs)", m, v[1], v[NR], NR}')"
}

echo "bench-partitions: $RECORDS x 1 KiB per run, $RUNS run(s) of each"
T=() C=() D=() F=() P=()
for i in $(seq "$RUNS"); do
	b1=$(pwrite_cpu_per_gb) f1=$(pwrite_cpu_per_gb -tcp)
	# The first writer after a run's files are deleted pays more per page
	# on this VM (the freed pages went back to the host), so the order of
	# the two brokers alternates from run to run.
	if [ $((i % 2)) = 1 ]; then
		read -r m10 c10 r10 i10 < <(run 10)
		read -r m1k c1k r1k i1k < <(run 1000)
	else
		read -r m1k c1k r1k i1k < <(run 1000)
		read -r m10 c10 r10 i10 < <(run 10)
	fi
	b2=$(pwrite_cpu_per_gb) f2=$(pwrite_cpu_per_gb -tcp)
	# The cheaper of the two: the first writer after a broker's files were
	# deleted pays many times more per page (freed pages went back to the
	# host), which no broker run here does at full length.
	base=$(awk -v a="$b1" -v b="$b2" 'BEGIN{printf "%.2f", (a<b)?a:b}')
	floor=$(awk -v a="$f1" -v b="$f2" 'BEGIN{printf "%.2f", (a<b)?a:b}')
	bound=$((2 * i1k + CAP_MIB))
	T+=("$(ratio "$m1k" "$m10")") C+=("$(ratio "$c1k" "$c10")") D+=("$(ratio "$c10" "$base")") F+=("$(ratio "$c10" "$floor")") P+=("$(ratio "$r1k" "$bound")")
	echo
	echo "=== run $i ($(date -u +%FT%TZ)), $([ $((i % 2)) = 1 ] && echo "10 first" || echo "1000 first")"
	printf '%-44s %10s %10s\n' "" "10" "1000"
	printf '%-44s %10s %10s\n' "produce MB/s" "$m10" "$m1k"
	printf '%-44s %10s %10s\n' "broker CPU s per GB" "$c10" "$c1k"
	printf '%-44s %10s %10s\n' "broker RSS idle / peak (MiB)" "$i10/$r10" "$i1k/$r1k"
	printf '%-44s %10s\n' "throughput 1000 : 10 (goal >= 0.8)" "${T[-1]}"
	printf '%-44s %10s\n' "CPU per GB 1000 : 10 (goal <= 1.3)" "${C[-1]}"
	printf '%-44s %10s\n' "pwrite baseline CPU s per GB (before/after)" "$b1/$b2"
	printf '%-44s %10s\n' "CPU per GB 10 partitions : pwrite (goal <= 1.3)" "${D[-1]}"
	printf '%-44s %10s\n' "recv+CRC+pwrite floor CPU s per GB (before/after)" "$f1/$f2"
	printf '%-44s %10s\n' "CPU per GB 10 partitions : floor" "${F[-1]}"
	printf '%-44s %10s\n' "peak RSS 1000 : (2 x idle + ${CAP_MIB} MiB cap) (goal < 1)" "${P[-1]}"
done
if [ "$RUNS" -gt 1 ]; then
	echo
	echo "=== all runs"
	summary "throughput 1000 : 10 (goal >= 0.8)" "${T[@]}"
	summary "CPU per GB 1000 : 10 (goal <= 1.3)" "${C[@]}"
	summary "CPU per GB 10 : pwrite (goal <= 1.3)" "${D[@]}"
	summary "CPU per GB 10 : recv+CRC+pwrite floor" "${F[@]}"
	summary "peak RSS 1000 : (2 x idle + cap) (goal < 1)" "${P[@]}"
fi

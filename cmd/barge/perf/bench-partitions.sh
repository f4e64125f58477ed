#!/usr/bin/env bash
# bench-partitions.sh: one broker, the same bytes produced over 10 and over
# 1,000 partitions (franz-go through `barge perf produce`, acks=1, 1 KiB
# records, linger 5 ms), each run's throughput, broker CPU per GB and peak
# RSS, and the ratios 1,000 : 10 measured in the same run (issue 16).
# A plain program that pwrites the same bytes to a file is the CPU baseline.
#
#   usage: cmd/barge/perf/bench-partitions.sh     (make bench-partitions)
#          RECORDS=500000 RUNS=2 cmd/barge/perf/bench-partitions.sh
#          BARGE_BIN=/path/to/older/barge cmd/barge/perf/bench-partitions.sh
#          PROFILE_DIR=/tmp/prof PROFILE_SECONDS=3 cmd/barge/perf/bench-partitions.sh
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
W=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/barge-parts.XXXXXX")}
RECORDS=${RECORDS:-500000}
RUNS=${RUNS:-1}
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

# The baseline: pwrite the same number of bytes, 1 MiB at a time, to a fresh file.
pwrite_cpu_per_gb() {
	local bytes=$((RECORDS * 1024)) t0 TIMEFORMAT='%U %S'
	rm -f "$W/pwrite.dat"
	t0=$( { time dd if=/dev/zero of="$W/pwrite.dat" bs=1M count=$((bytes / 1048576)) 2>/dev/null; } 2>&1 | tail -1)
	rm -f "$W/pwrite.dat"
	awk -v t="$t0" -v b="$bytes" 'BEGIN{split(t, a, " "); printf "%.2f", (a[1]+a[2])/(b/1e9)}'
}

echo "bench-partitions: $RECORDS x 1 KiB per run, $RUNS run(s) of each"
for i in $(seq "$RUNS"); do
	read -r m10 c10 r10 i10 < <(run 10)
	read -r m1k c1k r1k i1k < <(run 1000)
	base=$(pwrite_cpu_per_gb)
	echo
	echo "=== run $i ($(date -u +%FT%TZ))"
	printf '%-44s %10s %10s\n' "" "10" "1000"
	printf '%-44s %10s %10s\n' "produce MB/s" "$m10" "$m1k"
	printf '%-44s %10s %10s\n' "broker CPU s per GB" "$c10" "$c1k"
	printf '%-44s %10s %10s\n' "broker RSS idle / peak (MiB)" "$i10/$r10" "$i1k/$r1k"
	printf '%-44s %10s\n' "throughput 1000 : 10 (goal >= 0.8)" "$(awk -v a="$m1k" -v b="$m10" 'BEGIN{printf "%.2f", a/b}')"
	printf '%-44s %10s\n' "CPU per GB 1000 : 10 (goal <= 1.3)" "$(awk -v a="$c1k" -v b="$c10" 'BEGIN{printf "%.2f", a/b}')"
	printf '%-44s %10s\n' "dd (pwrite) CPU s per GB, same bytes" "$base"
	printf '%-44s %10s\n' "CPU per GB 10 partitions : dd (goal <= 1.3)" "$(awk -v a="$c10" -v b="$base" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }')"
done

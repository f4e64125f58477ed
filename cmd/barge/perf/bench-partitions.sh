#!/usr/bin/env bash
# bench-partitions.sh: one broker, the same bytes produced over 10 and over
# 1,000 partitions (franz-go through `barge perf produce`, acks=1, 1 KiB
# records, linger 5 ms), each run's throughput, broker CPU per GB and peak
# RSS, and the ratios 1,000 : 10 measured in the same run (issue 16).
# A plain program that pwrites the same bytes to a file, run before and
# after the brokers (the cheaper run counts), is the CPU baseline, and the
# same program receiving them over loopback and checking their CRCs first
# is the floor; peak RSS is set against twice the idle RSS plus the
# request-memory cap. Both partition counts run once more with a lean
# producer (rawproduce) whose CPU does not compete with the broker's, as
# the floor's sender does not. With RUNS > 1 the ratios' median and range
# close the output: this shared 2-core VM is noisy.
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
# On a VM whose kernel reports free pages back to the host (virtio-balloon
# free page reporting), a write into the page cache costs many times more
# when its pages were given back than when the guest freed them a moment
# ago: 2.1 against 0.2 CPU seconds per GB for the same pwrite here. Which of
# the two a run gets depends on what ran seconds before, and it swamped
# every ratio. So each measured writer (the baselines and each broker's
# produce run) is preceded by a ballast file written and deleted, and, where
# the kernel has the knob and we may turn it, freed pages are held back from
# the host for the longest it allows while this script runs.
REPORT_KNOB=/sys/module/page_reporting/parameters/min_free_ms
REPORT_WAS=""
if [ -w "$REPORT_KNOB" ]; then
	REPORT_WAS=$(cat "$REPORT_KNOB")
	echo 60000 > "$REPORT_KNOB" 2>/dev/null || REPORT_WAS=""
fi
cleanup() {
	if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	if [ -n "$REPORT_WAS" ]; then echo "$REPORT_WAS" > "$REPORT_KNOB" || true; fi
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
go build -o "$W/rawproduce" ./cmd/barge/perf/rawproduce
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cpu_seconds() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$1/status"; }

# mean_batch_bytes DIR: the mean size of the record batches in DIR's segments
# (read from their headers), which the file baselines then write.
mean_batch_bytes() {
	python3 - "$1" <<'PY'
import glob, struct, sys
n = total = 0
for path in glob.glob(sys.argv[1] + "/**/*.log", recursive=True):
    with open(path, "rb") as f:
        while True:
            head = f.read(12)
            if len(head) < 12:
                break
            size = struct.unpack(">i", head[8:12])[0] + 12
            n, total = n + 1, total + size
            f.seek(size - 12, 1)
print(total // n if n else 1048576)
PY
}

# run PARTITIONS [BATCH_BYTES]: a fresh broker, one produce run; prints
# "MB/s cpu_s_per_GB peak_rss_MiB idle_rss_MiB client_cpu_s_per_GB
# mean_batch_bytes". With
# BATCH_BYTES the producer is rawproduce, not franz-go: the same encoded
# requests (batches of that size, 2 MB per request) sent again and again by a
# program that spends next to no CPU, so that on this 2-core VM the broker
# does not share its core time with a busy client, just as pwritebase's
# floor does not.
run() {
	local parts=$1 lean=${2:-} kafka http out before after gb mibs idle
	kafka=127.0.0.1:$(port) http=127.0.0.1:$(port)
	rm -rf "$W/data"
	"$W/barge" serve --data "$W/data" --kafka "$kafka" --http "$http" --raft "127.0.0.1:$(port)" \
		--gossip "127.0.0.1:$(port)" --log-level warn > "$W/broker.log" 2>&1 &
	PID=$!
	"$W/barge" cluster health --brokers "$kafka" --admin "$http" --exit-when-healthy --timeout 30s > /dev/null
	"$W/barge" topic create t --brokers "$kafka" -p "$parts" -r 1 > /dev/null
	idle=$(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$PID/status")
	ballast
	before=$(cpu_seconds "$PID")
	local prof=""
	if [ -n "${PROFILE_DIR:-}" ]; then # a CPU profile of the first seconds of the produce run
		mkdir -p "$PROFILE_DIR"
		curl -s "http://$http/debug/pprof/profile?seconds=${PROFILE_SECONDS:-3}" -o "$PROFILE_DIR/broker-$parts.pprof" &
		prof=$!
	fi
	# The producer runs in a subshell whose `times` gives its CPU: on two
	# cores a busy client bounds the throughput as much as the broker.
	local times
	if [ -n "$lean" ]; then
		times=$( ("$W/rawproduce" -broker "$kafka" -topic t -partitions "$parts" -batch-bytes "$lean" \
			-per-request $(((2000000 + lean - 1) / lean)) -bytes $((RECORDS * 1024)) > "$W/produce.json"; times) | tail -1)
	else
		times=$( ("$W/barge" perf produce t --brokers "$kafka" --records "$RECORDS" --record-size 1024 --acks 1 --linger 5ms -o json > "$W/produce.json"; times) | tail -1)
	fi
	out=$(cat "$W/produce.json")
	after=$(cpu_seconds "$PID")
	if [ -n "$prof" ]; then wait "$prof" || true; fi
	mibs=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["mib_per_sec"])')
	gb=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"]/1e9)')
	local line
	line="$(awk -v m="$mibs" 'BEGIN{printf "%.1f", m*1048576/1e6}') $(awk -v a="$before" -v b="$after" -v g="$gb" 'BEGIN{printf "%.2f", (b-a)/g}') $(peak_rss_mib "$PID") $idle"
	# times prints the children's "XmY.YYYs XmZ.ZZZs" (user, system).
	line="$line $(echo "$times" | awk -v g="$gb" '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.2f", t / g }')"
	kill "$PID"
	wait "$PID" 2>/dev/null || true
	PID=""
	echo "$line $(mean_batch_bytes "$W/data")" # last: the caller reads it only once the broker is gone
}

# The baseline: a plain program pwrites the same number of bytes, one 1 MiB
# producer batch per write, to a fresh file (cmd/barge/perf/pwritebase).
# With -tcp it also receives each batch over loopback TCP and checks its
# CRC-32C first: the floor for any broker.
# With -files N -write-bytes B it writes as a run's appends do, B being the
# mean batch size found in that run's segments (franz-go's sticky
# partitioner closes batches of about 64 KB at 1,000 partitions, 1 MB at
# 10: unaligned small writes cost the kernel more per byte); with -tcp
# -splice it is the floor of a broker that spliced requests into its
# segments.
pwrite_cpu_per_gb() { ballast; "$W/pwritebase" -file "$W/pwrite.dat" -bytes $((RECORDS * 1024)) -write-bytes 1048576 "$@"; }
# ballast: write and delete one and a half runs' bytes, so the next writer
# takes pages the guest freed just now (see REPORT_KNOB above).
ballast() { "$W/pwritebase" -file "$W/ballast.dat" -bytes $((RECORDS * 1536)) > /dev/null; }

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
T=() C=() D=() F=() P=() K=() WS=() CK=() FB=() SB=() LT=() LC=() LD=() LF=() U=()
for i in $(seq "$RUNS"); do
	b1=$(pwrite_cpu_per_gb) f1=$(pwrite_cpu_per_gb -tcp) s1=$(pwrite_cpu_per_gb -tcp -splice)
	# The first writer after a run's files are deleted pays more per page
	# on this VM (the freed pages went back to the host), so the order of
	# the two brokers alternates from run to run.
	if [ $((i % 2)) = 1 ]; then
		read -r m10 c10 r10 i10 u10 bb10 < <(run 10)
		read -r m1k c1k r1k i1k u1k bb1k < <(run 1000)
	else
		read -r m1k c1k r1k i1k u1k bb1k < <(run 1000)
		read -r m10 c10 r10 i10 u10 bb10 < <(run 10)
	fi
	# The lean producer with the franz-go runs' batch sizes.
	read -r lm10 lc10 _ _ _ _ < <(run 10 "$bb10")
	read -r lm1k lc1k _ _ _ _ < <(run 1000 "$bb1k")
	b2=$(pwrite_cpu_per_gb) f2=$(pwrite_cpu_per_gb -tcp)
	# The two runs' write patterns without a broker: their batches' mean
	# size, round-robin over as many files as partitions.
	k1=$(pwrite_cpu_per_gb -files 10 -write-bytes "$bb10") k1k=$(pwrite_cpu_per_gb -files 1000 -write-bytes "$bb1k")
	# The same two batch sizes into one file: what the write size alone
	# costs, whatever the number of files (a write has a fixed cost in the
	# kernel, and franz-go's batches are 15 times smaller at 1,000
	# partitions).
	w1=$(pwrite_cpu_per_gb -write-bytes "$bb10") w1k=$(pwrite_cpu_per_gb -write-bytes "$bb1k")
	# The cheaper of the two runs before and after the brokers.
	cheaper() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (a<b)?a:b}'; }
	base=$(cheaper "$b1" "$b2") floor=$(cheaper "$f1" "$f2")
	bound=$((2 * i1k + CAP_MIB))
	T+=("$(ratio "$m1k" "$m10")") C+=("$(ratio "$c1k" "$c10")") D+=("$(ratio "$c10" "$base")") F+=("$(ratio "$c10" "$floor")") P+=("$(ratio "$r1k" "$bound")")
	K+=("$(ratio "$k1k" "$k1")") WS+=("$(ratio "$w1k" "$w1")") FB+=("$(ratio "$floor" "$base")") SB+=("$(ratio "$s1" "$base")")
	U+=("$(ratio "$u1k" "$u10")")
	CK+=("$(ratio "${C[-1]}" "${K[-1]}")")
	LT+=("$(ratio "$lm1k" "$lm10")") LC+=("$(ratio "$lc1k" "$lc10")") LD+=("$(ratio "$lc10" "$base")") LF+=("$(ratio "$lc10" "$floor")")
	echo
	echo "=== run $i ($(date -u +%FT%TZ)), $([ $((i % 2)) = 1 ] && echo "10 first" || echo "1000 first")"
	printf '%-44s %10s %10s\n' "" "10" "1000"
	printf '%-44s %10s %10s\n' "produce MB/s" "$m10" "$m1k"
	printf '%-44s %10s %10s\n' "broker CPU s per GB" "$c10" "$c1k"
	printf '%-44s %10s %10s\n' "franz-go client CPU s per GB" "$u10" "$u1k"
	printf '%-44s %10s\n' "client CPU per GB 1000 : 10" "${U[-1]}"
	printf '%-44s %10s %10s\n' "broker RSS idle / peak (MiB)" "$i10/$r10" "$i1k/$r1k"
	printf '%-44s %10s\n' "throughput 1000 : 10 (goal >= 0.8)" "${T[-1]}"
	printf '%-44s %10s\n' "CPU per GB 1000 : 10 (goal <= 1.3)" "${C[-1]}"
	printf '%-44s %10s\n' "pwrite baseline CPU s per GB (before/after)" "$b1/$b2"
	printf '%-44s %10s\n' "CPU per GB 10 partitions : pwrite (goal <= 1.3)" "${D[-1]}"
	printf '%-44s %10s\n' "recv+CRC+pwrite floor CPU s per GB (before/after)" "$f1/$f2"
	printf '%-44s %10s\n' "CPU per GB 10 partitions : floor" "${F[-1]}"
	printf '%-44s %10s\n' "floor : pwrite" "${FB[-1]}"
	printf '%-44s %10s %10s\n' "lean producer: produce MB/s" "$lm10" "$lm1k"
	printf '%-44s %10s %10s\n' "lean producer: broker CPU s per GB" "$lc10" "$lc1k"
	printf '%-44s %10s\n' "lean: throughput 1000 : 10" "${LT[-1]}"
	printf '%-44s %10s\n' "lean: CPU per GB 1000 : 10" "${LC[-1]}"
	printf '%-44s %10s\n' "lean: CPU per GB 10 : pwrite (goal <= 1.3)" "${LD[-1]}"
	printf '%-44s %10s\n' "lean: CPU per GB 10 : floor" "${LF[-1]}"
	printf '%-44s %10s\n' "splice floor CPU s per GB; : pwrite" "$s1; ${SB[-1]}"
	printf '%-44s %10s\n' "mean batch bytes" "$bb10 $bb1k"
	printf '%-44s %10s\n' "pwrite of those batches to 10 / 1000 files" "$k1/$k1k"
	printf '%-44s %10s\n' "pwrite CPU per GB 1000 files : 10 files" "${K[-1]}"
	printf '%-44s %10s\n' "pwrite of those batch sizes to 1 file" "$w1/$w1k"
	printf '%-44s %10s\n' "pwrite CPU per GB, write size alone 1000 : 10" "${WS[-1]}"
	printf '%-44s %10s\n' "broker's 1000 : 10 over the kernel's" "${CK[-1]}"
	printf '%-44s %10s\n' "peak RSS 1000 : (2 x idle + ${CAP_MIB} MiB cap) (goal < 1)" "${P[-1]}"
done
if [ "$RUNS" -gt 1 ]; then
	echo
	echo "=== all runs"
	summary "throughput 1000 : 10 (goal >= 0.8)" "${T[@]}"
	summary "CPU per GB 1000 : 10 (goal <= 1.3)" "${C[@]}"
	summary "franz-go client CPU per GB 1000 : 10" "${U[@]}"
	summary "CPU per GB 10 : pwrite (goal <= 1.3)" "${D[@]}"
	summary "CPU per GB 10 : recv+CRC+pwrite floor" "${F[@]}"
	summary "floor : pwrite" "${FB[@]}"
	summary "lean: throughput 1000 : 10" "${LT[@]}"
	summary "lean: CPU per GB 1000 : 10" "${LC[@]}"
	summary "lean: CPU per GB 10 : pwrite (goal <= 1.3)" "${LD[@]}"
	summary "lean: CPU per GB 10 : floor" "${LF[@]}"
	summary "splice floor : pwrite" "${SB[@]}"
	summary "pwrite CPU per GB 1000 files : 10 files" "${K[@]}"
	summary "pwrite CPU per GB, write size alone 1000 : 10" "${WS[@]}"
	summary "broker's 1000 : 10 over the kernel's" "${CK[@]}"
	summary "peak RSS 1000 : (2 x idle + cap) (goal < 1)" "${P[@]}"
fi

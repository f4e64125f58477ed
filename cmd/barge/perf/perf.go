// Package perf is `barge perf`, the load generator: `perf produce` writes
// records as fast as allowed and measures per-record latency (from Produce
// to the acknowledgement) in an HDR-style histogram; `perf consume` reads
// records as fast as it can. Both print a progress line every second on a
// terminal and a summary, as a table or as JSON/YAML.
package perf

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// NewCommand builds `barge perf` and its verbs.
func NewCommand(deps *cli.Deps) *cobra.Command {
	cmd, c := cli.NewNoun(deps, "perf", "Load generator: produce or consume records as fast as the cluster allows",
		`Measure the cluster: 'perf produce' writes records and reports throughput
and latency percentiles (as kafka-producer-perf-test); 'perf consume'
reads them back and reports throughput (as kafka-consumer-perf-test).

A progress line goes to stderr every second when stderr is a terminal
(--progress forces it on or off); the summary goes to stdout.`)
	cmd.AddCommand(newProduceCommand(c), newConsumeCommand(c))
	return cmd
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func latencyOf(s *snapshot) Latency {
	return Latency{
		Mean: ms(s.Mean()), P50: ms(s.Percentile(0.50)), P95: ms(s.Percentile(0.95)),
		P99: ms(s.Percentile(0.99)), P999: ms(s.Percentile(0.999)), Max: ms(s.max),
	}
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

const mib = 1 << 20

// counters are what the progress line and the summary read; updated from
// producer promises and consumer loops.
type counters struct {
	records atomic.Int64
	bytes   atomic.Int64
	failed  atomic.Int64
}

// progress prints a line every interval to w until stop is closed, then
// signals done. line formats one interval.
func progress(w io.Writer, interval time.Duration, stop <-chan struct{}, done chan<- struct{}, line func(elapsed, dt time.Duration) string) {
	defer close(done)
	start := time.Now()
	last := start
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			fmt.Fprintln(w, line(now.Sub(start), now.Sub(last)))
			last = now
		}
	}
}

// rate is a per-second rate of n over d.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// group formats n with thousands separators: 1,234,567.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtMs formats milliseconds for tables.
func fmtMs(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "ms" }

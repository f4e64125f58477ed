// Package report renders DIR/report.html: one self-contained page (inline
// SVG plots drawn with gonum/plot, no scripts, no external files) with the
// verdict, the anomalies' examples, the fault windows, acknowledged sends
// per interval and the slowest acknowledgement per interval.
package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/barge-broker/barge/jepsen/checker"
	"github.com/barge-broker/barge/jepsen/history"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// bucket is the plots' interval.
const bucket = 250e6 // ns

type window struct {
	Kind, Target string
	CSS          template.CSS
	// Gaps is, per partition, the longest stretch without an
	// acknowledgement from the fault's start to 10 s after its end
	// ("p0 3.1 s, p1 0.8 s"): which partitions it made unavailable.
	Gaps       string
	Start, End float64 // seconds
}

// faultWindows pairs each fault's invocation with the heal that ends it.
func faultWindows(ops []history.Op, end float64) []window {
	var out []window
	open := map[string]int{} // "kind target" → index in out
	for _, op := range ops {
		if op.Process != history.NemesisProcess || op.Type != history.Invoke || op.F == history.FLogScan {
			continue
		}
		t := float64(op.Time) / 1e9
		if op.F == history.FHeal {
			if i, ok := open[op.Target]; ok {
				out[i].End = t
				delete(open, op.Target)
			}
			continue
		}
		open[op.F+" "+op.Target] = len(out)
		css := "#e6e6e6"
		for _, s := range shades {
			if s.Kind == op.F {
				css = s.CSS
			}
		}
		out = append(out, window{Kind: op.F, Target: op.Target, CSS: template.CSS(css), Start: t, End: end})
	}
	return out
}

// addGaps fills each window's Gaps.
func addGaps(ops []history.Op, windows []window) {
	acks := map[int32][]float64{} // partition → ack times, in order
	for _, op := range ops {
		if op.F == history.FSend && op.Type == history.OK {
			acks[op.Partition] = append(acks[op.Partition], float64(op.Time)/1e9)
		}
	}
	parts := make([]int32, 0, len(acks))
	for p := range acks {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for i := range windows {
		w := &windows[i]
		from, to := w.Start, w.End+10
		var out []string
		for _, p := range parts {
			a := acks[p]
			k := sort.SearchFloat64s(a, from)
			prev, gap := from, 0.0
			for ; k < len(a) && a[k] <= to; k++ {
				gap = max(gap, a[k]-prev)
				prev = a[k]
			}
			gap = max(gap, to-prev)
			out = append(out, fmt.Sprintf("p%d %.1f s", p, gap))
		}
		w.Gaps = strings.Join(out, ", ")
	}
}

type series struct {
	acks    plotter.XYs // acknowledged sends per second, per bucket
	latency plotter.XYs // slowest acknowledgement in the bucket, ms
	end     float64
}

func sendSeries(ops []history.Op) series {
	invoked := map[string]int64{}
	count := map[int64]float64{}
	worst := map[int64]float64{}
	var last int64
	for _, op := range ops {
		last = max(last, op.Time)
		if op.F != history.FSend {
			continue
		}
		if op.Type == history.Invoke {
			invoked[op.Value] = op.Time
			continue
		}
		if op.Type != history.OK {
			continue
		}
		b := op.Time / bucket
		count[b]++
		if t0, ok := invoked[op.Value]; ok {
			worst[b] = max(worst[b], float64(op.Time-t0)/1e6)
		}
	}
	s := series{end: float64(last) / 1e9}
	for b := int64(0); b <= last/bucket; b++ {
		x := float64(b*bucket) / 1e9
		s.acks = append(s.acks, plotter.XY{X: x, Y: count[b] * 1e9 / bucket})
		s.latency = append(s.latency, plotter.XY{X: x, Y: worst[b]})
	}
	return s
}

// shades are the fault windows' colours, light enough for the line to
// show through; the legend in the page names them.
var shades = []struct {
	Kind, CSS string
	C         color.RGBA
}{
	{"kill", "#ffbebe", color.RGBA{R: 255, G: 190, B: 190, A: 255}},
	{"pause", "#bed2ff", color.RGBA{R: 190, G: 210, B: 255, A: 255}},
	{"partition", "#ffe1a0", color.RGBA{R: 255, G: 225, B: 160, A: 255}},
	{"netem", "#c8f0c8", color.RGBA{R: 200, G: 240, B: 200, A: 255}},
	{"power-loss", "#e6c8ff", color.RGBA{R: 230, G: 200, B: 255, A: 255}},
	{"disk-full", "#d2d2d2", color.RGBA{R: 210, G: 210, B: 210, A: 255}},
}

func shade(kind string) color.Color {
	for _, s := range shades {
		if s.Kind == kind {
			return s.C
		}
	}
	return color.RGBA{R: 230, G: 230, B: 230, A: 255}
}

// explain says what each anomaly means, for the reader of the page.
var explain = map[string]string{
	checker.LostWrite:           "a committed send (ok, or seen by a read) missing from the final read, which read past its offset",
	checker.Duplicate:           "one value at two offsets",
	checker.InconsistentOffsets: "one offset holding two values, or a value read elsewhere than acknowledged (divergent logs)",
	checker.NonmonotonicPoll:    "a consumer's poll going back to or before where its previous one ended, within one assignment",
	checker.PollSkip:            "a consumer's poll jumping over offsets that hold records, within one assignment",
	checker.Unseen:              "an acknowledged send beyond where the final read ended (lost or late)",
	checker.Phantom:             "a read returned a value nobody sent",
	checker.AbortedRead:         "a read returned a value whose send definitely failed",
	checker.NonmonotonicSend:    "one producer's later send to a partition landed below its earlier one",
	checker.RealtimeOrder:       "a send invoked after another was acknowledged landed at or below it",
	checker.NonlinearAppend:     "porcupine found no order of the appends matching offsets and real time",
	checker.CommittedSkip:       "the consumer group committed past a record no member was given",
	checker.MultipleLeaders:     "two brokers named leader of one partition in one epoch",
	checker.EpochRegression:     "a broker's metadata went back to an older leader epoch",
	checker.BrokerAlert:         "a broker log line meaning a bug: a panic, a broken invariant, a data race",
	checker.HWRegression:        "a leader reported a lower high watermark than one reported before at the same or an older epoch",
}

// clipped returns a series and its plot's top: two and a half times the
// 90th percentile (the catch-up bursts right after a fault heals would squash
// the steady rate into the axis otherwise), the series cut at that top
// so no line leaves the plot, and the title saying so when it cut.
func clipped(title string, xys plotter.XYs) (string, plotter.XYs, float64) {
	ys := make([]float64, 0, len(xys))
	peak := 0.0
	for _, p := range xys {
		ys = append(ys, p.Y)
		peak = max(peak, p.Y)
	}
	sort.Float64s(ys)
	top := peak
	if len(ys) > 0 {
		top = min(peak, ys[len(ys)*90/100]*2.5)
	}
	if top <= 0 {
		return title, xys, 1
	}
	out := make(plotter.XYs, len(xys))
	for i, p := range xys {
		out[i] = plotter.XY{X: p.X, Y: min(p.Y, top)}
	}
	if top < peak {
		title = fmt.Sprintf("%s, cut at %.0f (peak %.0f)", title, top, peak)
	}
	return title, out, top
}

// niceCeil rounds x up to a round multiple of a power of ten, so the axis
// ticks fall on round numbers.
func niceCeil(x float64) float64 {
	step := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*step >= x {
			return m * step
		}
	}
	return 10 * step
}

func peak(xys plotter.XYs) float64 {
	m := 0.0
	for _, p := range xys {
		m = max(m, p.Y)
	}
	return m
}

// svg draws one time plot with the fault windows shaded behind the line.
func svg(title string, xys plotter.XYs, ymax float64, windows []window, ylabel string) (template.HTML, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = ylabel
	p.Y.Min, p.Y.Max = 0, niceCeil(ymax*1.05+1)
	for _, w := range windows {
		poly, err := plotter.NewPolygon(plotter.XYs{{X: w.Start, Y: 0}, {X: w.End, Y: 0}, {X: w.End, Y: p.Y.Max}, {X: w.Start, Y: p.Y.Max}})
		if err != nil {
			return "", err
		}
		poly.Color = shade(w.Kind)
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	line, err := plotter.NewLine(xys)
	if err != nil {
		return "", err
	}
	p.Add(line)
	wt, err := p.WriterTo(10*vg.Inch, 3*vg.Inch, "svg")
	if err != nil {
		return "", fmt.Errorf("report: render %s: %w", title, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", err
	}
	// Inlined from its <svg> element on (an XML declaration means nothing
	// inside HTML). The SVG is ours, drawn from numbers: safe as is.
	out := buf.String()
	if i := strings.Index(out, "<svg"); i >= 0 {
		out = out[i:]
	}
	return template.HTML(out), nil
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>barge-jepsen report</title>
<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}td,th{padding:2px 8px;text-align:left}
.bad{color:#b00;font-weight:bold}.good{color:#070;font-weight:bold}code{font-size:90%}
.why{color:#555;font-size:90%}.key{padding:1px 6px;border:1px solid #999}svg{max-width:100%;height:auto}</style></head><body>
<h1>barge-jepsen: {{if .V.Valid}}<span class="good">valid</span>{{else}}<span class="bad">anomalies found</span>{{end}}</h1>
<table><tr><th>ops</th><td>{{.V.Ops}}</td></tr>
<tr><th>sends</th><td>ok {{.V.SendsOK}}, fail {{.V.SendsFail}}, info {{.V.SendsInfo}}</td></tr>
<tr><th>acks by client</th><td>{{range $k, $n := .V.Clients}}{{$k}} {{$n}} {{end}}</td></tr>
<tr><th>group consumers</th><td>{{.V.GroupPolls}} polls, {{.V.Commits}} commits</td></tr>
<tr><th>white-box samples</th><td>{{.V.Observations}}</td></tr>
<tr><th>porcupine</th><td>{{.V.Porcupine}}</td></tr>
<tr><th>faults</th><td>{{.V.Faults}}: {{range $k, $n := .V.FaultsByKind}}{{$k}} {{$n}} {{end}}</td></tr>
<tr><th>worst unavailability</th><td>{{.V.WorstUnavailabilityMs}} ms; per partition: {{range $p, $ms := .V.UnavailabilityByPartition}}p{{$p}} {{$ms}} ms {{end}}</td></tr></table>
<h2>Anomalies</h2><table>{{range .Anomalies}}<tr><th>{{.Name}}</th><td{{if .Count}} class="bad"{{end}}>{{.Count}}</td><td class="why">{{.Why}}</td></tr>
{{range .Examples}}<tr><td></td><td colspan="2"><code>{{.}}</code></td></tr>{{end}}{{end}}</table>
<h2>Throughput and latency</h2><p>Shaded in the plots: {{range .Shades}}<span class="key" style="background:{{.CSS}}">{{.Kind}}</span> {{end}}</p>
<h3>Acknowledged sends</h3>{{.Acks}}
<h3>Slowest acknowledgement</h3>{{.Latency}}
<h2>Faults</h2>
<table>{{range .Windows}}<tr><td><span class="key" style="background:{{.CSS}}">{{.Kind}}</span></td><td>{{.Target}}</td><td>{{printf "%.1f" .Start}} s – {{printf "%.1f" .End}} s</td><td class="why">longest without an ack: {{.Gaps}}</td></tr>{{end}}</table>
</body></html>
`))

type anomalyRow struct {
	Name     string
	Count    int
	Why      string
	Examples []string
}

// Write renders the report of ops and v to path.
func Write(path string, ops []history.Op, v checker.Verdict) error {
	s := sendSeries(ops)
	windows := faultWindows(ops, s.end)
	addGaps(ops, windows)
	title, xys, top := clipped("acknowledged sends per second (250 ms buckets)", s.acks)
	acks, err := svg(title, xys, top, windows, "sends/s")
	if err != nil {
		return err
	}
	// Latency keeps its full scale: its peaks are what it shows.
	lat, err := svg("slowest acknowledgement per 250 ms (invoke to ok)", s.latency, peak(s.latency), windows, "ms")
	if err != nil {
		return err
	}
	var rows []anomalyRow
	for _, n := range checker.Names {
		rows = append(rows, anomalyRow{Name: n, Count: v.Anomalies[n], Why: explain[n], Examples: v.Examples[n]})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Count > rows[j].Count })
	var buf bytes.Buffer
	if err := page.Execute(&buf, map[string]any{"V": v, "Anomalies": rows, "Windows": windows, "Acks": acks, "Latency": lat, "Shades": shades}); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return nil
}

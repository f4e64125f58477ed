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
	Start, End   float64 // seconds
}

// faultWindows pairs each fault's invocation with the heal that ends it.
func faultWindows(ops []history.Op, end float64) []window {
	var out []window
	open := map[string]int{} // "kind target" → index in out
	for _, op := range ops {
		if op.Process != history.NemesisProcess || op.Type != history.Invoke {
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
		out = append(out, window{Kind: op.F, Target: op.Target, Start: t, End: end})
	}
	return out
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

// svg draws one time plot with the fault windows shaded behind the line.
func svg(title, ylabel string, xys plotter.XYs, windows []window, ymax float64) (template.HTML, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = ylabel
	p.Y.Min, p.Y.Max = 0, ymax*1.05+1
	shades := map[string]color.Color{
		"kill":      color.RGBA{R: 255, G: 190, B: 190, A: 255},
		"pause":     color.RGBA{R: 190, G: 210, B: 255, A: 255},
		"partition": color.RGBA{R: 255, G: 225, B: 160, A: 255},
	}
	for _, w := range windows {
		poly, err := plotter.NewPolygon(plotter.XYs{{X: w.Start, Y: 0}, {X: w.End, Y: 0}, {X: w.End, Y: p.Y.Max}, {X: w.Start, Y: p.Y.Max}})
		if err != nil {
			return "", err
		}
		poly.Color = shades[w.Kind]
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
.bad{color:#b00;font-weight:bold}.good{color:#070;font-weight:bold}code{font-size:90%}</style></head><body>
<h1>barge-jepsen: {{if .V.Valid}}<span class="good">valid</span>{{else}}<span class="bad">anomalies found</span>{{end}}</h1>
<table><tr><th>ops</th><td>{{.V.Ops}}</td></tr>
<tr><th>sends</th><td>ok {{.V.SendsOK}}, fail {{.V.SendsFail}}, info {{.V.SendsInfo}}</td></tr>
<tr><th>faults</th><td>{{.V.Faults}}</td></tr>
<tr><th>worst unavailability</th><td>{{.V.WorstUnavailabilityMs}} ms</td></tr></table>
<h2>Anomalies</h2><table>{{range .Anomalies}}<tr><th>{{.Name}}</th><td{{if .Count}} class="bad"{{end}}>{{.Count}}</td></tr>
{{range .Examples}}<tr><td></td><td><code>{{.}}</code></td></tr>{{end}}{{end}}</table>
<h2>Faults</h2><p>Shaded in the plots: kill red, pause blue, partition yellow.</p>
<table>{{range .Windows}}<tr><td>{{.Kind}}</td><td>{{.Target}}</td><td>{{printf "%.1f" .Start}} s – {{printf "%.1f" .End}} s</td></tr>{{end}}</table>
<h2>Acknowledged sends</h2>{{.Acks}}
<h2>Slowest acknowledgement</h2>{{.Latency}}
</body></html>
`))

type anomalyRow struct {
	Name     string
	Count    int
	Examples []string
}

// Write renders the report of ops and v to path.
func Write(path string, ops []history.Op, v checker.Verdict) error {
	s := sendSeries(ops)
	windows := faultWindows(ops, s.end)
	ymax := func(xys plotter.XYs) float64 {
		m := 0.0
		for _, p := range xys {
			m = max(m, p.Y)
		}
		return m
	}
	acks, err := svg("acknowledged sends per second (250 ms buckets)", "sends/s", s.acks, windows, ymax(s.acks))
	if err != nil {
		return err
	}
	lat, err := svg("slowest acknowledgement per 250 ms (invoke to ok)", "ms", s.latency, windows, ymax(s.latency))
	if err != nil {
		return err
	}
	var rows []anomalyRow
	for _, n := range checker.Names {
		rows = append(rows, anomalyRow{Name: n, Count: v.Anomalies[n], Examples: v.Examples[n]})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Count > rows[j].Count })
	var buf bytes.Buffer
	if err := page.Execute(&buf, map[string]any{"V": v, "Anomalies": rows, "Windows": windows, "Acks": acks, "Latency": lat}); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return nil
}

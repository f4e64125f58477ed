package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/barge-broker/barge/jepsen/checker"
	"github.com/barge-broker/barge/jepsen/history"
)

func TestWriteIsSelfContained(t *testing.T) {
	off := func(o int64) *int64 { return &o }
	ops := []history.Op{
		{Process: 0, Type: history.Invoke, F: history.FSend, Value: "a", Time: 0},
		{Process: 0, Type: history.OK, F: history.FSend, Value: "a", Offset: off(0), Time: 3e6},
		{Process: history.NemesisProcess, Type: history.Invoke, F: "kill", Target: "n2", Time: 100e6},
		{Process: history.NemesisProcess, Type: history.OK, F: "kill", Target: "n2", Time: 101e6},
		{Process: 0, Type: history.Invoke, F: history.FSend, Value: "b", Time: 200e6},
		{Process: history.NemesisProcess, Type: history.Invoke, F: history.FHeal, Target: "kill n2", Time: 900e6},
		{Process: 0, Type: history.OK, F: history.FSend, Value: "b", Offset: off(1), Time: 1200e6},
	}
	v := checker.Check(ops)
	path := filepath.Join(t.TempDir(), "report.html")
	if err := Write(path, ops, v); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{"<svg", "kill", "n2", "0.1 s – 0.9 s", "lost-write", "longest without an ack: p0 9.7 s"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=\"http", "href=\"http"} {
		if strings.Contains(html, bad) {
			t.Errorf("report is not self-contained: has %q", bad)
		}
	}
}

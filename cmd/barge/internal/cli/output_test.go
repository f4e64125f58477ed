package cli

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

type sample struct {
	Name    string   `json:"name"`
	Count   int      `json:"count"`
	Numeric string   `json:"numeric"`
	Boolish string   `json:"boolish"`
	Empty   string   `json:"empty"`
	Missing *string  `json:"missing"`
	IDs     []int32  `json:"ids"`
	None    []string `json:"none"`
}

func TestPrintFormats(t *testing.T) {
	v := sample{Name: "orders", Count: 3, Numeric: "123", Boolish: "true", IDs: []int32{1, 2}, None: []string{}}
	var buf bytes.Buffer
	if err := Print(&buf, FormatJSON, v, nil); err != nil {
		t.Fatal(err)
	}
	want := `{
  "name": "orders",
  "count": 3,
  "numeric": "123",
  "boolish": "true",
  "empty": "",
  "missing": null,
  "ids": [
    1,
    2
  ],
  "none": []
}
`
	if buf.String() != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := Print(&buf, FormatYAML, v, nil); err != nil {
		t.Fatal(err)
	}
	// The JSON names, in the JSON order; strings that would read as
	// numbers or booleans stay strings.
	want = `name: orders
count: 3
numeric: "123"
boolish: "true"
empty: ""
missing: null
ids:
  - 1
  - 2
none: []
`
	if buf.String() != want {
		t.Errorf("YAML:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	err := Print(&buf, FormatTable, v, func(w io.Writer) error {
		tb := NewTable(w, "NAME", "COUNT", "IDS", "EMPTY")
		tb.Row(v.Name, v.Count, Int32s(v.IDs), v.Empty)
		tb.Row("a-much-longer-name", 10, Int32s(nil), nil)
		return tb.Flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	want = `NAME                COUNT  IDS  EMPTY
orders              3      1,2  -
a-much-longer-name  10     -    -
`
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestPrintLine(t *testing.T) {
	var buf bytes.Buffer
	v := map[string]int{"a": 1}
	PrintLine(&buf, FormatJSON, v, nil)
	PrintLine(&buf, FormatYAML, v, nil)
	PrintLine(&buf, FormatTable, v, func(w io.Writer) error { _, err := io.WriteString(w, "row\n"); return err })
	if want := "{\"a\":1}\n---\na: 1\nrow\n"; buf.String() != want {
		t.Errorf("PrintLine: %q, want %q", buf.String(), want)
	}
}

func TestOutputFlag(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := NewOutput(FormatTable)
	AddOutputFlag(fs, o, "o")
	if err := fs.Parse([]string{"-o", "JSON"}); err != nil || o.Format != FormatJSON || !o.Changed() {
		t.Errorf("-o JSON: %v %v", err, o.Format)
	}
	if err := fs.Parse([]string{"--output", "xml"}); err == nil || !strings.Contains(err.Error(), "want table, json or yaml") {
		t.Errorf("--output xml: %v", err)
	}
}

func TestClusterFlagsPrecedence(t *testing.T) {
	env := map[string]string{}
	deps := &Deps{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	parse := func(args ...string) *ClusterFlags {
		c := NewClusterFlags(deps)
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		c.AddFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return c
	}
	check := func(c *ClusterFlags, brokers, admin string) {
		t.Helper()
		b, err := c.Brokers()
		if err != nil {
			t.Fatal(err)
		}
		a, err := c.Admin()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(b, ",") != brokers || strings.Join(a, ",") != admin {
			t.Errorf("brokers %v admin %v, want %s and %s", b, a, brokers, admin)
		}
	}
	check(parse(), "127.0.0.1:9092", "127.0.0.1:9644")
	env[BrokersEnv], env[AdminEnv] = "e1:9092, e2:9092", "e1:9644"
	check(parse(), "e1:9092,e2:9092", "e1:9644")
	check(parse("--brokers", "f1:1", "--brokers", "f2:2,f3:3", "--admin", "f1:9644"), "f1:1,f2:2,f3:3", "f1:9644")
	env[BrokersEnv] = " , "
	var usage *UsageError
	if _, err := parse().Brokers(); !errors.As(err, &usage) {
		t.Errorf("empty %s: %v, want a usage error", BrokersEnv, err)
	}
}

package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Format is how a command prints its result: a table for people, JSON or
// YAML for scripts. JSON and YAML carry the same snake_case fields, which
// are a stable API; tables may change.
type Format string

const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
	FormatYAML  Format = "yaml"
)

// Output is the value of a command's -o/--output flag (a pflag.Value). A
// bad value fails flag parsing, which is a usage error.
type Output struct {
	Format  Format
	changed bool
}

// NewOutput returns an --output value defaulting to def.
func NewOutput(def Format) *Output { return &Output{Format: def} }

func (o *Output) String() string { return string(o.Format) }
func (o *Output) Type() string   { return "format" }

func (o *Output) Set(s string) error {
	switch f := Format(strings.ToLower(s)); f {
	case FormatTable, FormatJSON, FormatYAML:
		o.Format, o.changed = f, true
		return nil
	}
	return fmt.Errorf("%q is not an output format: want table, json or yaml", s)
}

// Changed reports whether the flag was given.
func (o *Output) Changed() bool { return o.changed }

// AddOutputFlag registers --output (with shorthand, "" for none) on fs.
// `consume` registers it without -o, which it keeps for --offset as rpk
// and kcat do.
func AddOutputFlag(fs *pflag.FlagSet, o *Output, shorthand string) {
	fs.VarP(o, "output", shorthand, "output format: table, json or yaml")
}

// Print writes v to w as JSON or YAML, or calls table for the table format.
// JSON is indented; YAML has the JSON field names in the same order.
func Print(w io.Writer, f Format, v any, table func(w io.Writer) error) error {
	switch f {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case FormatYAML:
		out, err := YAML(v)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	default:
		return table(w)
	}
}

// PrintLine writes v as one line of compact JSON, or a YAML document
// starting with "---", for commands that stream results (consume, health
// --watch). table is called for the table format.
func PrintLine(w io.Writer, f Format, v any, table func(w io.Writer) error) error {
	switch f {
	case FormatJSON:
		return json.NewEncoder(w).Encode(v)
	case FormatYAML:
		out, err := YAML(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "---\n%s", out)
		return err
	default:
		return table(w)
	}
}

// YAML renders v through its JSON encoding, so YAML keys are exactly the
// JSON field names (json tags), in the same order, in block style.
func YAML(v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	// JSON is YAML; decoding into a node keeps the key order.
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("yaml from json: %w", err)
	}
	blockStyle(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// blockStyle drops the flow and quoting styles the JSON source gave the
// nodes; the encoder quotes only the strings that need it.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// Table writes aligned columns (text/tabwriter), a header row first.
type Table struct{ tw *tabwriter.Writer }

// NewTable starts a table on w with the given column headers (none for a
// key-value listing).
func NewTable(w io.Writer, headers ...string) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(headers) > 0 {
		t.Row(toAny(headers)...)
	}
	return t
}

// Row adds a row; values print with %v, nil and empty strings as "-".
func (t *Table) Row(cols ...any) {
	for i, c := range cols {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		s := fmt.Sprint(c)
		if c == nil || s == "" {
			s = "-"
		}
		io.WriteString(t.tw, strings.ReplaceAll(s, "\t", " "))
	}
	io.WriteString(t.tw, "\n")
}

// Flush writes the aligned table out.
func (t *Table) Flush() error { return t.tw.Flush() }

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Section writes a heading for one part of a table listing.
func Section(w io.Writer, title string) {
	fmt.Fprintf(w, "%s\n%s\n", title, strings.Repeat("=", len(title)))
}

// Int32s formats ids as a comma-separated list: "1,2,3".
func Int32s(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ",")
}

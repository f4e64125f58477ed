package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// How `barge serve` is configured: every setting is a field with one name.
// The name is the flag (--kafka), the key in the YAML config file (kafka:)
// and, as BARGE_ + upper case with '-' → '_', the environment variable
// (BARGE_KAFKA). The value of a setting comes from the highest source that
// sets it: flags, then the environment, then the file, then the default.
// Sources do not merge: BARGE_JOIN replaces the file's join list, it does
// not add to it.

// settings is everything the serve command resolves from its sources.
type settings struct {
	Broker    broker.Config
	LogFormat string // text or json
	LogLevel  string // debug, info, warn or error
}

func defaultSettings() settings {
	return settings{Broker: broker.DefaultConfig(), LogFormat: "text", LogLevel: "info"}
}

// envPrefix starts every environment variable barge reads.
const envPrefix = "BARGE_"

// configEnv names the config file when --config is not given.
const configEnv = envPrefix + "CONFIG"

// envName is the environment variable of the setting name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// source is where a setting's value came from. Higher sources win.
type source int

const (
	fromDefault source = iota
	fromFile
	fromEnv
	fromFlag
)

func (s source) String() string {
	return [...]string{"default", "file", "env", "flag"}[s]
}

// field is one setting. set parses values and stores them in a settings; it
// gets exactly one value unless list is true, and its errors do not repeat
// the value (the caller says which flag, variable or key it came from).
type field struct {
	name   string
	group  string // fields storing the same value (log-retention-ms, -hours) share a group; "" means name
	typ    string // the value's kind in --help: int, string, strings, bool, duration
	usage  string
	list   bool
	isBool bool                            // a bare --flag means true
	show   func(*settings) string          // the value as --help shows a default
	set    func(*settings, []string) error // parse and store
}

func (f *field) key() string {
	if f.group != "" {
		return f.group
	}
	return f.name
}

func stringField(name, usage string, ptr func(*settings) *string) field {
	return field{
		name: name, typ: "string", usage: usage,
		show: func(s *settings) string { return *ptr(s) },
		set:  func(s *settings, v []string) error { *ptr(s) = v[0]; return nil },
	}
}

// secretField is a string that is never shown: --help and the debug log
// of the resolved settings print "(set)" instead of its value.
func secretField(name, usage string, ptr func(*settings) *string) field {
	f := stringField(name, usage, ptr)
	f.show = func(s *settings) string {
		if *ptr(s) == "" {
			return ""
		}
		return "(set)"
	}
	return f
}

// choiceField is a string that must be one of choices.
func choiceField(name, usage string, choices []string, ptr func(*settings) *string) field {
	f := stringField(name, usage, ptr)
	f.set = func(s *settings, v []string) error {
		if !slices.Contains(choices, v[0]) {
			return fmt.Errorf("must be one of %s", strings.Join(choices, ", "))
		}
		*ptr(s) = v[0]
		return nil
	}
	return f
}

// listField is a list of strings; every source may give it comma-separated,
// and flags may also repeat.
func listField(name, usage string, ptr func(*settings) *[]string) field {
	return field{
		name: name, typ: "strings", usage: usage, list: true,
		show: func(s *settings) string { return strings.Join(*ptr(s), ",") },
		set:  func(s *settings, v []string) error { *ptr(s) = slices.Clone(v); return nil },
	}
}

// listenersField is a list of NAME=host:port listeners, parsed by
// broker.ParseListener so that a malformed one is a usage error naming its
// source.
func listenersField(name, usage string, ptr func(*settings) *[]broker.Listener) field {
	return field{
		name: name, typ: "strings", usage: usage, list: true,
		show: func(s *settings) string {
			parts := make([]string, len(*ptr(s)))
			for i, l := range *ptr(s) {
				parts[i] = l.String()
			}
			return strings.Join(parts, ",")
		},
		set: func(s *settings, v []string) error {
			ls := make([]broker.Listener, 0, len(v))
			for _, item := range v {
				l, err := broker.ParseListener(item)
				if err != nil {
					return err
				}
				ls = append(ls, l)
			}
			*ptr(s) = ls
			return nil
		},
	}
}

func boolField(name, usage string, ptr func(*settings) *bool) field {
	return field{
		name: name, typ: "bool", usage: usage, isBool: true,
		show: func(s *settings) string { return strconv.FormatBool(*ptr(s)) },
		set: func(s *settings, v []string) error {
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return errors.New("not a boolean (true or false)")
			}
			*ptr(s) = b
			return nil
		},
	}
}

type signed interface {
	~int | ~int16 | ~int32 | ~int64
}

func intField[T signed](name, usage string, ptr func(*settings) *T) field {
	return field{
		name: name, typ: "int", usage: usage,
		show: func(s *settings) string { return strconv.FormatInt(int64(*ptr(s)), 10) },
		set: func(s *settings, v []string) error {
			n, err := parseInt(v[0], reflect.TypeFor[T]().Bits())
			if err != nil {
				return err
			}
			*ptr(s) = T(n)
			return nil
		},
	}
}

// parseInt reads a decimal integer; '_' may group digits (1_048_576).
func parseInt(s string, bits int) (int64, error) {
	n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(s), "_", ""), 10, bits)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("out of range for a %d-bit integer", bits)
	case err != nil:
		return 0, errors.New("not an integer")
	}
	return n, nil
}

// durationField takes Go's duration syntax: 30s, 1m30s, 2h.
func durationField(name, usage string, ptr func(*settings) *time.Duration) field {
	return field{
		name: name, typ: "duration", usage: usage,
		show: func(s *settings) string { return ptr(s).String() },
		set: func(s *settings, v []string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v[0]))
			if err != nil {
				return errors.New("not a duration (like 30s, 5m or 1h30m)")
			}
			*ptr(s) = d
			return nil
		},
	}
}

// unitField is a duration given as an integer count of unit, the way Kafka
// spells them (log.retention.ms=604800000). A negative count is stored as
// is; storage reads a negative retention as "keep forever".
func unitField(name, group, usage string, unit time.Duration, ptr func(*settings) *time.Duration) field {
	return field{
		name: name, group: group, typ: "int", usage: usage,
		show: func(s *settings) string { return strconv.FormatInt(int64(*ptr(s)/unit), 10) },
		set: func(s *settings, v []string) error {
			n, err := parseInt(v[0], 64)
			if err != nil {
				return err
			}
			if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
				return errors.New("out of range")
			}
			*ptr(s) = time.Duration(n) * unit
			return nil
		},
	}
}

// splitList splits a comma-separated list, dropping blanks around and
// between items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// flagValue is the pflag.Value of every serve flag. It records the strings
// given rather than writing the settings, because whether the flag wins is
// decided in load, after every source is read. Set still parses into a
// scratch settings, so a malformed value fails flag parsing (a usage error).
type flagValue struct {
	f   *field
	def string   // the default, for --help
	raw []string // nil until Set
}

func (v *flagValue) String() string {
	if v.raw == nil {
		return v.def
	}
	return strings.Join(v.raw, ",")
}

func (v *flagValue) Type() string { return v.f.typ }

func (v *flagValue) Set(s string) error {
	next := []string{s}
	if v.f.list {
		// Repeats append: --join a --join b,c is [a b c].
		next = append(slices.Clone(v.raw), splitList(s)...)
	}
	var scratch settings
	if err := v.f.set(&scratch, next); err != nil {
		return err
	}
	v.raw = next
	return nil
}

// addFlags registers one flag per field on fs, with the field's environment
// variable in its usage and the default taken from defaults.
func addFlags(fs *pflag.FlagSet, fields []field, defaults settings) {
	for i := range fields {
		f := &fields[i]
		v := &flagValue{f: f, def: f.show(&defaults)}
		fl := fs.VarPF(v, f.name, "", fmt.Sprintf("%s (env %s)", f.usage, envName(f.name)))
		if f.isBool {
			fl.NoOptDefVal = "true"
		}
	}
}

// loaded is what load resolved.
type loaded struct {
	settings
	sources map[string]source // by field name; a field at its default is absent
}

// load resolves fields over defaults: the config file at path (none if
// path is ""), then the environment, then the flags set on fs. For each
// field (or group of fields storing one value) the highest source that sets
// it wins; setting two fields of one group in the same source is an error.
// Every error is a *cli.UsageError naming the flag, variable or key.
func load(fields []field, defaults settings, fs *pflag.FlagSet, lookupEnv func(string) (string, bool), path string) (loaded, error) {
	out := loaded{settings: defaults, sources: map[string]source{}}
	var file map[string]fileValue
	if path != "" {
		var err error
		if file, err = readConfigFile(path, fields); err != nil {
			return out, cli.Usage(err)
		}
	}

	// given is one source's value of one field.
	type given struct {
		f    *field
		vals []string
		name func() string // for errors: --id, BARGE_ID=..., config file line
	}
	done := map[string]bool{}
	for i := range fields {
		key := fields[i].key()
		if done[key] {
			continue
		}
		done[key] = true
		for _, src := range []source{fromFlag, fromEnv, fromFile} {
			var set []given
			for j := range fields {
				f := &fields[j]
				if f.key() != key {
					continue
				}
				switch src {
				case fromFlag:
					if fl := fs.Lookup(f.name); fl != nil && fl.Changed {
						raw := fl.Value.(*flagValue).raw
						set = append(set, given{f, raw, func() string { return "--" + f.name }})
					}
				case fromEnv:
					if s, ok := lookupEnv(envName(f.name)); ok {
						vals := []string{s}
						if f.list {
							vals = splitList(s)
						}
						set = append(set, given{f, vals, func() string { return fmt.Sprintf("%s=%q", envName(f.name), s) }})
					}
				case fromFile:
					if fv, ok := file[f.name]; ok {
						set = append(set, given{f, fv.vals, func() string {
							return fmt.Sprintf("config file %s line %d: %s", path, fv.line, f.name)
						}})
					}
				}
			}
			if len(set) > 1 {
				return out, cli.Usagef("%s and %s set the same thing; give only one", set[0].name(), set[1].name())
			}
			if len(set) == 1 {
				g := set[0]
				if err := g.f.set(&out.settings, g.vals); err != nil {
					return out, cli.Usagef("%s: %w", g.name(), err)
				}
				out.sources[g.f.name] = src
				break
			}
		}
	}
	return out, nil
}

// fileValue is one key of the config file.
type fileValue struct {
	vals []string
	line int
}

// readConfigFile reads a YAML mapping from setting names to values. A list
// field takes a YAML sequence or a comma-separated string; other fields take
// a scalar. Unknown and repeated keys are errors.
func readConfigFile(path string, fields []field) (map[string]fileValue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]fileValue{}
	if len(doc.Content) == 0 { // empty or only comments
		return out, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s line %d: want a mapping of setting names to values", path, top.Line)
	}
	byName := map[string]*field{}
	for i := range fields {
		byName[fields[i].name] = &fields[i]
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		f := byName[k.Value]
		switch {
		case k.Kind != yaml.ScalarNode:
			return nil, fmt.Errorf("config file %s line %d: keys must be setting names", path, k.Line)
		case f == nil:
			return nil, fmt.Errorf("config file %s line %d: unknown key %q%s", path, k.Line, k.Value, suggest(k.Value, fields))
		}
		if prev, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("config file %s line %d: key %q repeats line %d", path, k.Line, k.Value, prev.line)
		}
		vals, err := nodeValues(f, v)
		if err != nil {
			return nil, fmt.Errorf("config file %s line %d: %s: %w", path, v.Line, k.Value, err)
		}
		out[k.Value] = fileValue{vals: vals, line: k.Line}
	}
	return out, nil
}

// nodeValues turns a YAML value into the strings a field parses.
func nodeValues(f *field, v *yaml.Node) ([]string, error) {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null" && f.list:
		return nil, nil // `join:` or `join: ~` is the empty list
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null" && f.typ == "string":
		return []string{""}, nil // `http:` disables the HTTP listener
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return nil, errors.New("needs a value")
	case v.Kind == yaml.ScalarNode && f.list:
		return splitList(v.Value), nil
	case v.Kind == yaml.ScalarNode:
		return []string{v.Value}, nil
	case v.Kind == yaml.SequenceNode && f.list:
		var vals []string
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: list items must be strings", item.Line)
			}
			vals = append(vals, strings.TrimSpace(item.Value))
		}
		return vals, nil
	case v.Kind == yaml.SequenceNode:
		return nil, errors.New("takes one value, not a list")
	default:
		return nil, errors.New("takes a value, not a mapping")
	}
}

// unknownEnv lists the BARGE_ variables in environ that name no field.
func unknownEnv(environ []string, fields []field) []string {
	known := map[string]bool{configEnv: true, cli.BrokersEnv: true, cli.AdminEnv: true} // the admin CLI's
	for i := range fields {
		known[envName(fields[i].name)] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) && !known[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// suggest names the field closest to a mistyped key, as ` (did you mean
// "kafka"?)`, or returns "".
func suggest(key string, fields []field) string {
	norm := strings.ToLower(strings.ReplaceAll(key, "_", "-"))
	best, bestDist := "", 3 // suggest only within two edits
	for i := range fields {
		if d := editDistance(norm, fields[i].name); d < bestDist {
			best, bestDist = fields[i].name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

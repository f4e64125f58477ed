package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Environment variables of the admin commands, read when the matching flag
// is not given. `barge serve` knows them too, so it does not warn about
// them as unknown.
const (
	BrokersEnv = "BARGE_BROKERS"
	AdminEnv   = "BARGE_ADMIN"
)

// Defaults of the cluster addresses: a broker started with `barge serve`
// and no flags.
var (
	DefaultBrokers = []string{"127.0.0.1:9092"}
	DefaultAdmin   = []string{"127.0.0.1:9644"}
)

// ClusterFlags are --brokers and --admin, where the admin commands find the
// cluster. Each noun command registers them as persistent flags; RunE reads
// them through Brokers and Admin, which apply flag > environment > default.
type ClusterFlags struct {
	deps    *Deps
	brokers listValue
	admin   listValue
}

// NewClusterFlags returns the flags of one command tree, reading the
// environment through deps.
func NewClusterFlags(deps *Deps) *ClusterFlags { return &ClusterFlags{deps: deps} }

// AddFlags registers --brokers and --admin on fs.
func (c *ClusterFlags) AddFlags(fs *pflag.FlagSet) {
	fs.Var(&c.brokers, "brokers", fmt.Sprintf("Kafka addresses of brokers to bootstrap from, host:port, comma-separated (env %s; default %s)",
		BrokersEnv, strings.Join(DefaultBrokers, ",")))
	fs.Var(&c.admin, "admin", fmt.Sprintf("HTTP admin addresses of brokers (their --http), host:port, comma-separated (env %s; default %s)",
		AdminEnv, strings.Join(DefaultAdmin, ",")))
}

// Brokers returns the Kafka bootstrap addresses.
func (c *ClusterFlags) Brokers() ([]string, error) {
	return c.resolve(&c.brokers, "--brokers", BrokersEnv, DefaultBrokers)
}

// Admin returns the HTTP admin addresses.
func (c *ClusterFlags) Admin() ([]string, error) {
	return c.resolve(&c.admin, "--admin", AdminEnv, DefaultAdmin)
}

func (c *ClusterFlags) resolve(v *listValue, flag, env string, def []string) ([]string, error) {
	if v.set {
		if len(v.vals) == 0 {
			return nil, Usagef("%s: give at least one host:port", flag)
		}
		return slices.Clone(v.vals), nil
	}
	lookup := os.LookupEnv
	if c.deps != nil && c.deps.LookupEnv != nil {
		lookup = c.deps.LookupEnv
	}
	if s, ok := lookup(env); ok {
		vals := SplitList(s)
		if len(vals) == 0 {
			return nil, Usagef("%s=%q: give at least one host:port", env, s)
		}
		return vals, nil
	}
	return slices.Clone(def), nil
}

// listValue is a comma-separated, repeatable string list flag.
type listValue struct {
	vals []string
	set  bool
}

func (l *listValue) String() string { return strings.Join(l.vals, ",") }
func (l *listValue) Type() string   { return "strings" }

func (l *listValue) Set(s string) error {
	l.vals = append(l.vals, SplitList(s)...)
	l.set = true
	return nil
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// IsTerminal reports whether w is a terminal (a character device), where
// long-running commands show progress.
func IsTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Common is what every admin command reads besides its own flags: the
// process deps, where the cluster is (--brokers, --admin) and how to print
// (--output). One Common serves a whole command tree (a noun and its
// verbs); the flags are parsed before RunE reads it.
type Common struct {
	*Deps
	Cluster *ClusterFlags
	Out     *Output
}

// NewCommon registers --brokers, --admin and --output (with shorthand
// outputShort, "" for none) on fs, with def as the default format.
func NewCommon(deps *Deps, fs *pflag.FlagSet, def Format, outputShort string) *Common {
	c := &Common{Deps: deps, Cluster: NewClusterFlags(deps), Out: NewOutput(def)}
	c.Cluster.AddFlags(fs)
	AddOutputFlag(fs, c.Out, outputShort)
	return c
}

// Print writes v in the chosen format (see the package-level Print).
func (c *Common) Print(v any, table func(w io.Writer) error) error {
	return Print(c.Stdout, c.Out.Format, v, table)
}

// NewNoun builds the command of a noun (`barge topic`): it only holds its
// verbs, prints its help when run alone, and reports an unknown verb as a
// usage error with a suggestion. The admin flags become persistent flags of
// the noun, shared by its verbs.
func NewNoun(deps *Deps, use, short, long string) (*cobra.Command, *Common) {
	cmd := &cobra.Command{
		Use:                        use,
		Short:                      short,
		Long:                       long,
		Args:                       NoSubcommand,
		SuggestionsMinimumDistance: 2,
		RunE:                       func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().SortFlags = false
	return cmd, NewCommon(deps, cmd.PersistentFlags(), FormatTable, "o")
}

// NoSubcommand accepts no positional arguments on a command that only
// groups others: an argument there is a mistyped verb.
func NoSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return Usagef("%s", msg)
}

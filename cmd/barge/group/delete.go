package group

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// GroupResult is the outcome for one group of `group delete`.
type GroupResult struct {
	Group string `json:"group"`
	// Error is empty on success.
	Error string `json:"error"`
}

func newDeleteCommand(c *cli.Common) *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete groups and their committed offsets",
		Long: `Delete consumer groups with all their committed offsets (DeleteGroups). A
group with active members is refused: stop its consumers first. A consumer
that later joins a deleted group starts from its auto.offset.reset.`,
		Example: `  barge group delete billing
  barge group delete old-a old-b -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, groups []string) error {
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			// Per-group errors are in resps; err covers brokers that did
			// not answer, whose groups have no response.
			resps, err := adm.DeleteGroups(ctx, groups...)
			if err != nil && len(resps) == 0 {
				return fmt.Errorf("delete groups: %w", err)
			}
			out := struct {
				Groups []GroupResult `json:"groups"`
			}{Groups: []GroupResult{}}
			failed := 0
			for _, g := range groups {
				res := GroupResult{Group: g, Error: "no answer for this group"}
				if r, ok := resps[g]; ok {
					res.Error = errorText(g, "", r.Err)
				} else if err != nil {
					res.Error = fmt.Sprintf("no answer for this group: %v", err)
				}
				if res.Error != "" {
					failed++
				}
				out.Groups = append(out.Groups, res)
			}
			if err := c.Print(out, func(w io.Writer) error {
				t := cli.NewTable(w, "GROUP", "STATUS")
				for _, r := range out.Groups {
					status := "deleted"
					if r.Error != "" {
						status = r.Error
					}
					t.Row(r.Group, status)
				}
				return t.Flush()
			}); err != nil {
				return err
			}
			return cli.Failed(failed, len(groups), "groups")
		},
	}
}

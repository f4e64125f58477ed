package checker

import (
	"fmt"
	"sort"
	"strings"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func posList(ps map[pos]bool) string {
	out := make([]string, 0, len(ps))
	for p := range ps {
		out = append(out, fmt.Sprintf("%d/%d", p.partition, p.offset))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

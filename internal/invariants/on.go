//go:build race || invariants

package invariants

// Enabled: see the package comment.
const Enabled = true

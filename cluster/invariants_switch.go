package cluster

import "github.com/barge-broker/barge/internal/invariants"

// raceEnabled turns on the invariant checks of apply (internal/invariants:
// race builds and the invariants build tag).
const raceEnabled = invariants.Enabled

package cli

import (
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain", errors.New("boom"), ExitFailure},
		{"usage", Usagef("bad %s", "flag"), ExitUsage},
		{"wrapped usage", fmt.Errorf("serve: %w", Usage(errors.New("bad"))), ExitUsage},
		{"unreachable", &UnreachableError{Err: errors.New("dial")}, ExitUnreachable},
		{"unhealthy", &UnhealthyError{Reasons: []string{"broker 2 down"}}, ExitUnhealthy},
		{"wrapped unreachable", fmt.Errorf("topic create: %w", &UnreachableError{Err: errors.New("dial")}), ExitUnreachable},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("%s: ExitCode = %d, want %d", tc.name, got, tc.want)
		}
	}
	if Usage(nil) != nil {
		t.Error("Usage(nil) is not nil")
	}
}

package invariants

import (
	"strings"
	"testing"
)

func TestBroken(t *testing.T) {
	defer func() {
		p := recover()
		if Enabled && p == nil {
			t.Fatal("Broken did not panic with invariants enabled")
		}
		if !Enabled && p != nil {
			t.Fatalf("Broken panicked with invariants disabled: %v", p)
		}
	}()
	err := Broken("pkg", "offset %d went back", 3)
	if !strings.Contains(err.Error(), "pkg: invariant broken: offset 3 went back") {
		t.Fatalf("error %q", err)
	}
}

package mir_test

import (
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

func TestModuleIDPath(t *testing.T) {
	tests := []struct {
		id        mir.ModuleID
		top, sub  mir.ModuleID
		wantValid bool
	}{
		{"iss", "iss", "", true},
		{"iss/pbft", "iss", "pbft", true},
		{"iss/pbft/3", "iss", "pbft/3", true},
		{"", "", "", false},
		{"/iss", "", "iss", false},
		{"iss/", "iss", "", false},
		{"iss//3", "iss", "/3", false},
		{"/", "", "", false},
	}
	for _, tc := range tests {
		if got := tc.id.Top(); got != tc.top {
			t.Errorf("%q.Top() = %q, want %q", tc.id, got, tc.top)
		}
		if got := tc.id.Sub(); got != tc.sub {
			t.Errorf("%q.Sub() = %q, want %q", tc.id, got, tc.sub)
		}
		if got := tc.id.Valid(); got != tc.wantValid {
			t.Errorf("%q.Valid() = %v, want %v", tc.id, got, tc.wantValid)
		}
	}
}

func TestModuleIDThen(t *testing.T) {
	tests := []struct{ id, child, want mir.ModuleID }{
		{"iss", "pbft", "iss/pbft"},
		{"iss/pbft", "3", "iss/pbft/3"},
		{"", "pbft", "pbft"},
		{"iss", "", "iss"},
		{"", "", ""},
	}
	for _, tc := range tests {
		if got := tc.id.Then(tc.child); got != tc.want {
			t.Errorf("%q.Then(%q) = %q, want %q", tc.id, tc.child, got, tc.want)
		}
	}
}

// TestModuleIDRoundTrip: Then and Top/Sub are inverse for valid paths.
func TestModuleIDRoundTrip(t *testing.T) {
	for _, id := range []mir.ModuleID{"a", "a/b", "a/b/c", "iss/pbft/17"} {
		if got := id.Top().Then(id.Sub()); got != id {
			t.Errorf("Top(%q).Then(Sub) = %q", id, got)
		}
	}
}

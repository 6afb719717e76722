package history_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/history"
)

// TestReadHistoryPacked reads the same history from loose objects and from
// a pack whose trees and commits are stored as deltas (offset deltas, as
// git writes them, and deltas that name their base by hash), which the
// walker resolves itself: the changes must be the same.
func TestReadHistoryPacked(t *testing.T) {
	h := newHistRepo(t)
	opts := history.Options{KeyRing: h.keyring}
	loose := readHistory(t, h.bare, opts)
	for _, tc := range []struct {
		name       string
		offsetBase string
	}{
		{"offset deltas", "true"},
		{"ref deltas", "false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gittest.Git(t, h.bare, "-c", "repack.useDeltaBaseOffset="+tc.offsetBase,
				"repack", "-q", "-a", "-d", "-f", "--depth=50", "--window=50")
			if count := gittest.Git(t, h.bare, "count-objects", "-v"); !strings.Contains(count, "count: 0\n") {
				t.Fatalf("objects left loose:\n%s", count)
			}
			if !strings.Contains(gittest.Git(t, h.bare, "verify-pack", "-v", packIndex(t, h.bare)), "chain length = ") {
				t.Fatal("the pack holds no delta: the test reads nothing the walker resolves")
			}
			if got := readHistory(t, h.bare, opts); !reflect.DeepEqual(got, loose) {
				t.Fatalf("packed:\n%+v\nloose:\n%+v", got, loose)
			}
		})
	}
}

// packIndex returns the path of the one pack index of the bare repository.
func packIndex(t *testing.T, bare string) string {
	t.Helper()
	idx, err := filepath.Glob(filepath.Join(bare, "objects", "pack", "*.idx"))
	if err != nil || len(idx) != 1 {
		t.Fatalf("pack indexes %v: %v", idx, err)
	}
	return idx[0]
}

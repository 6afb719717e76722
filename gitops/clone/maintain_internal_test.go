package clone

import (
	"slices"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestPickMerge(t *testing.T) {
	h := func(i int) plumbing.Hash { return plumbing.Hash{byte(i)} }
	packs := func(sizes ...int64) []sizedPack {
		out := make([]sizedPack, len(sizes))
		for i, s := range sizes {
			out[i] = sizedPack{hash: h(i), objects: s}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		packs []sizedPack
		limit int64
		want  []plumbing.Hash
	}{
		{"pushes of the same size all go, the clone stays", packs(100000, 4, 4, 4, 4), 1000, []plumbing.Hash{h(1), h(2), h(3), h(4)}},
		{"a merged pack joins once the small ones reach half of it", packs(100000, 30, 6, 6, 6), 1000, []plumbing.Hash{h(2), h(3), h(4), h(1)}},
		{"a merged pack twice the small ones stays", packs(100000, 40, 6, 6, 6, 1), 1000, []plumbing.Hash{h(5), h(2), h(3), h(4)}},
		{"a progression at the top stays", packs(100000, 400, 100, 30, 6, 6), 1000, []plumbing.Hash{h(4), h(5)}},
		{"a progression: the two smallest", packs(100000, 64, 16, 4, 1), 1000, []plumbing.Hash{h(4), h(3)}},
		{"packs past the limit are never merged", packs(100000, 5000, 3000, 4, 4), 1000, []plumbing.Hash{h(3), h(4)}},
		{"only full packs: nothing", packs(100000, 5000, 3000, 4), 1000, nil},
		{"one pack: nothing", packs(100000), 1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pickMerge(tc.packs, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("pickMerge = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMergesStayBounded pushes one small pack at a time through the
// geometric choice and checks that the objects merged in all stay within a
// logarithmic factor of those pushed, and that no merge passes the limit:
// merging everything but the largest pack each time re-merged every object
// pushed so far.
func TestMergesStayBounded(t *testing.T) {
	const push, maxPacks, limit, rounds = 6, 50, 1 << 14, 20000
	packs := []sizedPack{{hash: plumbing.Hash{0, 0, 0, 1}, objects: 700000}}
	var merged, next int64
	largest := int64(0)
	for range rounds {
		next++
		packs = append(packs, sizedPack{hash: plumbing.Hash{byte(next), byte(next >> 8), byte(next >> 16)}, objects: push})
		if len(packs) <= maxPacks {
			continue
		}
		chosen := pickMerge(packs, limit)
		if len(chosen) < 2 {
			continue
		}
		var sum int64
		packs = slices.DeleteFunc(packs, func(p sizedPack) bool {
			if slices.Contains(chosen, p.hash) {
				sum += p.objects
				return true
			}
			return false
		})
		merged += sum
		largest = max(largest, sum)
		next++
		packs = append(packs, sizedPack{hash: plumbing.Hash{byte(next), byte(next >> 8), byte(next >> 16)}, objects: sum})
	}
	pushed := int64(push * rounds)
	if merged > 20*pushed {
		t.Errorf("merged %d objects for %d pushed: more than log2 of the limit each", merged, pushed)
	}
	if largest > 2*limit+maxPacks*push {
		t.Errorf("a merge of %d objects, past twice the limit of %d", largest, limit)
	}
	if len(packs) > maxPacks+1 {
		t.Errorf("%d packs left, want at most %d", len(packs), maxPacks+1)
	}
}

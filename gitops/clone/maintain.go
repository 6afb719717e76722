package clone

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// consolidate merges the small packs that pushes and fetches leave behind,
// so object lookups, which consult every pack index, do not slow down as
// they pile up. Which packs it merges is chosen as git's geometric repack
// does (pickMerge): each object is merged again only a logarithmic number
// of times, and a merge never takes a pack of more than mergeCap objects,
// so its cost and memory stay bounded however long the bot runs (merging
// everything but the largest pack every time re-encoded every object
// pushed since the start, ever more slowly, and its peak memory grew with
// it). The largest pack, normally the initial clone, is never merged:
// go-git rewriting it takes tens of seconds on a long history (32 s for
// 20,000 commits here).
func (r *Repo) consolidate() error {
	packs, err := r.stor.ObjectPacks()
	if err != nil {
		return fmt.Errorf("list packs: %w", err)
	}
	if len(packs) <= r.opts.MaxPacks {
		return nil
	}
	start := time.Now()
	sized, err := r.packSizes(packs)
	if err != nil {
		return err
	}
	small := pickMerge(sized, mergeCap)
	if len(small) < 2 {
		return nil // every pack but the largest is full: nothing to gain
	}
	var objects []plumbing.Hash
	for _, p := range small {
		hs, err := r.packObjects(p)
		if err != nil {
			return err
		}
		objects = append(objects, hs...)
	}
	w, err := r.stor.PackfileWriter()
	if err != nil {
		return fmt.Errorf("merge packs: %w", err)
	}
	_, err = packfile.NewEncoder(w, r.stor, false).Encode(objects, 10)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("merge packs: %w", err)
	}
	// The merged pack holds every object now: the old ones can go. A crash
	// in between leaves duplicates, which are harmless.
	for _, p := range small {
		if err := r.stor.DeleteOldObjectPackAndIndex(p, time.Time{}); err != nil {
			return fmt.Errorf("remove merged pack %s: %w", p, err)
		}
	}
	// Reopen, so that no cached index refers to a removed pack.
	if err := r.stor.Close(); err != nil {
		return fmt.Errorf("reopen clone: %w", err)
	}
	if err := r.open(); err != nil {
		return err
	}
	r.opts.Logger.Info("merged packs", "packs", len(small), "objects", len(objects), "took", time.Since(start))
	return nil
}

// mergeCap is the most objects a pack may hold to be merged into another:
// a larger one is left as it is. go-git's encoder holds every object of a
// merge in memory while it looks for deltas; 16,384 objects of a config
// repository (trees of a few hundred entries, small files) keep that to
// tens of MiB. The packs left behind are one per 16,384 objects pushed
// (a few thousand commits each).
const mergeCap = 1 << 14

// sizedPack is a pack and how many objects it holds.
type sizedPack struct {
	hash    plumbing.Hash
	objects int64
}

// pickMerge chooses the packs to merge, as `git repack --geometric=2`
// does. Of the packs it may merge (sorted by size; never the largest pack
// nor one of more than limit objects), those at the top that each hold at
// least twice the one below stay; the rest are merged, with every next pack
// that holds fewer than twice their objects. The packs left form a
// progression in which each holds at least twice the one before, so an
// object is merged again only a logarithmic number of times. When the
// packs already form one, the two smallest are merged (consolidate runs
// only when there are too many packs).
func pickMerge(packs []sizedPack, limit int64) []plumbing.Hash {
	if len(packs) < 2 {
		return nil
	}
	sorted := slices.Clone(packs)
	slices.SortStableFunc(sorted, func(a, b sizedPack) int { return cmp.Compare(a.objects, b.objects) })
	sorted = sorted[:len(sorted)-1] // the largest
	m := 0
	for m < len(sorted) && sorted[m].objects <= limit {
		m++
	}
	sorted = sorted[:m]
	if len(sorted) < 2 {
		return nil
	}
	top := len(sorted) - 1
	for top > 0 && sorted[top].objects >= 2*sorted[top-1].objects {
		top--
	}
	top = max(top, 1) // a whole progression: the two smallest
	var chosen []plumbing.Hash
	var sum int64
	for i, p := range sorted {
		if i > top && p.objects >= 2*sum {
			break
		}
		chosen = append(chosen, p.hash)
		sum += p.objects
	}
	return chosen
}

// packSizes tells how many objects each pack holds, from the size of its
// index (version 2: a 1,032-byte header and fan-out, 28 bytes per object
// and 8 more per object past 2 GiB, and two 20-byte checksums), so that no
// index is read.
func (r *Repo) packSizes(packs []plumbing.Hash) ([]sizedPack, error) {
	out := make([]sizedPack, len(packs))
	for i, p := range packs {
		fi, err := os.Stat(r.packPath(p, "idx"))
		if err != nil {
			return nil, fmt.Errorf("merge packs: %w", err)
		}
		out[i] = sizedPack{hash: p, objects: max(0, (fi.Size()-1072)/28)}
	}
	return out, nil
}

func (r *Repo) packPath(h plumbing.Hash, ext string) string {
	return filepath.Join(r.opts.Dir, "objects", "pack", fmt.Sprintf("pack-%s.%s", h, ext))
}

// packObjects lists the objects of one pack from its index.
func (r *Repo) packObjects(p plumbing.Hash) ([]plumbing.Hash, error) {
	f, err := os.Open(r.packPath(p, "idx"))
	if err != nil {
		return nil, fmt.Errorf("merge packs: %w", err)
	}
	defer f.Close() //nolint:errcheck // read-only
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(f).Decode(idx); err != nil {
		return nil, fmt.Errorf("read index of pack %s: %w", p, err)
	}
	entries, err := idx.Entries()
	if err != nil {
		return nil, fmt.Errorf("read index of pack %s: %w", p, err)
	}
	defer entries.Close() //nolint:errcheck // in memory
	var hs []plumbing.Hash
	for {
		e, err := entries.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read index of pack %s: %w", p, err)
		}
		hs = append(hs, e.Hash)
	}
	return hs, nil
}

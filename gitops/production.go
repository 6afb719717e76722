package gitops

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/gitops/trailer"
	"github.com/promotebot/promotebot/promote"
)

// maxHistoryWalk bounds the commits ProductionHistory reads: of a project
// whose production image changed less than limit times within the config
// branch's last 20,000 commits, it lists what it found there.
const maxHistoryWalk = 20_000

// walkChunk is how many commits one Read of ProductionHistory walks: the
// changes queued behind it wait for that many at most.
const walkChunk = 500

// ProductionHistory implements promote.ProductionRepo. It walks the first
// parents of the config branch from the tip the clone knows (its last fetch
// or push: no fetch is made for it), newest first, at most maxHistoryWalk
// commits, and lists each commit whose production overlay
// (<path>/overlays/production/kustomization.yaml) pins another image of the
// project than its first parent's (overlay.PinnedImage): edits of that file
// that leave the image alone are not changes. Build and RollbackOf are the
// commit's trailers when they are production's for p, or for a merge
// without them, those of the branch it merged (a pull request GitHub
// merged). A project without a valid image repository is promote.ErrInvalid.
func (c *ConfigRepo) ProductionHistory(ctx context.Context, p promote.Project, limit int) ([]promote.ProductionChange, error) {
	if _, err := overlay.PinnedImage(p, nil); err != nil {
		return nil, promote.Invalid(err)
	}
	w := &productionWalk{p: p, file: path.Join(p.Path, "overlays", "production", "kustomization.yaml"), limit: limit,
		images: map[string]string{}}
	for !w.done() {
		if err := c.repo.Read(ctx, nil, w.step); err != nil {
			return nil, fmt.Errorf("production history of %s: %w", p.ID, err)
		}
	}
	return w.out, nil
}

// productionWalk is ProductionHistory's walk, carried from one Read to
// the next.
type productionWalk struct {
	p      promote.Project
	file   string
	limit  int
	out    []promote.ProductionChange
	walked int
	// started is set once the tip was read; next is the commit to look at
	// then ("" once the root was), nextID its production file's id.
	started      bool
	next, nextID string
	// images holds the image each production file pins, by object id.
	images map[string]string
}

func (w *productionWalk) done() bool {
	return len(w.out) >= w.limit || w.walked >= maxHistoryWalk || (w.started && w.next == "")
}

// step walks up to walkChunk commits.
func (w *productionWalk) step(v *clone.View) error {
	if !w.started {
		tip, err := v.Tip()
		if err != nil {
			return err
		}
		w.started, w.next = true, tip
		if tip != "" {
			if w.nextID, err = v.FileID(tip, w.file); err != nil {
				return err
			}
		}
	}
	for n := 0; n < walkChunk && !w.done(); n++ {
		c, err := v.Commit(w.next)
		if err != nil {
			return err
		}
		parent, parentID := "", ""
		if len(c.Parents) > 0 {
			parent = c.Parents[0]
			if parentID, err = v.FileID(parent, w.file); err != nil {
				return err
			}
		}
		if w.nextID != parentID && w.nextID != "" {
			if err := w.compare(v, c, w.nextID, parent, parentID); err != nil {
				return err
			}
		}
		w.next, w.nextID = parent, parentID
		w.walked++
	}
	return nil
}

// compare lists commit c when the image its production file (id) pins is
// another than its first parent's (parentID, "" when it has none).
func (w *productionWalk) compare(v *clone.View, c clone.Commit, id, parent, parentID string) error {
	image, err := w.image(v, c.Hash, id)
	if err != nil || image == "" {
		return err
	}
	if parentID != "" {
		before, err := w.image(v, parent, parentID)
		if err != nil || before == image {
			return err
		}
	}
	ch := promote.ProductionChange{Image: image, Commit: c.Hash, At: c.Committed}
	build, of, ok := w.trailers(c.Message)
	if !ok && len(c.Parents) > 1 {
		merged, err := v.Commit(c.Parents[1])
		if err != nil {
			return err
		}
		build, of, _ = w.trailers(merged.Message)
	}
	ch.Build, ch.RollbackOf = build, of
	w.out = append(w.out, ch)
	return nil
}

// image reads the image the production file with object id pins in commit
// rev, once per id.
func (w *productionWalk) image(v *clone.View, rev, id string) (string, error) {
	if image, ok := w.images[id]; ok {
		return image, nil
	}
	f, err := v.Files(rev)
	if err != nil {
		return "", err
	}
	data, err := f.ReadFile(w.file)
	if err != nil {
		return "", fmt.Errorf("read %s at %s: %w", w.file, rev, err)
	}
	image, err := overlay.PinnedImage(w.p, data)
	if err != nil {
		return "", err
	}
	w.images[id] = image
	return image, nil
}

// trailers reads a commit message's Promotebot-Build and
// Promotebot-Rollback-Of when its trailers are production's for the
// project (ok), as the bot writes them.
func (w *productionWalk) trailers(msg string) (build, rollbackOf string, ok bool) {
	var project, env string
	for _, t := range trailer.Parse(msg) {
		switch {
		case strings.EqualFold(t.Key, trailer.Project):
			project = t.Value
		case strings.EqualFold(t.Key, trailer.Environment):
			env = t.Value
		case strings.EqualFold(t.Key, trailer.Build):
			build = t.Value
		case strings.EqualFold(t.Key, trailer.RollbackOf):
			rollbackOf = t.Value
		}
	}
	if project != w.p.ID || env != trailer.Production {
		return "", "", false
	}
	return build, rollbackOf, true
}

package gitops

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/promote"
)

var _ promote.Revisions = (*ConfigRepo)(nil)

// Contains implements promote.Revisions: it walks the clone's history from
// revision back (clone.View.Contains), fetching a revision the clone does
// not have yet. Answers are kept, a few thousand of them: whether one commit
// is an ancestor of another never changes.
func (c *ConfigRepo) Contains(ctx context.Context, revision, commit string) (bool, error) {
	key := [2]string{strings.ToLower(revision), strings.ToLower(commit)}
	if ok, found := c.ancestry.get(key); found {
		return ok, nil
	}
	var ok bool
	err := c.repo.Read(ctx, []string{revision, commit}, func(v *clone.View) error {
		var err error
		ok, err = v.Contains(revision, commit)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("look for commit %s: %w", commit, err)
	}
	c.ancestry.put(key, ok)
	return ok, nil
}

// Pins implements promote.Revisions: it reads the overlay's
// kustomization.yaml at revision (overlay.PinCheck). An env that is neither
// "production" nor "qa/<env>" is refused (promote.ErrInvalid).
func (c *ConfigRepo) Pins(ctx context.Context, p promote.Project, revision, env, image string) (bool, error) {
	check, err := overlay.PinCheck(p, env, image)
	if err != nil {
		return false, promote.Invalid(err)
	}
	var pinned bool
	err = c.repo.Read(ctx, []string{revision}, func(v *clone.View) error {
		f, err := v.Files(revision)
		if err != nil {
			return err
		}
		pinned, err = check(f)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%s of %s: %w", env, p.ID, err)
	}
	return pinned, nil
}

// maxAnswers bounds the answers of Contains that a ConfigRepo keeps.
const maxAnswers = 4096

// answers keeps answers of Contains by (revision, commit), forgetting the
// oldest beyond maxAnswers. Its zero value is ready to use.
type answers struct {
	mu    sync.Mutex
	m     map[[2]string]bool
	order [][2]string // ring of the keys in m, oldest at next once full
	next  int
}

func (a *answers) get(key [2]string) (ok, found bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ok, found = a.m[key]
	return ok, found
}

func (a *answers) put(key [2]string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[[2]string]bool{}
	}
	if _, found := a.m[key]; found {
		return
	}
	if len(a.order) < maxAnswers {
		a.order = append(a.order, key)
	} else {
		delete(a.m, a.order[a.next])
		a.order[a.next] = key
		a.next = (a.next + 1) % maxAnswers
	}
	a.m[key] = ok
}

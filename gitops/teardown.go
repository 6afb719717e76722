package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/gitops/trailer"
	"github.com/promotebot/promotebot/promote"
)

var _ promote.EnvironmentRepo = (*ConfigRepo)(nil)

// TearDownQA implements promote.EnvironmentRepo: the QA environment e.Name
// ("qa/<env>") of p loses its whole folder, <path>/overlays/qa/<env>/, in
// one commit to the config branch, "Tear down qa/<env> of <project>", with
// the trailers Promotebot-Project, Promotebot-Environment and
// Promotebot-Teardown: reason (overlay.TearDownQA). Only a folder whose
// kustomization.yaml says e's kind and target own it is removed; another
// is refused with an error wrapping promote.ErrNotOurs, and nothing is
// committed. A folder that is gone already is no change: "" and no error.
// A name that is not "qa/<env>" (production, a path) is promote.ErrInvalid.
//
// It is made at most once (since: when the teardown was asked): a commit
// after since that carries those three trailers is the teardown, landed
// by an earlier attempt, and is returned; but not one older than the
// deploy of e's newest build (e.BuildID), which belongs to an earlier life
// of the environment, torn down with the same reason minutes before it
// came back.
func (c *ConfigRepo) TearDownQA(ctx context.Context, p promote.Project, e promote.Environment, reason string,
	since time.Time) (string, error) {
	if e.Project != "" && e.Project != p.ID {
		return "", promote.Invalid(fmt.Errorf("tear down %s: the environment is %s's, not %s's", e.Name, e.Project, p.ID))
	}
	// As trailer.Format writes it, so that the search finds it.
	reason = strings.Join(strings.Fields(reason), " ")
	edit, err := overlay.TearDownQA(p, e.Name, e.Kind, e.Target, overlay.Meta{Teardown: reason})
	if err != nil {
		return "", promote.Invalid(err)
	}
	if e.Image != "" {
		if edit, err = onlyIfPinned(p, e, edit); err != nil {
			return "", promote.Invalid(err)
		}
	}
	res, err := c.repo.ApplyOnce(ctx, teardownOnce(p, e, reason, since), edit)
	if err != nil {
		return "", fmt.Errorf("tear down %s of %s: %w", e.Name, p.ID, err)
	}
	if res.Landed {
		return res.Base, nil
	}
	return res.Commit, nil
}

// teardownOnce names the teardown of environment e asked at since: its
// trailers, and the deploy of e's newest build it must follow.
func teardownOnce(p promote.Project, e promote.Environment, reason string, since time.Time) clone.Once {
	once := clone.Once{Since: since, Trailers: []trailer.Trailer{
		// The project too: two projects may each have a qa/<env> of one
		// name, torn down by one branch deletion.
		{Key: trailer.Project, Value: p.ID},
		{Key: trailer.Environment, Value: e.Name},
		{Key: trailer.Teardown, Value: reason},
	}}
	if e.BuildID != "" {
		once.NotBefore = []trailer.Trailer{
			{Key: trailer.Build, Value: e.BuildID},
			{Key: trailer.Project, Value: p.ID},
			{Key: trailer.Environment, Value: e.Name},
		}
	}
	return once
}

// onlyIfPinned makes a teardown change nothing when the folder no longer
// pins the image of the environment's build the teardown was asked for: a
// newer build of the same target deployed in between (the environment came
// back), and its folder is not the one torn down.
func onlyIfPinned(p promote.Project, e promote.Environment, edit clone.Edit) (clone.Edit, error) {
	pins, err := overlay.PinCheck(p, e.Name, e.Image)
	if err != nil {
		return nil, err
	}
	return func(f clone.Files) (clone.Outcome, error) {
		if _, err := f.ReadFile(path.Join(p.Path, "overlays", e.Name, "kustomization.yaml")); errors.Is(err, fs.ErrNotExist) {
			return edit(f) // gone already: the edit says so
		}
		ok, err := pins(f)
		if err != nil {
			return clone.Outcome{}, err
		}
		if !ok {
			return clone.Outcome{Subject: fmt.Sprintf("Tear down %s of %s", e.Name, p.ID)}, nil
		}
		return edit(f)
	}, nil
}

package overlay

import (
	"fmt"
	"strings"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/promote"
)

// errNoReason is returned for a teardown without a reason: its
// Promotebot-Teardown trailer is what says the commit is one.
var errNoReason = promote.NewPermanent("a teardown needs a reason")

// TearDownQA returns the Edit that removes the QA environment env
// ("qa/<env>") of p: the whole folder overlays/qa/<env>/, in one change,
// when its kustomization.yaml says that kind's target owns it (the
// promotebot.dev/kind and promotebot.dev/target annotations the bot writes
// when it creates the folder). A folder that is gone already changes
// nothing; one that another target owns, or nobody (a folder a person
// wrote), is refused with an error wrapping promote.ErrNotOurs. Nothing
// else is touched. The commit's subject is "Tear down qa/<env> of
// <project>"; meta.Teardown, the reason, is its Promotebot-Teardown
// trailer. The project, kind, target, env and reason are checked here,
// before any Edit exists.
func TearDownQA(p promote.Project, env string, kind promote.Kind, target string, meta Meta) (clone.Edit, error) {
	if err := validateProject(p); err != nil {
		return nil, err
	}
	if err := validateKind(kind); err != nil {
		return nil, err
	}
	// Not checkScript: a target the project accepted once is torn down
	// even if allowUnicodeTargets was turned off since.
	if err := validateTarget(target); err != nil {
		return nil, err
	}
	name, ok := qaName(env)
	if !ok {
		return nil, fmt.Errorf("%w %q: a teardown wants \"qa/<env>\"", errInvalidEnv, env)
	}
	if strings.TrimSpace(meta.Teardown) == "" {
		return nil, fmt.Errorf("%w: %s of %s", errNoReason, env, p.ID)
	}
	dir := qaDir(p, name)
	return func(f clone.Files) (clone.Outcome, error) {
		o, err := ownerOf(f, dir, kind, target)
		switch {
		case err != nil:
			return clone.Outcome{}, err
		case o == ownerSomeone:
			return clone.Outcome{}, fmt.Errorf("%w (%s %q)", promote.ErrNotOurs, kind, target)
		case o == ownerSame:
			if err := f.RemoveAll(dir); err != nil {
				return clone.Outcome{}, fmt.Errorf("remove %s of %s: %w", env, p.ID, err)
			}
		}
		return clone.Outcome{
			Subject:  fmt.Sprintf("Tear down %s of %s", env, p.ID),
			Trailers: trailers(meta, p, env, ""),
		}, nil
	}, nil
}

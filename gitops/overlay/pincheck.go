package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/trailer"
	"github.com/promotebot/promotebot/promote"
)

// errInvalidEnv is returned for an environment that is neither
// "production" nor "qa/<env>" with a name a QA environment can have.
var errInvalidEnv = promote.NewPermanent("invalid environment")

// PinCheck returns the check of whether, in the files of one commit, the
// overlay of env ("production" or "qa/<env>") of project p sets the
// project's image to image: its kustomization.yaml, read as kustomize reads
// it, has one images entry for the image's repository and it gives exactly
// the image's tag and digest (as PinsImage). A missing overlay is false.
// The project, env and image are checked here, before any check exists.
func PinCheck(p promote.Project, env, image string) (func(clone.Files) (bool, error), error) {
	if err := validateProject(p); err != nil {
		return nil, err
	}
	dir, err := envDir(p, env)
	if err != nil {
		return nil, err
	}
	img, err := projectImage(p, image)
	if err != nil {
		return nil, err
	}
	file := path.Join(dir, "kustomization.yaml")
	return func(f clone.Files) (bool, error) {
		data, err := f.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%s overlay: %w", env, err)
		}
		return verifyImage(data, img) == nil, nil
	}, nil
}

// envDir returns the folder of env's overlay of p.
func envDir(p promote.Project, env string) (string, error) {
	if env == trailer.Production {
		return path.Join(p.Path, "overlays", "production"), nil
	}
	name, ok := qaName(env)
	if !ok {
		return "", fmt.Errorf("%w %q: want %q or \"qa/<env>\"", errInvalidEnv, env, trailer.Production)
	}
	return qaDir(p, name), nil
}

// qaName returns the name of the QA environment env, "qa/<name>": ok when
// name is one a QA environment can have (a DNS label: no path).
func qaName(env string) (name string, ok bool) {
	name, ok = strings.CutPrefix(env, "qa/")
	return name, ok && dnsLabel.MatchString(name)
}

package quickstart

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/promotebot/promotebot/gitops/overlay"
)

// Project is a project found in the config repo.
type Project struct {
	ID    string // the app's folder, apps/<ID>
	Image string // the repository of its image in production
	Tag   string // its tag in production
	// Tags are every tag of Image in the app's overlays (production and QA).
	Tags []string
}

var projectIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// Projects finds the projects on the config repo's main: every apps/<app>
// with an overlays/production/kustomization.yaml that lists an image. It
// also returns main's commit.
func Projects(remote string) ([]Project, *object.Commit, error) {
	repo, err := git.PlainOpen(remote)
	if err != nil {
		return nil, nil, fmt.Errorf("config repo %s: %w", remote, err)
	}
	ref, err := repo.Reference(plumbing.Main, true)
	if err != nil {
		return nil, nil, fmt.Errorf("config repo %s: main: %w", remote, err)
	}
	head, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, nil, fmt.Errorf("config repo %s: main: %w", remote, err)
	}
	root, err := head.Tree()
	if err != nil {
		return nil, nil, fmt.Errorf("config repo %s: main's tree: %w", remote, err)
	}
	apps, err := root.Tree("apps")
	if err != nil {
		return nil, nil, fmt.Errorf("config repo %s has no apps/ folder", remote)
	}
	var projects []Project
	for _, e := range apps.Entries {
		if e.Mode != filemode.Dir || !projectIDPattern.MatchString(e.Name) {
			continue
		}
		p, found, err := project(apps, e.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("config repo %s: apps/%s: %w", remote, e.Name, err)
		}
		if found {
			projects = append(projects, p)
		}
	}
	if len(projects) == 0 {
		return nil, nil, fmt.Errorf("config repo %s: no apps/<app>/overlays/production/kustomization.yaml with an images: entry", remote)
	}
	return projects, head, nil
}

// project reads the app's production image, and the tags of that image in
// all its overlays.
func project(apps *object.Tree, app string) (Project, bool, error) {
	overlays, err := apps.Tree(path.Join(app, "overlays"))
	if err != nil {
		return Project{}, false, nil
	}
	f, err := overlays.File(path.Join("production", "kustomization.yaml"))
	if err != nil {
		return Project{}, false, nil
	}
	text, err := f.Contents()
	if err != nil {
		return Project{}, false, err
	}
	p := Project{ID: app}
	if p.Image, p.Tag = OverlayImage(text, app); p.Image == "" {
		return Project{}, false, nil
	}
	err = overlays.Files().ForEach(func(f *object.File) error {
		if path.Base(f.Name) != "kustomization.yaml" {
			return nil
		}
		text, err := f.Contents()
		if err != nil {
			return err
		}
		if image, tag := OverlayImage(text, app); image == p.Image && tag != "" {
			p.Tags = append(p.Tags, tag)
		}
		return nil
	})
	return p, true, err
}

// OverlayImage reads an overlay's kustomization.yaml as the bot does
// (overlay.Pins) and picks the app's entry under images: (the one whose
// name or repository ends in /<app>, else the first). It returns that entry's repository (newName, else name) and its
// newTag; "" when there is no images: entry or the file cannot be read.
func OverlayImage(kustomization, app string) (image, tag string) {
	pins, err := overlay.Pins([]byte(kustomization))
	if err != nil || len(pins) == 0 {
		return "", ""
	}
	pick := pins[0]
	for _, p := range pins {
		if strings.HasSuffix(p.Name, "/"+app) || strings.HasSuffix(p.Repository, "/"+app) {
			pick = p
			break
		}
	}
	return pick.Repository, pick.Tag
}

// NextTag is the tag of a build that is new to the config repo: the next
// minor version after production's (1.3.0 → 1.4.0, v1.3.0 → v1.4.0), or
// after that while an overlay holds it already, as the overlays of an
// earlier quickstart do; "quickstart", "quickstart-2", … for a tag that is
// no version.
func (p Project) NextTag() string {
	taken := map[string]bool{}
	for _, t := range p.Tags {
		taken[t] = true
	}
	taken[p.Tag] = true
	tag, ok := nextMinor(p.Tag)
	for ok && taken[tag] {
		tag, _ = nextMinor(tag)
	}
	if ok {
		return tag
	}
	tag = "quickstart"
	for n := 2; taken[tag]; n++ {
		tag = "quickstart-" + strconv.Itoa(n)
	}
	return tag
}

// nextMinor is 1.3.0 → 1.4.0 (v1.3.0 → v1.4.0); ok is false for a tag that
// is not major.minor.patch.
func nextMinor(tag string) (next string, ok bool) {
	v, rest := "", tag
	if strings.HasPrefix(rest, "v") {
		v, rest = "v", rest[1:]
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return "", false
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil {
		return "", false
	}
	return v + parts[0] + "." + strconv.Itoa(minor+1) + ".0", true
}

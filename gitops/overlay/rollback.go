package overlay

import (
	"fmt"
	"path"

	"sigs.k8s.io/kustomize/api/types"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/promote"
)

// errNoRollbackOf is returned for a rollback that names no build it replaces.
var errNoRollbackOf = promote.NewPermanent("rollback of no build")

// RollbackImage returns the Edit that puts image back in production in
// place of of, the image production runs (the build being rolled back's):
// ProductionImage's edit, with meta.RollbackOf naming that build. It runs
// only while the production overlay pins of (compared as PinCheck
// compares) or already image (then it changes nothing); otherwise it fails
// with an error wrapping promote.ErrProductionMoved that says what
// production pins instead. Both images are checked here, before any Edit
// exists.
func RollbackImage(p promote.Project, of, image string, meta Meta, diff *string) (clone.Edit, error) {
	if meta.RollbackOf == "" {
		return nil, errNoRollbackOf
	}
	ofImg, err := projectImage(p, of)
	if err != nil {
		return nil, fmt.Errorf("image production runs: %w", err)
	}
	img, err := projectImage(p, image)
	if err != nil {
		return nil, err
	}
	edit, err := ProductionImage(p, image, meta, diff)
	if err != nil {
		return nil, err
	}
	file := path.Join(p.Path, "overlays", "production", "kustomization.yaml")
	return func(f clone.Files) (clone.Outcome, error) {
		data, err := f.ReadFile(file)
		if err != nil {
			return clone.Outcome{}, fmt.Errorf("%w: %s: %w", errNoOverlay, file, err)
		}
		if verifyImage(data, ofImg) != nil && verifyImage(data, img) != nil {
			now, err := PinnedImage(p, data)
			if err != nil {
				return clone.Outcome{}, err
			}
			if now == "" {
				now = "no image of " + img.Repository
			}
			return clone.Outcome{}, fmt.Errorf("%w: production of %s pins %s, not %s", promote.ErrProductionMoved, p.ID, now, ofImg)
		}
		return edit(f)
	}, nil
}

// PinnedImage returns the image that a kustomization's images: entry for
// p's image repository gives, read as kustomize reads it: the entry's
// repository (newName, else name) with its newTag and digest, normalized as
// the bot writes images ("registry.example.com/acme/hello:1.4.0"). It is ""
// when no single entry is the repository's, or when the entry leaves the
// base's tag in place (neither newTag nor digest, or a tagSuffix), and when
// kustomize cannot read the file. Only a project without a valid image
// repository is an error.
func PinnedImage(p promote.Project, kustomization []byte) (string, error) {
	repo, err := normalizedName(p.Image)
	if err != nil {
		return "", fmt.Errorf("%w %q: project image: %w", errInvalidProject, p.ID, err)
	}
	var k types.Kustomization
	if k.Unmarshal(kustomization) != nil {
		return "", nil
	}
	found, _ := imageEntries(k.Images, repo)
	if len(found) != 1 {
		return "", nil
	}
	e := found[0]
	if e.TagSuffix != "" || e.NewTag == "" && e.Digest == "" {
		return "", nil
	}
	name := e.Name
	if e.NewName != "" {
		name = e.NewName
	}
	img, err := parseImage(imageRef{Repository: name, Tag: e.NewTag, Digest: e.Digest}.String())
	if err != nil {
		return "", nil // an entry kustomize applies, but no image reference
	}
	return img.String(), nil
}

// NormalizeImage returns an image reference with a tag or a digest as the
// bot writes it: its repository normalized ("nginx:1" is
// "docker.io/library/nginx:1"), so that two spellings of an image compare
// equal.
func NormalizeImage(ref string) (string, error) {
	img, err := parseImage(ref)
	if err != nil {
		return "", err
	}
	return img.String(), nil
}

// IsImageEdit tells whether after is the kustomization before with only
// the images: entry of image's repository changed, to give exactly image,
// both read as kustomize reads them: what a rollback does to the
// production overlay, and nothing more.
func IsImageEdit(before, after []byte, image string) bool {
	img, err := parseImage(image)
	if err != nil {
		return false
	}
	var k types.Kustomization
	return k.Unmarshal(before) == nil && verifyEdit(before, after, img) == nil
}

package overlay

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"

	"github.com/promotebot/promotebot/promote"
)

// errInvalidImage is returned for an image reference that does not parse,
// or that has neither a tag nor a digest.
var errInvalidImage = promote.NewPermanent("invalid image reference")

// ErrForeignImage is matched (errors.Is) by a *foreignImageError.
var ErrForeignImage = promote.NewPermanent("image of another repository")

// foreignImageError is returned for an image whose repository is not the one
// the project may deploy.
type foreignImageError struct {
	// Project is the project id.
	Project string
	// Want is the project's repository, Got the image's, both normalized.
	Want, Got string
}

// Error implements error.
func (e *foreignImageError) Error() string {
	return fmt.Sprintf("image repository %s is not %s, the only one project %s may deploy", e.Got, e.Want, e.Project)
}

// Unwrap lets errors.Is match ErrForeignImage.
func (e *foreignImageError) Unwrap() error { return ErrForeignImage }

// imageRef is a parsed container image reference with a tag, a digest or both.
type imageRef struct {
	// Repository is the normalized name, e.g. "registry.example.com/acme/hello".
	Repository string
	// Tag is the tag, empty when only a digest was given.
	Tag string
	// Digest is "algorithm:hex", empty when only a tag was given.
	Digest string
}

// String returns "repository[:tag][@digest]", the form kustomize renders for
// an images: override with the same fields.
func (i imageRef) String() string {
	s := i.Repository
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		s += "@" + i.Digest
	}
	return s
}

// Short names the image's version for people, as commit subjects show it:
// the tag, the digest cut to twelve hex digits, or both
// ("1.4.0@sha256:0123456789ab") so that two images with one tag never read
// the same in git log --oneline.
func (i imageRef) Short() string {
	if i.Digest == "" {
		return i.Tag
	}
	algo, hex, _ := strings.Cut(i.Digest, ":")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	if i.Tag == "" {
		return algo + ":" + hex
	}
	return i.Tag + "@" + algo + ":" + hex
}

// projectImage parses ref (docker reference grammar, Docker Hub names
// normalized), requires a tag or a digest, and refuses an image whose
// repository is not p.Image with a *foreignImageError.
func projectImage(p promote.Project, ref string) (imageRef, error) {
	img, err := parseImage(ref)
	if err != nil {
		return imageRef{}, err
	}
	want, err := normalizedName(p.Image)
	if err != nil {
		return imageRef{}, fmt.Errorf("%w %q: project image: %v", errInvalidProject, p.ID, err)
	}
	if img.Repository != want {
		return imageRef{}, &foreignImageError{Project: p.ID, Want: want, Got: img.Repository}
	}
	return img, nil
}

// parseImage parses a reference that must carry a tag or a digest.
func parseImage(ref string) (imageRef, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return imageRef{}, fmt.Errorf("%w %q: %v", errInvalidImage, ref, err)
	}
	img := imageRef{Repository: named.Name()}
	if t, ok := named.(reference.Tagged); ok {
		img.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		img.Digest = d.Digest().String()
	}
	if img.Tag == "" && img.Digest == "" {
		return imageRef{}, fmt.Errorf("%w %q: needs a tag or a digest", errInvalidImage, ref)
	}
	return img, nil
}

// normalizedName returns the normalized repository of a name that has no tag
// and no digest.
func normalizedName(name string) (string, error) {
	n, err := promote.NormalizeImageName(name)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errInvalidImage, err)
	}
	return n, nil
}

// splitImage separates an image string as written into name, tag and digest
// the way kustomize does: the tag's ":" is searched after the first "/", so
// a registry port is not taken for a tag.
func splitImage(s string) (name, tag, digest string) {
	name, digest, _ = strings.Cut(s, "@")
	off := strings.Index(name, "/")
	if off < 0 {
		off = 0
	}
	if i := strings.LastIndex(name[off:], ":"); i >= 0 {
		tag = name[off+i+1:]
		name = name[:off+i]
	}
	return name, tag, digest
}

// sameRepository reports whether a name as written (e.g. "nginx") is the
// normalized repository repo (e.g. "docker.io/library/nginx").
func sameRepository(name, repo string) bool {
	if name == repo {
		return true
	}
	n, err := normalizedName(name)
	return err == nil && n == repo
}

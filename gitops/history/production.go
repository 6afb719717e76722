package history

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/gitops/trailer"
)

// productionOverlay is the overlay, below a project folder, that production
// renders.
const productionOverlay = "overlays/production"

// The walker keeps, per project folder, its last rendersPerFolder renders:
// a commit that changes a folder's production compares its render with the
// parent's, and the parent's is the one the next (older) commit that
// changes that folder renders after it, however many commits of other
// folders lie between. maxRenderBytes bounds them all.
const (
	rendersPerFolder = 2
	maxRenderBytes   = 16 << 20
)

// rendered is one render of a project's production overlay, whose
// productionKey is key.
type rendered struct {
	key string
	out []byte
	err error
}

// subtree returns the hash of the folder dir in the tree root, zero when
// there is none.
func (w *historyWalker) subtree(root plumbing.Hash, dir string) (plumbing.Hash, error) {
	h := root
	for _, name := range strings.Split(dir, "/") {
		t, err := w.readTree(h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		e, ok := t.find(name)
		if !ok || e.Mode != filemode.Dir {
			return plumbing.ZeroHash, nil
		}
		h = e.Hash
	}
	return h, nil
}

// touched returns the folders, sorted, that may be project folders and whose
// trees differ between the root trees a and b: those of
// Options.ProjectPaths, and any folder with an overlays folder on either
// side (isProject tells, when it matters, whether it has a production
// overlay). Folders with equal hashes are not looked into.
func (w *historyWalker) touched(a, b plumbing.Hash) ([]string, error) {
	var out []string
	err := w.touchedIn(a, b, "", &out)
	slices.Sort(out)
	return out, err
}

func (w *historyWalker) touchedIn(a, b plumbing.Hash, dir string, out *[]string) error {
	if a == b {
		return nil
	}
	ea, oa, err := w.readFolder(a)
	if err != nil {
		return err
	}
	eb, ob, err := w.readFolder(b)
	if err != nil {
		return err
	}
	if _, ok := w.opts.ProjectPaths[dir]; ok || (dir != "" && (oa || ob)) {
		*out = append(*out, dir)
		return nil
	}
	return joinEntries(ea, eb, func(x, y object.TreeEntry) error {
		if x == y || (x.Mode != filemode.Dir && y.Mode != filemode.Dir) {
			return nil
		}
		return w.touchedIn(dirHash(x), dirHash(y), path.Join(dir, nameOf(x, y)), out)
	})
}

// isProject tells whether folder is a project folder in the root tree a or
// b: one of Options.ProjectPaths, or a folder with
// overlays/production/kustomization.yaml.
func (w *historyWalker) isProject(folder string, a, b plumbing.Hash) (bool, error) {
	if _, ok := w.opts.ProjectPaths[folder]; ok {
		return true, nil
	}
	for _, root := range []plumbing.Hash{b, a} {
		prod, err := w.subtree(root, path.Join(folder, productionOverlay))
		if err != nil {
			return false, err
		}
		t, err := w.readTree(prod)
		if err != nil {
			return false, err
		}
		if e, ok := t.find("kustomization.yaml"); ok && e.Mode != filemode.Dir {
			return true, nil
		}
	}
	return false, nil
}

// projectID names the project in folder: Options.ProjectPaths, else what a
// QA commit of the bot taught (learn), else the folder's last element.
func (w *historyWalker) projectID(folder string) string {
	if id := w.opts.ProjectPaths[folder]; id != "" {
		return id
	}
	if id := w.learned[folder]; id != "" {
		return id
	}
	return path.Base(folder)
}

// learn takes, when no configuration names the projects, a folder's project
// id from the newest QA commit with the bot's trailers that touched that
// folder alone, so that an id other than the folder's name ("hello-service"
// in apps/hello) does not make each of its production deploys read as
// someone else's change. A forged QA commit can mislead this; only
// --config (Options.ProjectPaths) cannot be.
func (w *historyWalker) learn(folders []string, m trailerFacts) {
	learnInto(w.learned, w.opts, folders, m)
}

// learns tells whether learn may take anything from trailers m.
func learns(opts Options, m trailerFacts) bool {
	return len(opts.ProjectPaths) == 0 && m.project != "" && strings.HasPrefix(m.env, "qa/")
}

// learnInto is learn into the map learned.
func learnInto(learned map[string]string, opts Options, folders []string, m trailerFacts) {
	if !learns(opts, m) || len(folders) != 1 {
		return
	}
	if _, ok := learned[folders[0]]; !ok {
		learned[folders[0]] = m.project
	}
}

// productionKey lists the entries of the project folder in the tree root that
// overlay.Render copies for the production overlay: every entry but the
// other overlays below overlays/. Equal keys mean production renders the
// same without rendering it; "" means there is no such folder.
func (w *historyWalker) productionKey(root plumbing.Hash, folder string) (string, error) {
	h, err := w.subtree(root, folder)
	if err != nil || h.IsZero() {
		return "", err
	}
	t, err := w.readTree(h)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for e := range t.all() {
		if string(e.name) != "overlays" || e.mode != filemode.Dir {
			fmt.Fprintf(&b, "%s %o %s\n", e.name, e.mode, e.hash)
			continue
		}
		overlays, err := w.readTree(e.hash)
		if err != nil {
			return "", err
		}
		for o := range overlays.all() {
			if o.mode != filemode.Dir || string(o.name) == path.Base(productionOverlay) {
				fmt.Fprintf(&b, "overlays/%s %o %s\n", o.name, o.mode, o.hash)
			}
		}
	}
	return b.String(), nil
}

// productionDiffers tells whether the production of the project in folder
// renders differently in the root trees a and b. Equal productionKeys render
// the same and are not rendered. When the overlay does not render on one side
// (or the folder is missing there), the files production reads are compared
// instead: their keys differ, so production is taken to have changed, never
// to be unchanged.
func (w *historyWalker) productionDiffers(folder string, a, b plumbing.Hash) (bool, error) {
	ka, err := w.productionKey(a, folder)
	if err != nil {
		return false, err
	}
	kb, err := w.productionKey(b, folder)
	if err != nil || ka == kb {
		return false, err
	}
	if ka == "" || kb == "" {
		return true, nil
	}
	// b first: the walk goes from the newest commit, so b is usually what
	// a newer commit rendered as its a, which the render of a must not push
	// out.
	rb := w.render(b, folder, kb)
	ra := w.render(a, folder, ka)
	if ra.err != nil || rb.err != nil {
		return true, nil
	}
	return !bytes.Equal(ra.out, rb.out), nil
}

// render renders the production overlay of folder in the tree root, whose
// productionKey is key, once per folder and key while it is kept.
func (w *historyWalker) render(root plumbing.Hash, folder, key string) rendered {
	kept := w.renders[folder]
	for _, r := range kept {
		if r.key == key {
			return r
		}
	}
	r := rendered{key: key}
	r.out, r.err = overlay.Render(clone.TreeFiles(w.stor, root), folder, productionOverlay)
	if w.renderBytes > maxRenderBytes {
		clear(w.renders)
		w.renderBytes = 0
		kept = nil
	}
	if len(kept) == rendersPerFolder {
		last := kept[len(kept)-1]
		w.renderBytes -= len(last.key) + len(last.out)
		kept = kept[:len(kept)-1]
	}
	w.renders[folder] = append([]rendered{r}, kept...)
	w.renderBytes += len(r.key) + len(r.out)
	return r
}

// productionFiles returns the files production reads in folder that differ
// between the root trees a and b, sorted.
func (w *historyWalker) productionFiles(folder string, a, b plumbing.Hash) ([]string, error) {
	ha, err := w.subtree(a, folder)
	if err != nil {
		return nil, err
	}
	hb, err := w.subtree(b, folder)
	if err != nil {
		return nil, err
	}
	var out []string
	err = w.diffFiles(ha, hb, folder, "", func(rel string) bool {
		parent, _ := path.Split(rel)
		return parent == "overlays/" && rel != productionOverlay
	}, &out)
	return out, err
}

// diffFiles appends to out the files that differ between the trees a and b
// (either may be zero: empty) of the folder rel of folder, skipping the
// folders whose path relative to folder skip names.
func (w *historyWalker) diffFiles(a, b plumbing.Hash, folder, rel string, skip func(string) bool, out *[]string) error {
	ea, err := w.readTree(a)
	if err != nil {
		return err
	}
	eb, err := w.readTree(b)
	if err != nil {
		return err
	}
	return joinEntries(ea, eb, func(x, y object.TreeEntry) error {
		if x == y {
			return nil
		}
		r := path.Join(rel, nameOf(x, y))
		if x.Mode == filemode.Dir || y.Mode == filemode.Dir {
			if skip(r) {
				return nil
			}
			return w.diffFiles(dirHash(x), dirHash(y), folder, r, skip, out)
		}
		*out = append(*out, path.Join(folder, r))
		return nil
	})
}

// pinsQA tells whether the tree root really deploys what a QA change's
// trailers say: a project folder of this id that the commit touched pins
// m.image in its overlays/qa/<env>/kustomization.yaml.
func (w *historyWalker) pinsQA(root plumbing.Hash, folders []string, m trailerFacts) bool {
	env, ok := strings.CutPrefix(m.env, "qa/")
	if !ok || m.image == "" || env == "" || strings.Contains(env, "/") {
		return false
	}
	files := clone.TreeFiles(w.stor, root)
	for _, folder := range folders {
		if w.projectID(folder) != m.project {
			continue
		}
		data, err := files.ReadFile(path.Join(folder, "overlays", "qa", env, "kustomization.yaml"))
		if err == nil && overlay.PinsImage(data, m.image) {
			return true
		}
	}
	return false
}

// productionPins returns the images that the production overlay of folder
// pins in the tree root, normalized; none when there is none, or kustomize
// cannot read it.
func (w *historyWalker) productionPins(root plumbing.Hash, folder string) ([]string, error) {
	data, err := clone.TreeFiles(w.stor, root).ReadFile(path.Join(folder, productionOverlay, "kustomization.yaml"))
	if err != nil {
		return nil, ignoreMissing(err)
	}
	pins, err := overlay.Pins(data)
	if err != nil {
		return nil, nil //nolint:nilerr // a file kustomize cannot read pins nothing
	}
	var images []string
	for _, p := range pins {
		ref := p.Repository
		if p.Tag != "" {
			ref += ":" + p.Tag
		}
		if p.Digest != "" {
			ref += "@" + p.Digest
		}
		// An entry without a tag or a digest leaves the base's image: unknown.
		if image, err := overlay.NormalizeImage(ref); err == nil {
			images = append(images, image)
		}
	}
	return images, nil
}

// rollbackPinned tells whether a rollback's commit, of tree root after
// the tree first, did only what a rollback does in the folder of the
// project its trailers m name: of the files production reads there, it
// changed overlays/production/kustomization.yaml alone, and in it only the
// images entry of m.image's repository, to give m.image
// (overlay.IsImageEdit). Without --config, a folder whose project is not
// known yet may be the project's; it must be the only one.
func (w *historyWalker) rollbackPinned(first, root plumbing.Hash, folders []string, m trailerFacts) (bool, error) {
	var folder string
	for _, f := range folders {
		if w.projectID(f) == m.project || len(w.opts.ProjectPaths) == 0 && w.learned[f] == "" {
			if folder != "" {
				return false, nil
			}
			folder = f
		}
	}
	if folder == "" || first.IsZero() {
		return false, nil
	}
	file := path.Join(folder, productionOverlay, "kustomization.yaml")
	paths, err := w.productionFiles(folder, first, root)
	if err != nil || len(paths) != 1 || paths[0] != file {
		return false, err
	}
	// No production overlay before: nothing was rolled back; none after:
	// nothing is pinned.
	before, err := clone.TreeFiles(w.stor, first).ReadFile(file)
	if err != nil {
		return false, ignoreMissing(err)
	}
	after, err := clone.TreeFiles(w.stor, root).ReadFile(file)
	if err != nil {
		return false, ignoreMissing(err)
	}
	return overlay.IsImageEdit(before, after, m.image), nil
}

// teardownRemoved tells whether a teardown's commit, of tree root after
// the tree first, did only what a teardown does: it removed the folder
// overlays/qa/<env> of the project folder its trailers m name (the one
// folder the commit touched), which was there before, and changed no other
// file of the repository, in that project or anywhere else.
func (w *historyWalker) teardownRemoved(first, root plumbing.Hash, folders []string, m trailerFacts) (bool, error) {
	env, ok := strings.CutPrefix(m.env, "qa/")
	if !ok || env == "" || strings.Contains(env, "/") || len(folders) != 1 || first.IsZero() ||
		w.projectID(folders[0]) != m.project {
		return false, nil
	}
	dir := path.Join(folders[0], "overlays", "qa", env)
	before, err := w.subtree(first, dir)
	if err != nil || before.IsZero() {
		return false, err
	}
	after, err := w.subtree(root, dir)
	if err != nil || !after.IsZero() {
		return false, err
	}
	var changed []string
	if err := w.diffFiles(first, root, "", "", func(string) bool { return false }, &changed); err != nil {
		return false, err
	}
	for _, f := range changed {
		if !strings.HasPrefix(f, dir+"/") {
			return false, nil
		}
	}
	return true, nil
}

// ignoreMissing is nil for a file that does not exist, else err.
func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// claim says what trailers claim, for a production change they do not
// cover: "qa/<env> of <project>" or "production of <project>".
func (m trailerFacts) claim() string {
	if m.env == "" {
		return "project " + m.project
	}
	return m.env + " of " + m.project
}

// covers tells whether the trailers are the bot's production trailers for
// project id.
func (m trailerFacts) covers(id string) bool {
	return m.trailers && m.env == trailer.Production && m.project == id
}

// nameOf is the name of a pair of entries that joinEntries paired.
func nameOf(x, y object.TreeEntry) string {
	if x.Name != "" {
		return x.Name
	}
	return y.Name
}

// dirHash is the tree hash of a folder entry, zero for a file or no entry.
func dirHash(e object.TreeEntry) plumbing.Hash {
	if e.Mode == filemode.Dir {
		return e.Hash
	}
	return plumbing.ZeroHash
}

package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/promotebot/promotebot/promote"
)

// errAmbiguousImage is returned when several images: entries of one
// kustomization name the same repository.
var errAmbiguousImage = promote.NewPermanent("several images entries for one repository")

// errKustomization is returned for a kustomization file that setImage cannot
// edit: not one YAML mapping document, or images: of an unexpected shape.
var errKustomization = promote.NewPermanent("unusable kustomization")

// errNoSplice tells setImage that the text cannot be edited in place safely
// and the node-level rewrite must be used instead.
var errNoSplice = errors.New("cannot splice")

// field is one key of an images: entry and the value it must hold.
type field struct{ key, value string }

// imagePlan is what setImage must do to one kustomization.
type imagePlan struct {
	root      *yaml.Node // top-level mapping; nil for an empty document
	imagesKey *yaml.Node // the "images" key; nil when absent
	images    *yaml.Node // its value
	entry     *yaml.Node // matched entry; nil when a new one is added
	set       []field    // fields to hold, in order ("name" first for a new entry)
	remove    []string   // keys of entry to drop
}

// setImage points the images: entry for img.Repository of a kustomization
// file at img, and returns the new content and whether any byte changed.
//
// The entry is the one whose name, else whose newName, is the repository
// (Docker Hub names compared normalized). It ends up with newTag and/or
// digest exactly as img has them and without tagSuffix; newName is removed
// when name already is the repository. A missing entry is added, named name
// (how the base spells the image; img.Repository when empty), at the end of
// images:, which is itself added at the end of the file when missing.
//
// Every other byte stays as it was: values are replaced in place keeping
// their quotes (a plain value that YAML would not read back as a string is
// double-quoted), keys are inserted or removed as whole lines. Shapes that
// cannot be edited that way (flow style, multi-line scalars, anchors, an
// entry's first key to remove) fall back to a node-level rewrite of the file,
// which keeps comments and the sequence indentation but may reformat it.
// The result is re-parsed as kustomize does and checked before it is
// returned: the entry gives img and nothing else reads differently.
func setImage(data []byte, img imageRef, name string) ([]byte, bool, error) {
	if name == "" {
		name = img.Repository
	}
	doc, err := parseKustomization(data)
	if err != nil {
		return nil, false, err
	}
	plan, err := planImage(doc, img, name)
	if err != nil {
		return nil, false, err
	}
	if plan.done() && verifyImage(data, img) == nil {
		// Nothing to do: a shape the splice refuses is not rewritten either.
		return data, false, nil
	}
	out, err := splice(data, plan)
	if err == nil {
		err = verifyEdit(data, out, img)
	}
	if err != nil {
		if out, err = rewriteImage(data, img, name); err != nil {
			return nil, false, err
		}
		if err := verifyEdit(data, out, img); err != nil {
			return nil, false, fmt.Errorf("rewrite images entry: %w", err)
		}
	}
	return out, !bytes.Equal(out, data), nil
}

// hasImage reports whether a kustomization has an images: entry for repo.
func hasImage(data []byte, repo string) (bool, error) {
	doc, err := parseKustomization(data)
	if err != nil {
		return false, err
	}
	root, err := rootMapping(doc)
	if err != nil {
		return false, err
	}
	_, images := mapLookup(root, "images")
	if images == nil || images.Kind != yaml.SequenceNode {
		return false, nil
	}
	entry, _, err := findEntry(images, repo)
	return entry != nil, err
}

// parseKustomization parses a file that must hold exactly one document.
func parseKustomization(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %v", errKustomization, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", errKustomization)
	}
	return &doc, nil
}

// rootMapping returns the top-level mapping of a document; nil when empty.
func rootMapping(doc *yaml.Node) (*yaml.Node, error) {
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: top level is not a mapping", errKustomization)
	}
	return root, nil
}

// mapLookup returns the key and value nodes of key in a mapping node.
func mapLookup(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// findEntry returns the images: entry for repo: the one whose name is repo,
// else the one whose newName is.
func findEntry(images *yaml.Node, repo string) (entry *yaml.Node, byName bool, err error) {
	var named, renamed []*yaml.Node
	for _, e := range images.Content {
		if e.Kind != yaml.MappingNode {
			continue
		}
		if _, n := mapLookup(e, "name"); n != nil && sameRepository(n.Value, repo) {
			named = append(named, e)
		} else if _, n := mapLookup(e, "newName"); n != nil && sameRepository(n.Value, repo) {
			renamed = append(renamed, e)
		}
	}
	switch {
	case len(named) > 1 || len(named) == 0 && len(renamed) > 1:
		return nil, false, fmt.Errorf("%w: %s", errAmbiguousImage, repo)
	case len(named) == 1:
		return named[0], true, nil
	case len(renamed) == 1:
		return renamed[0], false, nil
	}
	return nil, false, nil
}

// planImage decides which fields to set and which keys to drop.
func planImage(doc *yaml.Node, img imageRef, name string) (imagePlan, error) {
	root, err := rootMapping(doc)
	if err != nil {
		return imagePlan{}, err
	}
	p := imagePlan{root: root}
	p.imagesKey, p.images = mapLookup(root, "images")
	if p.images != nil && p.images.Kind == yaml.SequenceNode {
		if p.entry, _, err = findEntry(p.images, img.Repository); err != nil {
			return imagePlan{}, err
		}
	} else if p.images != nil && !(p.images.Kind == yaml.ScalarNode && p.images.Tag == "!!null") {
		return imagePlan{}, fmt.Errorf("%w: images is not a sequence", errKustomization)
	}
	p.set, p.remove = wantFields(p.entry, img, name)
	return p, nil
}

// wantFields lists the fields an entry must hold for img and the keys it
// must lose. A new entry (nil) gets name first.
func wantFields(entry *yaml.Node, img imageRef, name string) (set []field, remove []string) {
	keepNewName := false
	if entry == nil {
		set = append(set, field{"name", name})
		if !sameRepository(name, img.Repository) {
			set = append(set, field{"newName", img.Repository})
		}
	} else if _, n := mapLookup(entry, "name"); n == nil || !sameRepository(n.Value, img.Repository) {
		keepNewName = true // matched on newName: it already is the repository
	}
	if img.Tag != "" {
		set = append(set, field{"newTag", img.Tag})
	}
	if img.Digest != "" {
		set = append(set, field{"digest", img.Digest})
	}
	if entry == nil {
		return set, nil
	}
	for _, k := range []string{"newName", "newTag", "digest", "tagSuffix"} {
		if k == "newName" && keepNewName {
			continue
		}
		if kn, _ := mapLookup(entry, k); kn != nil && !hasField(set, k) {
			remove = append(remove, k)
		}
	}
	return set, remove
}

// done reports whether the entry already holds every field as it would be
// written, and nothing is to be dropped.
func (p imagePlan) done() bool {
	if p.entry == nil || len(p.remove) > 0 {
		return false
	}
	for _, f := range p.set {
		if _, v := mapLookup(p.entry, f.key); v == nil || !holds(v, f.value) {
			return false
		}
	}
	return true
}

// holds reports whether a node is the string value, written so that both
// YAML versions read it back as that string.
func holds(v *yaml.Node, value string) bool {
	return v.Kind == yaml.ScalarNode && v.Value == value && v.Tag == "!!str" && (v.Style != 0 || safePlain(value))
}

func hasField(fs []field, key string) bool {
	for _, f := range fs {
		if f.key == key {
			return true
		}
	}
	return false
}

// verifyImage reads a kustomization the way kustomize does and checks that
// the entry for img.Repository holds exactly img.
func verifyImage(data []byte, img imageRef) error {
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return fmt.Errorf("%w: %v", errKustomization, err)
	}
	return checkEntry(k.Images, img)
}

// PinsImage tells whether a kustomization, read as kustomize reads it, has
// one images entry for image's repository and that entry gives exactly image
// (tag and digest). An auditor asks it of a QA commit's overlay: a commit
// that names an image in its trailers has deployed it only if this holds.
func PinsImage(kustomization []byte, image string) bool {
	img, err := parseImage(image)
	return err == nil && verifyImage(kustomization, img) == nil
}

// verifyEdit is verifyImage for an edit of before, which also checks that
// nothing else reads differently than before. kustomize matches keys
// case-insensitively: an edit of images: next to an "Images:" would silently
// replace the other entries.
func verifyEdit(before, after []byte, img imageRef) error {
	var old, k types.Kustomization
	if err := k.Unmarshal(after); err != nil {
		return fmt.Errorf("%w: %v", errKustomization, err)
	}
	if err := checkEntry(k.Images, img); err != nil {
		return err
	}
	if old.Unmarshal(before) != nil {
		return nil // kustomize could not read it before: nothing to keep
	}
	_, old.Images = imageEntries(old.Images, img.Repository)
	_, k.Images = imageEntries(k.Images, img.Repository)
	if !reflect.DeepEqual(old, k) {
		return fmt.Errorf("%w: the edit would change more than the images entry of %s", errKustomization, img.Repository)
	}
	return nil
}

// checkEntry checks that images hold one entry for img.Repository, giving
// exactly img.
func checkEntry(images []types.Image, img imageRef) error {
	found, _ := imageEntries(images, img.Repository)
	if len(found) != 1 {
		return fmt.Errorf("%w: %d images entries for %s after the edit", errKustomization, len(found), img.Repository)
	}
	e := found[0]
	repo := e.Name
	if e.NewName != "" {
		repo = e.NewName
	}
	if !sameRepository(repo, img.Repository) || e.NewTag != img.Tag || e.Digest != img.Digest || e.TagSuffix != "" {
		return fmt.Errorf("%w: images entry %+v does not give %s", errKustomization, e, img)
	}
	return nil
}

// imageEntries splits images into the entries for repo (by name, else by
// newName) and the others, nil when none.
func imageEntries(images []types.Image, repo string) (found, others []types.Image) {
	match := func(e types.Image) bool { return sameRepository(e.Name, repo) }
	if !slices.ContainsFunc(images, match) {
		match = func(e types.Image) bool { return sameRepository(e.NewName, repo) }
	}
	for _, e := range images {
		if match(e) {
			found = append(found, e)
		} else {
			others = append(others, e)
		}
	}
	return found, others
}

// rewriteImage is the fallback: it edits the parsed nodes and re-serializes
// the whole file, keeping comments and the sequence indentation style.
func rewriteImage(data []byte, img imageRef, name string) ([]byte, error) {
	doc, err := parseKustomization(data)
	if err != nil {
		return nil, err
	}
	root, err := rootMapping(doc)
	if err != nil {
		return nil, err
	}
	if root == nil {
		root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		doc.Kind, doc.Content = yaml.DocumentNode, []*yaml.Node{root}
	}
	_, images := mapLookup(root, "images")
	if images == nil {
		images = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		root.Content = append(root.Content, strNode("images", 0), images)
	} else if images.Kind != yaml.SequenceNode {
		*images = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", LineComment: images.LineComment}
	}
	entry, _, err := findEntry(images, img.Repository)
	if err != nil {
		return nil, err
	}
	set, remove := wantFields(entry, img, name)
	if entry == nil {
		entry = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		images.Content = append(images.Content, entry)
	}
	setNodeFields(entry, set, remove)
	lf := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	style := yaml.SequenceIndentStyle(yaml.DeriveSeqIndentStyle(string(lf)))
	out, err := yaml.MarshalWithOptions(doc, &yaml.EncoderOptions{SeqIndent: style})
	if err != nil {
		return nil, fmt.Errorf("encode kustomization: %w", err)
	}
	if len(lf) != len(data) {
		out = bytes.ReplaceAll(out, []byte("\n"), []byte("\r\n"))
	}
	return out, nil
}

// setNodeFields sets and removes keys of a mapping node.
func setNodeFields(m *yaml.Node, set []field, remove []string) {
	for _, f := range set {
		if _, v := mapLookup(m, f.key); v != nil {
			nv := strNode(f.value, v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle))
			nv.HeadComment, nv.LineComment, nv.FootComment = v.HeadComment, v.LineComment, v.FootComment
			*v = *nv
			continue
		}
		m.Content = append(m.Content, strNode(f.key, 0), strNode(f.value, 0))
	}
	for _, k := range remove {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == k {
				m.Content = append(m.Content[:i], m.Content[i+2:]...)
				break
			}
		}
	}
}

// strNode is a string scalar in the given quote style; a plain value that
// YAML would read as something else is double-quoted instead.
// obviouslyString is the fast path of safePlain for the values the bot
// writes most (names, hosts, annotation keys): starting with a lower-case
// letter, made of [a-z0-9./-] and holding a "-" or "/", a plain scalar is no
// bool, null, number or timestamp in YAML 1.1 or 1.2.
func obviouslyString(v string) bool {
	if v[0] < 'a' || v[0] > 'z' || !strings.ContainsAny(v, "-/") {
		return false
	}
	for _, c := range []byte(v) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '/' && c != '-' {
			return false
		}
	}
	return true
}

func strNode(v string, style yaml.Style) *yaml.Node {
	if style == 0 && !safePlain(v) {
		style = yaml.DoubleQuotedStyle
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Style: style}
}

// safePlain reports whether v, written as a plain scalar, reads back as the
// string v both in YAML 1.2 (kyaml) and in YAML 1.1 as kustomize decodes a
// kustomization (where yes, on, 0x1F or 1_000 are not strings).
func safePlain(v string) bool {
	if v == "" || strings.ContainsAny(v, "\n\r\t") {
		return false
	}
	if obviouslyString(v) {
		return true
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(v), &doc); err != nil || len(doc.Content) != 1 {
		return false
	}
	n := doc.Content[0]
	if n.Kind != yaml.ScalarNode || n.Style != 0 || n.Tag != "!!str" || n.Value != v {
		return false
	}
	var k types.Kustomization
	if err := k.Unmarshal([]byte("namePrefix: " + v + "\n")); err != nil {
		return false
	}
	return k.NamePrefix == v
}

// Pin is one images: entry of a kustomization as kustomize applies it.
type Pin struct {
	// Name is the image name the entry matches in the manifests.
	Name string
	// Repository is what it deploys: newName, else name.
	Repository string
	// Tag and Digest are its newTag and digest (either may be empty).
	Tag, Digest string
}

// Pins reads a kustomization's images: entries the way kustomize does.
func Pins(kustomization []byte) ([]Pin, error) {
	var k types.Kustomization
	if err := k.Unmarshal(kustomization); err != nil {
		return nil, fmt.Errorf("%w: %v", errKustomization, err)
	}
	pins := make([]Pin, len(k.Images))
	for i, e := range k.Images {
		pins[i] = Pin{Name: e.Name, Repository: e.Name, Tag: e.NewTag, Digest: e.Digest}
		if e.NewName != "" {
			pins[i].Repository = e.NewName
		}
	}
	return pins, nil
}

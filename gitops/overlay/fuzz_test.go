package overlay

// Fuzz targets for the inputs a CI job or a person controls: branch and tag
// names, image references, kustomization files, commit messages. Each
// asserts what the code promises, not only that it does not panic. A crasher
// found by `go test -fuzz` lands in testdata/fuzz/<Target>/ and is replayed by
// every plain `go test` once committed; hack/fuzz.sh runs them all.
//
// The file is in package gitops because the promises are about unexported
// steps: which of a target's two env names is taken (envNames.resolve) and
// whether setImage edited in place or fell back to a rewrite (splice).

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"
	"unicode/utf8"

	"github.com/distribution/reference"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/promotebot/promotebot/promote"
)

// fuzzTargets are branch and tag names for the seeds: realistic ones, and
// what a hostile or careless CI job could send.
var fuzzTargets = append([]string{
	"main", "feature/Login", "feature/login", "Feature/A", "feature-a", "release/1.2", "v1.0.0-rc.1",
	"v1.0.0+build.5", "dependabot/npm_and_yarn/lodash-4.17.21", "a\nimages:\n- name: evil",
	"x\n\nApproved-by: x", "feature/ü", "機能/ログイン", "a\u2028b", "a\u00a0b", "\ufeffx", "a\u3000b",
	"x-" + strings.Repeat("ab", 40), strings.Repeat("Ab/", 84) + "c", strings.Repeat("ü", 60),
}, hostileTargets...)

// isDNSLabel spells out RFC 1123: 1–63 of [a-z0-9-], alphanumeric at both ends.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// FuzzEnvName checks the names of QA environments.
//
// For one target: a valid target always gets an env; both names it may take
// (plain and hashed) are DNS labels starting with "<kind>-" that stay one
// directory below overlays/qa/, and its namespace and host are valid too.
//
// For two targets, injectivity is not a promise of EnvName: the plain name is
// "<kind>-<slug>" and feature/A and feature-a share it on purpose (envname.go
// resolves that when writing). What is promised is:
//   - the hashed names of two different targets differ: both end in
//     hash8(kind, target), so equal names would be a SHA-256 prefix collision;
//   - two different targets never write the same overlay directory: the
//     first owns its directory through the annotations of its
//     kustomization.yaml, so the second must take another name (resolve), and
//     each finds its own directory again afterwards. That is checked on
//     in-memory files with the same writer QAOverlay uses (writeQAFiles),
//     without the kustomize render, which decides nothing about names.
func FuzzEnvName(f *testing.F) {
	for i, t := range fuzzTargets {
		f.Add(t, fuzzTargets[(i+1)%len(fuzzTargets)], i%2 == 0, i%3 == 0)
	}
	f.Add("feature/A", "feature-a", false, false)
	f.Add("Feature/Login", "feature/login", false, false)
	f.Add("v1.0", "v1-0", true, true)
	f.Add("v1", "v1", false, true)
	f.Add("ü", "ö", false, false)
	long := strings.Repeat("x/", 60) + "x"
	if n, err := newEnvNames(promote.KindBranch, long); err == nil {
		// A short name spelling a long one's only env, which then is taken.
		f.Add(strings.TrimPrefix(n.plain, "branch-"), long, false, false)
	}
	f.Fuzz(func(t *testing.T, t1, t2 string, tag1, tag2 bool) {
		k1, k2 := fuzzKind(tag1), fuzzKind(tag2)
		n1, ok1 := checkEnvNames(t, k1, t1)
		n2, ok2 := checkEnvNames(t, k2, t2)
		if !ok1 || !ok2 {
			return
		}
		same := k1 == k2 && t1 == t2
		if !same && n1.hashed == n2.hashed {
			t.Fatalf("%s %q and %s %q share the hashed env %q", k1, t1, k2, t2, n1.hashed)
		}
		files := &memFiles{tb: t, m: fstest.MapFS{}}
		env1 := deployQA(t, files, n1, false)
		env2 := deployQA(t, files, n2, same)
		if env2 == "" {
			return // refused: the only name it may take is taken
		}
		if !same && env1 == env2 {
			t.Fatalf("%s %q and %s %q both write qa/%s", k1, t1, k2, t2, env1)
		}
		if env := deployQA(t, files, n1, true); env != env1 {
			t.Fatalf("%s %q moved from qa/%s to qa/%s", k1, t1, env1, env)
		}
		if env := deployQA(t, files, n2, true); env != env2 {
			t.Fatalf("%s %q moved from qa/%s to qa/%s", k2, t2, env2, env)
		}
	})
}

func fuzzKind(tag bool) promote.Kind {
	if tag {
		return promote.KindTag
	}
	return promote.KindBranch
}

// checkEnvNames checks the single-target promises and returns the names when
// the target is valid.
func checkEnvNames(t *testing.T, kind promote.Kind, target string) (envNames, bool) {
	t.Helper()
	env, err := EnvName(kind, target)
	if validateTarget(target) != nil {
		if !errors.Is(err, ErrInvalidTarget) {
			t.Fatalf("EnvName(%s, %q) = %q, %v for an invalid target", kind, target, env, err)
		}
		return envNames{}, false
	}
	if err != nil {
		t.Fatalf("EnvName(%s, %q): %v for a valid target", kind, target, err)
	}
	n, err := newEnvNames(kind, target)
	if err != nil || n.plain != env {
		t.Fatalf("newEnvNames(%s, %q) = %q, %v; EnvName said %q", kind, target, n.plain, err, env)
	}
	if !strings.HasSuffix(n.hashed, "-"+n.hash) {
		t.Errorf("%s %q: hashed %q, plain %q, hash %s", kind, target, n.hashed, n.plain, n.hash)
	}
	const qa = "apps/x/overlays/qa"
	for _, e := range []string{n.plain, n.hashed} {
		if !isDNSLabel(e) || !strings.HasPrefix(e, string(kind)+"-") {
			t.Errorf("%s %q: env %q is not a DNS label starting with %q", kind, target, e, string(kind)+"-")
		}
		if dir := path.Join(qa, e); path.Dir(dir) != qa || path.Base(dir) != e {
			t.Errorf("%s %q: env %q makes the directory %q", kind, target, e, dir)
		}
		if ns := n.namespace(hello, e); !isDNSLabel(ns) {
			t.Errorf("%s %q: namespace %q is not a DNS label", kind, target, ns)
		}
		host := QAHost(hello, kind, e)
		for _, l := range strings.Split(host, ".") {
			if !isDNSLabel(l) || len(host) > 253 {
				t.Errorf("%s %q: host %q is not a DNS name", kind, target, host)
				break
			}
		}
	}
	return n, true
}

// deployQA resolves the env of a target on fs and, when the target does not
// own one yet, writes its overlay as QAOverlay does. owned says whether the
// target must already own its env.
func deployQA(t *testing.T, files *memFiles, n envNames, owned bool) string {
	t.Helper()
	env, exists, err := n.resolve(files, hello)
	if errors.Is(err, errEnvCollision) && n.plain == n.hashed && !owned {
		// A name too long for a label carries its hash already, so it has no
		// second name to fall back on: refusing is the documented answer.
		return ""
	}
	if err != nil {
		t.Fatalf("%s %q: %v", n.kind, n.target, err)
	}
	if exists != owned {
		t.Fatalf("%s %q: qa/%s exists = %v, want %v", n.kind, n.target, env, exists, owned)
	}
	if exists {
		return env
	}
	img := imageRef{Repository: hello.Image, Tag: "1.0"}
	if err := writeQAFiles(files, hello, n, env, img, hello.Image, "hello:80"); err != nil {
		t.Fatalf("%s %q: %v", n.kind, n.target, err)
	}
	kust := files.get(t, path.Join(qaDir(hello, env), "kustomization.yaml"))
	if k, tg, ok := readOwner(kust); !ok || k != string(n.kind) || tg != n.target {
		t.Fatalf("%s %q: the overlay says it belongs to %q %q (ok %v):\n%s", n.kind, n.target, k, tg, ok, kust)
	}
	return env
}

// FuzzImage checks that projectImage only ever accepts the project's own
// repository, that what it accepts has a tag or a digest, and that the
// accepted image prints as a reference that parses back to the same value,
// the same way kustomize splits it, with nothing a commit message or a YAML
// line could trip on.
func FuzzImage(f *testing.F) {
	const repo = "registry.example.com/acme/hello"
	for _, s := range [][2]string{
		{repo, repo + ":1.4.0"},
		{repo, repo + "@" + digestB},
		{repo, repo + ":1.4.0@" + digestB},
		{repo, repo + ":v1.0.0-rc.1"},
		{repo, repo + ":" + strings.Repeat("a", 128)},
		{repo, repo + ":" + strings.Repeat("a", 129)},
		{repo, repo},
		{repo, ""},
		{repo, "evil.example.com/acme/hello:1"},
		{repo, "registry.example.com/acme/hello-evil:1"},
		{repo, "registry.example.com/acme/hello/evil:1"},
		{repo, "registry.example.com/acme/../acme/hello:1"},
		{repo, "registry.example.com:443/acme/hello:1"},
		{repo, "REGISTRY.example.com/acme/hello:1"},
		{repo, "hello:1"},
		{repo, repo + ":1\n"},
		{repo, repo + ":1\nimages:\n- name: evil"},
		{repo, repo + ":1 # c"},
		{repo, "registry.example.com/acme/hellö:1"},
		{repo, repo + "@sha256:short"},
		{"nginx", "nginx:1.27"},
		{"nginx", "docker.io/library/nginx:1.27"},
		{"nginx", "index.docker.io/library/nginx:1.27"},
		{"docker.io/library/nginx", "library/nginx@" + digestA},
		{"docker.io/nginx", "nginx:latest"},
		{"localhost:5000/hello", "localhost:5000/hello:v1"},
		{"localhost:5000/hello", "localhost/hello:v1"},
		{"[::1]:5000/hello", "[::1]:5000/hello:1"},
		{repo + ":1", repo + ":1"},
		{"", "x:1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, imageName, ref string) {
		p := hello
		p.Image = imageName
		img, err := projectImage(p, ref)
		if err != nil {
			var fe *foreignImageError
			switch {
			case errors.As(err, &fe):
				if fe.Got == fe.Want {
					t.Fatalf("ParseImage(%q, %q) refused its own repository: %v", imageName, ref, err)
				}
			case errors.Is(err, errInvalidImage), errors.Is(err, errInvalidProject):
			default:
				t.Fatalf("ParseImage(%q, %q): unclassified error %v", imageName, ref, err)
			}
			return
		}
		// The repository is checked here with the reference library itself,
		// not with the code under test.
		want, werr := reference.ParseNormalizedNamed(imageName)
		got, gerr := reference.ParseNormalizedNamed(ref)
		if werr != nil || !reference.IsNameOnly(want) || gerr != nil || got.Name() != want.Name() ||
			img.Repository != want.Name() {
			t.Fatalf("ParseImage(%q, %q) = %+v: accepted a repository that is not the project's", imageName, ref, img)
		}
		if img.Tag == "" && img.Digest == "" {
			t.Fatalf("ParseImage(%q, %q) = %+v without tag or digest", imageName, ref, img)
		}
		s := img.String()
		if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 ||
			strings.ContainsAny(s, "#\"'") {
			t.Fatalf("ParseImage(%q, %q).String() = %q holds blanks, control or YAML characters", imageName, ref, s)
		}
		again, err := projectImage(p, s)
		if err != nil || again != img {
			t.Fatalf("%q re-parses to %+v, %v; want %+v", s, again, err, img)
		}
		if n, tag, d := splitImage(s); n != img.Repository || tag != img.Tag || d != img.Digest {
			t.Fatalf("kustomize splits %q into %q %q %q; want %+v", s, n, tag, d, img)
		}
	})
}

// fuzzKustomizations are kustomization files for the seeds: the golden
// inputs of yamledit_test.go, the sample repository's, and hostile shapes.
var fuzzKustomizations = []string{
	"",
	"# only a comment\n",
	"images:\n- name: registry.example.com/acme/hello\n  newTag: \"1.3.0\"\n",
	"images:\n- name: registry.example.com/acme/hello\n  newTag: \"1.3.0\"",
	"images:\r\n- name: registry.example.com/acme/hello\r\n  newTag: '1.3.0'\r\n",
	"images:\n  - name: registry.example.com/acme/hello  # promoted\n    newTag: 1.3.0 # tag\n    digest: " + digestA + "\n  - name: busybox\n    newTag: '1.36'\n",
	"images:\n- name: busybox\n  newTag: \"1.36\"\n- name: registry.example.com/acme/hello\n  newTag: \"1.3.0\"\n  tagSuffix: -debug\n",
	"images:\n- newTag: old\n  name: registry.example.com/acme/hello\n",
	"images:\n- name: hello\n  newName: registry.example.com/acme/hello\n  newTag: \"1\"\n",
	"images:\n- name: registry.example.com/acme/hello\n  newName: registry.example.com/acme/hello\n",
	"images: [{name: registry.example.com/acme/hello, newTag: \"1\"}]\n",
	"images: [ {name: registry.example.com/acme/hello, newTag: '1.4.0'} ]  # flow\n",
	"images:\n- name: registry.example.com/acme/hello\n  newTag: |\n    1.3.0\n",
	"images:\n- name: registry.example.com/acme/hello\n  newTag:\n",
	"images:\n",
	"images: []\n",
	"images: foo\n",
	"images:\n- name: registry.example.com/acme/hello\n- name: registry.example.com/acme/hello\n",
	"images:\n- &a\n  name: registry.example.com/acme/hello\n  newTag: \"1\"\nnamePrefix: x-\n",
	"images:\n- name: registry.example.com/acme/hello\n  newTag: \"1\"\n---\nimages: []\n",
	"- a\n- b\n",
	"namePrefix: prod-\nresources:\n- ../../base\n",
	"namePrefix: prod-\nresources:\n  - ../../base\n",
	"resources: [../../base]\n",
	"{resources: [../../base]}\n",
	"namePrefix: \"a\u2028b\"\nimages:\n- name: registry.example.com/acme/hello\n  newTag: \"1\"\n",
	"images:\n- name: nginx\n  newTag: \"1.25\"\n",
	"images:\n- name: \"registry.example.com/acme/hello\"\n  newTag: \"1.3.0\"   # keep\n  # trailing comment\nnamespace: hello\n",
	"images:\n- name: registry.example.com/acme/hello\n  newTag: 1.3.0\n  newTag2: x\n",
	"images:\n- name: registry.example.com/acme/hello\n  newTag: a\nbogus: 1\n",
	"images:\n-   name: registry.example.com/acme/hello\n    newTag: a\n",
	"images:\n- name: registry.example.com/acme/hello\n  newTag: \"ü\"\n  digest: " + digestA + "\n",
	"# a\rb\nimages:\n- name: registry.example.com/acme/hello # c\r  newTag: x\n  newTag: \"1\"\n",
	"# a\u2028images: x\nimages:\n- name: registry.example.com/acme/hello # \u2029\n  newTag: \"1\"\n",
	"\r",
	"namespace: a\rimages:\n- name: busybox\r",
	"Images:\n- name: busybox\n  newTag: '1.36'\n",
	"images:\n- Name: registry.example.com/acme/hello\n  newTag: \"1\"\n",
	"images:\n- name: registry.example.com/acme/hello\n  newTag: \"1\"\n  NewTag: \"2\"\n",
	// A lone "\r" is a line break to the parser: positions after it are one
	// line further than a count of "\n" says, which once put the new key
	// after the look-alike comment, in "\r\n" line endings.
	"# c\r\r\nimages:\n- name: registry.example.com/acme/hello\n# name: registry.example.com/acme/hello\nnamePrefix: x\n",
}

// FuzzSetImage checks the in-place images: edit on any kustomization text
// and any image.
//
// It never panics, and refuses only with errKustomization or
// errAmbiguousImage. When it succeeds the result is one kustomization that
// kustomize reads with exactly the image for the project's entry, running it
// again changes nothing, and nothing but that entry changed in meaning; a
// file whose entry kustomize already reads as the image, with no key to
// drop, comes back as it was, whatever its shape. When
// the edit was made in place (splice succeeded; setImage documents a
// node-level rewrite for shapes it cannot splice, which may reformat the
// file), every byte outside the lines of the entry is also as it was.
func FuzzSetImage(f *testing.F) {
	const repo = "registry.example.com/acme/hello"
	refs := []string{
		repo + ":1.4.0", repo + "@" + digestB, repo + ":1.4.0@" + digestB, repo + ":1.10", repo + ":007",
		repo + ":yes", repo + ":1e3", repo + ":1.3.0", "nginx:1.27", "docker.io/library/nginx@" + digestA,
	}
	for i, k := range fuzzKustomizations {
		f.Add(k, refs[i%len(refs)], "")
	}
	f.Add(fuzzKustomizations[2], repo+":1.4.0", repo)
	f.Add("images: [ {name: registry.example.com/acme/hello, newTag: '1.4.0'} ]  # flow\n", repo+":1.4.0", "")
	f.Add("images:\n- name: busybox\n", "nginx:1.27", "nginx")
	f.Add("resources:\n- base\n", "docker.io/library/nginx:1", "library/nginx")
	f.Fuzz(func(t *testing.T, data, ref, name string) {
		img, err := parseImage(ref)
		if err != nil {
			return
		}
		if name != "" && !sameRepository(name, img.Repository) {
			// The caller passes how the base spells the image: always a
			// spelling of the repository (imageName).
			name = ""
		}
		in := []byte(data)
		out, changed, err := setImage(in, img, name)
		if err != nil {
			if !errors.Is(err, errKustomization) && !errors.Is(err, errAmbiguousImage) {
				t.Fatalf("SetImage(%q, %s): unclassified error %v", in, img, err)
			}
			return
		}
		if changed == bytes.Equal(in, out) {
			t.Fatalf("SetImage(%q, %s): changed = %v, but the bytes say otherwise:\n%s", in, img, changed, out)
		}
		checkImageEntry(t, out, img)
		again, changedAgain, err := setImage(out, img, name)
		if err != nil || changedAgain || !bytes.Equal(again, out) {
			t.Fatalf("second setImage(%s): changed %v, err %v\n--- first\n%s\n--- second\n%s", img, changedAgain, err, out, again)
		}
		checkOthersKept(t, in, out, img)
		doc, err := parseKustomization(in)
		if err != nil {
			t.Fatalf("SetImage accepted %q, which does not parse: %v", in, err)
		}
		if name == "" {
			name = img.Repository // as setImage does
		}
		plan, err := planImage(doc, img, name)
		if err != nil {
			t.Fatalf("SetImage accepted %q, planImage refuses it: %v", in, err)
		}
		if plan.entry != nil && len(plan.remove) == 0 && verifyImage(in, img) == nil && changed {
			t.Fatalf("SetImage(%s) changed a file whose entry already was right:\n--- in\n%s\n--- out\n%s", img, in, out)
		}
		spliced, err := splice(in, plan)
		if err != nil || verifyEdit(in, spliced, img) != nil {
			return // the documented rewrite: meaning is checked, bytes are not
		}
		if !bytes.Equal(spliced, out) {
			t.Fatalf("SetImage rewrote %q although it could splice:\n%s", in, out)
		}
		checkOnlyEntryBytes(t, in, out, img)
	})
}

// checkImageEntry reads a kustomization as kustomize does and checks that
// the one entry for img.Repository (by name, else by newName) gives img.
func checkImageEntry(t *testing.T, out []byte, img imageRef) {
	t.Helper()
	var k types.Kustomization
	if err := k.Unmarshal(out); err != nil {
		t.Fatalf("kustomize cannot read the result: %v\n%s", err, out)
	}
	var byName, byNewName []types.Image
	for _, e := range k.Images {
		switch {
		case sameRepository(e.Name, img.Repository):
			byName = append(byName, e)
		case sameRepository(e.NewName, img.Repository):
			byNewName = append(byNewName, e)
		}
	}
	found := byName
	if len(found) == 0 {
		found = byNewName
	}
	if len(found) != 1 {
		t.Fatalf("%d entries for %s in the result:\n%s", len(found), img.Repository, out)
	}
	e := found[0]
	if e.NewName != "" && !sameRepository(e.NewName, img.Repository) || e.NewTag != img.Tag ||
		e.Digest != img.Digest || e.TagSuffix != "" {
		t.Fatalf("the entry %+v does not give %s:\n%s", e, img, out)
	}
}

// imageEntry returns the key "images" of a kustomization and the project's
// entry below it, each nil when missing.
func imageEntry(t *testing.T, data []byte, repo string) (*yaml.Node, *yaml.Node) {
	t.Helper()
	doc, err := parseKustomization(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	root, err := rootMapping(doc)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	key, images := mapLookup(root, "images")
	if images == nil || images.Kind != yaml.SequenceNode {
		return key, nil
	}
	entry, _, err := findEntry(images, repo)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return key, entry
}

// checkOthersKept reads both versions as kustomize does and compares them
// without the project's entry: nothing else may change in meaning, whichever
// way the file was edited. (kustomize's reading is the meaning: it matches
// keys case-insensitively, and a null and an empty string are the same to it.)
func checkOthersKept(t *testing.T, in, out []byte, img imageRef) {
	t.Helper()
	var a, b types.Kustomization
	if err := a.Unmarshal(in); err != nil {
		return // kustomize could not read it before: nothing to keep
	}
	if err := b.Unmarshal(out); err != nil {
		t.Fatalf("kustomize cannot read the result: %v\n%s", err, out)
	}
	a.Images, b.Images = withoutImage(a.Images, img.Repository), withoutImage(b.Images, img.Repository)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("more than the %s entry changed:\n--- in\n%s\n--- out\n%s\n--- in without it\n%+v\n--- out without it\n%+v",
			img.Repository, in, out, a, b)
	}
}

// withoutImage drops the entries for repo: by name, else by newName.
func withoutImage(images []types.Image, repo string) []types.Image {
	var byName, rest []types.Image
	for _, e := range images {
		if sameRepository(e.Name, repo) {
			byName = append(byName, e)
		} else {
			rest = append(rest, e)
		}
	}
	if len(byName) > 0 {
		return rest
	}
	rest = nil
	for _, e := range images {
		if !sameRepository(e.NewName, repo) {
			rest = append(rest, e)
		}
	}
	return rest
}

// yamlLines splits text where YAML sees line breaks ("\r\n", "\n", "\r",
// NEL, LS, PS; node positions count those), each line with its break.
func yamlLines(b []byte) []string {
	var lines []string
	s := string(b)
	for s != "" {
		i := strings.IndexAny(s, "\r\n\u0085\u2028\u2029")
		if i < 0 {
			lines = append(lines, s)
			break
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		if strings.HasPrefix(s[i:], "\r\n") {
			n = 2
		}
		lines = append(lines, s[:i+n])
		s = s[i+n:]
	}
	return lines
}

// lastNodeLine is the last line a block node's descendants start on; the
// in-place path only edits entries whose scalars each fit on one line.
func lastNodeLine(n *yaml.Node) int {
	last := n.Line
	for _, c := range n.Content {
		last = max(last, lastNodeLine(c))
	}
	return last
}

// checkOnlyEntryBytes checks the in-place promise: out is in with the lines
// of the project's entry replaced, and nothing else. The entry is located by
// the parser in both files, not by diffing them: a diff can align repeated
// text either way. A file that had no entry gets it (and images: when that
// was missing too) inserted between unchanged bytes, after a line break added
// to a last line without one.
func checkOnlyEntryBytes(t *testing.T, in, out []byte, img imageRef) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Fatalf("%s\n--- in\n%s\n--- out\n%s", fmt.Sprintf(format, args...), in, out)
	}
	inKey, inEntry := imageEntry(t, in, img.Repository)
	outKey, outEntry := imageEntry(t, out, img.Repository)
	if outEntry == nil || inKey == nil && outKey == nil {
		fail("the result has no entry")
	}
	la, lb := yamlLines(in), yamlLines(out)
	outFrom := outEntry.Line
	if inKey == nil {
		outFrom = outKey.Line
	}
	a2, b2, ok := lineSpan(lb, outFrom, lastNodeLine(outEntry))
	if !ok {
		fail("the entry's lines %d-%d are not in the output's %d", outFrom, lastNodeLine(outEntry), len(lb))
	}
	var a1, b1 int
	switch {
	case inEntry != nil:
		if a1, b1, ok = lineSpan(la, inEntry.Line, lastNodeLine(inEntry)); !ok {
			fail("the entry's lines %d-%d are not in the input's %d", inEntry.Line, lastNodeLine(inEntry), len(la))
		}
	case a2 > len(in):
		if brk := string(out[len(in):a2]); brk != "\n" && brk != "\r\n" {
			fail("%q inserted before the entry", brk)
		}
		a1, b1, a2 = len(in), len(in), len(in)
	default:
		a1, b1 = a2, a2
	}
	if !bytes.Equal(in[:a1], out[:a2]) || !bytes.Equal(in[b1:], out[b2:]) {
		fail("bytes outside the entry changed: input %d-%d, output %d-%d", a1, b1, a2, b2)
	}
}

// lineSpan returns the byte range of lines from to last (1-based), the last
// one's break included.
func lineSpan(lines []string, from, last int) (int, int, bool) {
	if from < 1 || last < from || last > len(lines) {
		return 0, 0, false
	}
	start, end := 0, 0
	for i, l := range lines[:last] {
		if i == from-1 {
			start = end
		}
		end += len(l)
	}
	return start, end, true
}

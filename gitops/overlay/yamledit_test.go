package overlay

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", filepath.FromSlash(name))
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to rewrite it)\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func TestSetImageGolden(t *testing.T) {
	const repo = "registry.example.com/acme/hello"
	tests := []struct {
		name, in string
		img      imageRef
		base     string // how the base spells the image, for a new entry
		fallback bool   // whole-file rewrite expected
	}{
		{name: "production-tag", in: "production", img: imageRef{repo, "1.4.0", ""}},
		{name: "production-digest", in: "production", img: imageRef{repo, "", digestB}},
		{name: "production-tag-digest", in: "production", img: imageRef{repo, "1.4.0", digestB}},
		{name: "production-zeros", in: "production", img: imageRef{repo, "007", ""}},
		{name: "production-float", in: "production", img: imageRef{repo, "1.10", ""}},
		{name: "production-hex", in: "production", img: imageRef{repo, "553640e6", ""}},
		{name: "plain-plain", in: "plain", img: imageRef{repo, "v1.4.0", ""}},
		{name: "plain-semver", in: "plain", img: imageRef{repo, "1.4.0", ""}},
		{name: "plain-float", in: "plain", img: imageRef{repo, "1.10", ""}},
		{name: "plain-hex", in: "plain", img: imageRef{repo, "553640e6", ""}},
		{name: "plain-exp", in: "plain", img: imageRef{repo, "1e3", ""}},
		{name: "plain-zeros", in: "plain", img: imageRef{repo, "007", ""}},
		{name: "plain-yaml11-bool", in: "plain", img: imageRef{repo, "yes", ""}},
		{name: "plain-hexlike-string", in: "plain", img: imageRef{repo, "abc123f", ""}},
		{name: "plain-tag-digest", in: "plain", img: imageRef{repo, "v2", digestB}},
		{name: "single-tag", in: "single", img: imageRef{repo, "1.10", ""}},
		{name: "single-tag-digest", in: "single", img: imageRef{repo, "1.4.0", digestB}},
		{name: "missing-entry", in: "missing-entry", img: imageRef{repo, "1.4.0", digestB}},
		{name: "no-images-wide", in: "no-images-wide", img: imageRef{repo, "1.10", ""}},
		{name: "no-images-compact-no-eol", in: "no-images-compact-no-eol", img: imageRef{repo, "", digestB}},
		{name: "compact", in: "compact", img: imageRef{repo, "1.4.0", digestB}},
		{name: "compact-digest", in: "compact", img: imageRef{repo, "", digestB}},
		{name: "crlf", in: "crlf", img: imageRef{repo, "1.4.0", digestB}},
		{name: "newname", in: "newname", img: imageRef{repo, "", digestB}},
		{name: "drop-newname", in: "drop-newname", img: imageRef{repo, "1.4.0", ""}},
		{name: "dockerhub", in: "dockerhub", img: imageRef{"docker.io/library/nginx", "1.27", ""}},
		{name: "dockerhub-new", in: "plain", img: imageRef{"docker.io/library/nginx", "1.27", ""}, base: "nginx"},
		{name: "flow", in: "flow", img: imageRef{repo, "1.10", ""}, fallback: true},
		{name: "first-key", in: "first-key", img: imageRef{repo, "", digestB}, fallback: true},
		{name: "multiline", in: "multiline", img: imageRef{repo, "1.4.0", ""}, fallback: true},
		{name: "null-value", in: "null-value", img: imageRef{repo, "1.4.0", ""}, fallback: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "yamledit", tt.in+".in.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			out, changed, err := setImage(in, tt.img, tt.base)
			if err != nil {
				t.Fatal(err)
			}
			if !changed || bytes.Equal(in, out) {
				t.Errorf("changed = %v, bytes equal = %v", changed, bytes.Equal(in, out))
			}
			golden(t, "yamledit/"+tt.name+".golden.yaml", out)
			again, changed, err := setImage(out, tt.img, tt.base)
			if err != nil || changed || !bytes.Equal(again, out) {
				t.Errorf("second run: changed = %v, err = %v", changed, err)
			}
			doc, err := parseKustomization(in)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := planImage(doc, tt.img, tt.img.Repository)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := splice(in, plan); tt.fallback != errors.Is(err, errNoSplice) {
				t.Errorf("splice err = %v, want fallback %v", err, tt.fallback)
			}
			if bytes.Contains(in, []byte("\r\n")) && bytes.Count(out, []byte("\n")) != bytes.Count(out, []byte("\r\n")) {
				t.Errorf("line endings mixed:\n%q", out)
			}
		})
	}
}

// TestSetImageKeepsOtherLines checks the in-place promise on the sample
// production overlay: only the hello entry's lines differ.
func TestSetImageKeepsOtherLines(t *testing.T) {
	in, err := os.ReadFile("../../testdata/configrepo/apps/hello/overlays/production/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := setImage(in, imageRef{hello.Image, "2.0.0", ""}, "")
	if err != nil {
		t.Fatal(err)
	}
	a, b := strings.Split(string(in), "\n"), strings.Split(string(out), "\n")
	if len(a) != len(b) {
		t.Fatalf("line count %d → %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] && b[i] != `    newTag: "2.0.0"` {
			t.Errorf("line %d changed: %q → %q", i+1, a[i], b[i])
		}
	}
}

func TestSetImageUnchanged(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "yamledit", "production.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := setImage(in, imageRef{hello.Image, "1.3.0", ""}, "")
	if err != nil || changed || !bytes.Equal(in, out) {
		t.Fatalf("changed = %v, err = %v", changed, err)
	}
}

func TestSetImageErrors(t *testing.T) {
	img := imageRef{hello.Image, "1", ""}
	tests := []struct {
		name, in string
		want     error
	}{
		{"two documents", "images: []\n---\nimages: []\n", errKustomization},
		{"not a mapping", "- a\n- b\n", errKustomization},
		{"images not a list", "images: foo\n", errKustomization},
		{"not yaml", "images: [\n", errKustomization},
		{"ambiguous", "images:\n- name: registry.example.com/acme/hello\n  newTag: a\n- name: registry.example.com/acme/hello\n  newTag: b\n", errAmbiguousImage},
		{"unknown field", "images: []\nbogus: 1\n", errKustomization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := setImage([]byte(tt.in), img, ""); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSetImageEmptyFile(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n"} {
		out, changed, err := setImage([]byte(in), imageRef{hello.Image, "1.0", ""}, "")
		if err != nil || !changed {
			t.Fatalf("%q: changed %v err %v", in, changed, err)
		}
		if want := in + "images:\n- name: registry.example.com/acme/hello\n  newTag: \"1.0\"\n"; string(out) != want {
			t.Errorf("%q: got\n%s", in, out)
		}
	}
}

func TestSafePlain(t *testing.T) {
	tests := map[string]bool{
		"1.4.0": true, "v1": true, "abc123f": true, "latest": true, digestB: true, "main-abc": true,
		"hello:80": true, "/": true,
		"1.10": false, "007": false, "1e3": false, "553640e6": false, "yes": false, "No": false,
		"on": false, "y": false, "null": false, "~": false, "true": false, "0x1F": false, "1_000": false,
		".inf": false, "": false, "a: b": false, "#x": false, "- x": false, "*x": false, "&x": false,
		"'x'": false, `"x"`: false, "{x}": false, "[x]": false, "a #b": false, "!x": false, "|": false,
		" x": false, "x ": false, "%x": false, "@x": false, "`x": false,
	}
	for v, want := range tests {
		if got := safePlain(v); got != want {
			t.Errorf("safePlain(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestFormatScalarRoundTrip(t *testing.T) {
	values := []string{"1.10", "yes", `a"b\c`, "it's", "plain", "x\ty", "ü"}
	for _, v := range values {
		for _, style := range []yaml.Style{0, yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle} {
			s := formatScalar(v, style)
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte("k: "+s), &doc); err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			if got := doc.Content[0].Content[1]; got.Value != v || got.Tag != "!!str" {
				t.Errorf("formatScalar(%q, %v) = %s reads back %q (%s)", v, style, s, got.Value, got.Tag)
			}
		}
	}
}

func TestSourceOffsetCountsCharacters(t *testing.T) {
	data := []byte("images:\n- {ü: x, name: \"a\"}\n")
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	n := doc.Content[0].Content[1].Content[0].Content[3] // "a"
	s := newSource(data)
	off, err := s.offset(n.Line, n.Column)
	if err != nil || string(data[off:off+3]) != `"a"` {
		t.Fatalf("offset %d %v: %q", off, err, data[off:])
	}
}

// TestObviouslyStringAgreesWithTheParsers checks the fast path never calls a
// value plain that the full check would quote.
func TestObviouslyStringAgreesWithTheParsers(t *testing.T) {
	for _, v := range []string{
		"hello-branch-feature-login", "feature-login.branch.hello.example.com", "promotebot.dev/kind",
		"registry.example.com/acme/hello", "y-1", "n/a", "on-call", "no-op", "null-x", "e-1", "a-0x1f",
		"yes", "on", "null", "y", "1.10", "1e3", "0x1f", "2001-12-14", "a", "true", "-a", "a b",
	} {
		fast := obviouslyString(v)
		s := v
		if fast {
			// The full check, without the fast path.
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(s), &doc); err != nil || doc.Content[0].Tag != "!!str" || doc.Content[0].Value != s {
				t.Errorf("%q: fast path says plain, YAML 1.2 disagrees", v)
			}
			var k types.Kustomization
			if err := k.Unmarshal([]byte("namePrefix: " + s + "\n")); err != nil || k.NamePrefix != s {
				t.Errorf("%q: fast path says plain, kustomize's YAML 1.1 disagrees", v)
			}
		}
	}
	for _, v := range []string{"yes", "on", "null", "1.10", "2001-12-14", "y", "true"} {
		if obviouslyString(v) {
			t.Errorf("%q taken as obviously a string", v)
		}
	}
}

func TestPins(t *testing.T) {
	pins, err := Pins([]byte("images:\n- name: nginx\n  newName: registry.example.com/acme/web\n  newTag: \"1.10\"\n" +
		"- name: registry.example.com/acme/hello\n  digest: sha256:abc\n"))
	want := []Pin{
		{Name: "nginx", Repository: "registry.example.com/acme/web", Tag: "1.10"},
		{Name: "registry.example.com/acme/hello", Repository: "registry.example.com/acme/hello", Digest: "sha256:abc"},
	}
	if err != nil || !reflect.DeepEqual(pins, want) {
		t.Fatalf("Pins = %+v, %v; want %+v", pins, err, want)
	}
	if _, err := Pins([]byte("images: [")); !errors.Is(err, errKustomization) {
		t.Fatalf("Pins of broken YAML: %v, want errKustomization", err)
	}
}

func TestPinsImage(t *testing.T) {
	const k = "resources:\n- ../../../base\nimages:\n- name: registry.example.com/acme/hello\n  newTag: \"1.4.0\"\n"
	for _, tc := range []struct {
		name, kustomization, image string
		want                       bool
	}{
		{"tag", k, "registry.example.com/acme/hello:1.4.0", true},
		{"other tag", k, "registry.example.com/acme/hello:1.4.1", false},
		{"digest not pinned", k, "registry.example.com/acme/hello:1.4.0@" + digestB, false},
		{"tag and digest", k + "  digest: " + digestB + "\n", "registry.example.com/acme/hello:1.4.0@" + digestB, true},
		{"by newName", "images:\n- name: hello\n  newName: registry.example.com/acme/hello\n  newTag: \"1.4.0\"\n",
			"registry.example.com/acme/hello:1.4.0", true},
		{"other repository", k, "registry.example.com/acme/other:1.4.0", false},
		{"two entries", k + "- name: registry.example.com/acme/hello\n  newTag: \"1.4.0\"\n", "registry.example.com/acme/hello:1.4.0", false},
		{"no images", "resources:\n- ../../../base\n", "registry.example.com/acme/hello:1.4.0", false},
		{"not yaml", "images: [", "registry.example.com/acme/hello:1.4.0", false},
		{"bad image", k, "registry.example.com/acme/hello", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PinsImage([]byte(tc.kustomization), tc.image); got != tc.want {
				t.Errorf("PinsImage = %v, want %v", got, tc.want)
			}
		})
	}
}

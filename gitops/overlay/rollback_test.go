package overlay

import (
	"errors"
	"strings"
	"testing"

	"github.com/promotebot/promotebot/promote"
)

func TestRollbackImage(t *testing.T) {
	const file = "apps/hello/overlays/production/kustomization.yaml"
	m := Meta{RollbackOf: "b2", PromotedBy: "Olga <slack:UOWN1>", Reason: "crash loop"}
	edit := must(t)(RollbackImage(hello, "registry.example.com/acme/hello:1.3.0", "registry.example.com/acme/hello:1.2.0", m, nil))

	// The sample repository pins 1.3.0: that is what is rolled back.
	f := loadRepo(t)
	f.guard = "apps/hello/overlays/production/"
	out, err := edit(f)
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != "Roll back hello to 1.2.0" || !strings.Contains(string(f.get(t, file)), `newTag: "1.2.0"`) {
		t.Fatalf("outcome %+v\n%s", out, f.get(t, file))
	}
	want := "Promotebot-Rollback-Of: b2\nPromotebot-Project: hello\nPromotebot-Environment: production\n" +
		"Promotebot-Image: registry.example.com/acme/hello:1.2.0\nPromoted-by: Olga <slack:UOWN1>\nPromotebot-Reason: crash loop\n"
	if msg := out.Message(); !strings.HasSuffix(msg, "\n\n"+want) {
		t.Fatalf("message\n%s\nwant trailers\n%s", msg, want)
	}
	// Run again on its own result: production runs 1.2.0 already, nothing to do.
	n := len(f.writes)
	if _, err := edit(f); err != nil || len(f.writes) != n {
		t.Fatalf("second run: %v, writes %v", err, f.writes[n:])
	}

	// Production moved on to another image meanwhile: no write, and the
	// error says what production runs.
	f = loadRepo(t)
	f.put(file, strings.Replace(string(f.get(t, file)), `"1.3.0"`, `"1.5.0"`, 1))
	f.guard = "nowhere/"
	_, err = edit(f)
	if !errors.Is(err, promote.ErrProductionMoved) || !promote.IsPermanent(err) ||
		!strings.Contains(err.Error(), "pins registry.example.com/acme/hello:1.5.0, not registry.example.com/acme/hello:1.3.0") {
		t.Fatalf("moved: %v", err)
	}

	for _, tc := range []struct {
		name, of, image string
		meta            Meta
	}{
		{"foreign image", "registry.example.com/acme/hello:1.3.0", "registry.example.com/evil/hello:1.2.0", m},
		{"foreign current image", "registry.example.com/evil/hello:1.3.0", "registry.example.com/acme/hello:1.2.0", m},
		{"no tag", "registry.example.com/acme/hello:1.3.0", "registry.example.com/acme/hello", m},
		{"no build rolled back", "registry.example.com/acme/hello:1.3.0", "registry.example.com/acme/hello:1.2.0", Meta{}},
	} {
		if _, err := RollbackImage(hello, tc.of, tc.image, tc.meta, nil); !promote.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent error", tc.name, err)
		}
	}
}

func TestPinnedImage(t *testing.T) {
	const k = "resources:\n- ../../base\nimages:\n- name: registry.example.com/acme/hello\n  newTag: \"1.4.0\"\n"
	for _, tc := range []struct{ name, kustomization, want string }{
		{"tag", k, "registry.example.com/acme/hello:1.4.0"},
		{"tag and digest", k + "  digest: " + digestB + "\n", "registry.example.com/acme/hello:1.4.0@" + digestB},
		{"by newName", "images:\n- name: hello\n  newName: registry.example.com/acme/hello\n  digest: " + digestB + "\n",
			"registry.example.com/acme/hello@" + digestB},
		{"renamed elsewhere", "images:\n- name: registry.example.com/acme/hello\n  newName: mirror.example.com/hello\n  newTag: \"2\"\n",
			"mirror.example.com/hello:2"},
		{"Docker Hub name", "images:\n- name: acme/hello\n  newTag: \"1\"\n", ""},
		{"no tag", "images:\n- name: registry.example.com/acme/hello\n  newName: registry.example.com/acme/hello\n", ""},
		{"tag suffix", k + "  tagSuffix: -debug\n", ""},
		{"two entries", k + "- name: registry.example.com/acme/hello\n  newTag: \"1.5.0\"\n", ""},
		{"no images", "resources:\n- ../../base\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := PinnedImage(hello, []byte(tc.kustomization)); err != nil || got != tc.want {
				t.Errorf("PinnedImage = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if got, err := PinnedImage(hello, []byte("images: [")); err != nil || got != "" {
		t.Errorf("broken YAML: %q, %v; want none", got, err)
	}
	bad := hello
	bad.Image = "Not An Image"
	if _, err := PinnedImage(bad, []byte(k)); !errors.Is(err, errInvalidProject) {
		t.Errorf("project without an image repository: %v", err)
	}
}

func TestIsImageEdit(t *testing.T) {
	const k = "namespace: hello\nimages:\n- name: registry.example.com/acme/hello\n  newTag: \"1.4.0\"\n- name: busybox\n  newTag: \"1.36\"\n"
	image := "registry.example.com/acme/hello:1.3.0"
	for _, tc := range []struct {
		name, before, after, image string
		want                       bool
	}{
		{"the image", k, strings.Replace(k, "1.4.0", "1.3.0", 1), image, true},
		{"reformatted too", k, "# rolled back\n" + strings.Replace(k, "\"1.4.0\"", "'1.3.0'", 1), image, true},
		{"not that image", k, strings.Replace(k, "1.4.0", "1.3.1", 1), image, false},
		{"another entry too", k, strings.Replace(strings.Replace(k, "1.4.0", "1.3.0", 1), "1.36", "1.37", 1), image, false},
		{"another field too", k, strings.Replace(strings.Replace(k, "1.4.0", "1.3.0", 1), "namespace: hello", "namespace: x", 1), image, false},
		{"unreadable before", "images: [", strings.Replace(k, "1.4.0", "1.3.0", 1), image, false},
		{"no image reference", k, k, "registry.example.com/acme/hello", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsImageEdit([]byte(tc.before), []byte(tc.after), tc.image); got != tc.want {
				t.Errorf("IsImageEdit = %v, want %v", got, tc.want)
			}
		})
	}
	for ref, want := range map[string]string{"nginx:1": "docker.io/library/nginx:1", image: image, "nginx": ""} {
		if got, err := NormalizeImage(ref); got != want || (err == nil) != (want != "") {
			t.Errorf("NormalizeImage(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
}

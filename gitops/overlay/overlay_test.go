package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/promote"
)

// memFiles is a map-based clone.Files. When guard is set, a write or removal
// outside it fails the test.
type memFiles struct {
	tb     testing.TB
	m      fstest.MapFS
	guard  string
	writes []string
}

var _ clone.Files = (*memFiles)(nil)

// loadRepo loads the sample config repository.
func loadRepo(tb testing.TB) *memFiles {
	tb.Helper()
	f := &memFiles{tb: tb, m: fstest.MapFS{}}
	root := filepath.Join("..", "..", "testdata", "configrepo")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		f.m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data, Mode: 0o644}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func (f *memFiles) check(name string) error {
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("%w: %q", clone.ErrInvalidPath, name)
	}
	if f.guard != "" && !strings.HasPrefix(name, f.guard) {
		f.tb.Errorf("write outside %s: %q", f.guard, name)
	}
	f.writes = append(f.writes, name)
	return nil
}

func (f *memFiles) ReadFile(name string) ([]byte, error) { return fs.ReadFile(f.m, name) }

func (f *memFiles) WriteFile(name string, data []byte) error {
	if err := f.check(name); err != nil {
		return err
	}
	f.m[name] = &fstest.MapFile{Data: append([]byte(nil), data...), Mode: 0o644}
	return nil
}

func (f *memFiles) RemoveAll(name string) error {
	if err := f.check(name); err != nil {
		return err
	}
	for k := range f.m {
		if k == name || strings.HasPrefix(k, name+"/") {
			delete(f.m, k)
		}
	}
	return nil
}

func (f *memFiles) ReadDir(name string) ([]fs.DirEntry, error) {
	if name == "" {
		name = "."
	}
	return fs.ReadDir(f.m, name)
}

func (f *memFiles) get(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := f.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func (f *memFiles) put(name, data string) {
	f.m[name] = &fstest.MapFile{Data: []byte(data), Mode: 0o644}
}

// snapshot returns every file's content, to compare states.
func (f *memFiles) snapshot() map[string]string {
	s := map[string]string{}
	for k, v := range f.m {
		s[k] = string(v.Data)
	}
	return s
}

func (f *memFiles) under(dir string) []string {
	var names []string
	for k := range f.m {
		if strings.HasPrefix(k, dir+"/") {
			names = append(names, strings.TrimPrefix(k, dir+"/"))
		}
	}
	sort.Strings(names)
	return names
}

var meta = Meta{
	Build:      "01JBUILD",
	Source:     "branch feature/Login @ abc123 https://ci.example.com/1",
	ApprovedBy: []string{"Ann <slack:U1> 2025-01-02T03:04:05Z"},
	PromotedBy: "Bob <slack:U2>",
}

// must returns a function that fails the test on a constructor's error.
func must(tb testing.TB) func(clone.Edit, error) clone.Edit {
	return func(e clone.Edit, err error) clone.Edit {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return e
	}
}

func TestQAOverlayCreate(t *testing.T) {
	f := loadRepo(t)
	f.guard = "apps/hello/overlays/qa/"
	edit := must(t)(QAOverlay(hello, promote.KindBranch, "feature/Login", "registry.example.com/acme/hello:1.4.0", meta))
	out, err := edit(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := "apps/hello/overlays/qa/branch-feature-login"
	if got := f.under(dir); strings.Join(got, ",") != "kustomization.yaml,mapping.yaml,namespace.yaml" {
		t.Fatalf("files %v", got)
	}
	for _, name := range f.under(dir) {
		golden(t, "qa/branch-feature-login/"+name, f.get(t, dir+"/"+name))
	}
	golden(t, "qa/branch-feature-login.message", []byte(out.Message()))
	if envOf(out) != "qa/branch-feature-login" || urlOf(out, promote.KindBranch) != "https://feature-login.branch.hello.example.com" ||
		out.Subject != "Deploy hello 1.4.0 to qa/branch-feature-login" {
		t.Errorf("outcome %+v", out)
	}
	var keys []string
	for _, tr := range out.Trailers {
		keys = append(keys, tr.Key)
	}
	if got := strings.Join(keys, ","); got != "Promotebot-Build,Promotebot-Project,Promotebot-Environment,Promotebot-Image,Promotebot-Source,Approved-by,Promoted-by" {
		t.Errorf("trailers %s", got)
	}
	rendered, err := Render(f, "apps/hello", "overlays/qa/branch-feature-login")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "qa/branch-feature-login.rendered.yaml", rendered)

	// The same clone.Edit again writes nothing.
	before, n := f.snapshot(), len(f.writes)
	if _, err := edit(f); err != nil {
		t.Fatal(err)
	}
	if len(f.writes) != n || fmt.Sprint(f.snapshot()) != fmt.Sprint(before) {
		t.Errorf("second run wrote %v", f.writes[n:])
	}
}

func TestQAOverlayUpdateKeepsEdits(t *testing.T) {
	f := loadRepo(t)
	first := must(t)(QAOverlay(hello, promote.KindTag, "v1.4.0", "registry.example.com/acme/hello:1.4.0", Meta{}))
	if _, err := first(f); err != nil {
		t.Fatal(err)
	}
	file := "apps/hello/overlays/qa/tag-v1-4-0/kustomization.yaml"
	person := strings.Replace(string(f.get(t, file)), "resources:", "# added by a person\ncommonAnnotations:\n  team: qa\nresources:", 1)
	f.put(file, person)
	second := must(t)(QAOverlay(hello, promote.KindTag, "v1.4.0", "registry.example.com/acme/hello:1.4.0@"+digestB, Meta{}))
	f.writes = nil
	out, err := second(f)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.writes, ",") != file {
		t.Errorf("writes %v", f.writes)
	}
	want := strings.Replace(person, "  newTag: 1.4.0\n", "  newTag: 1.4.0\n  digest: "+digestB+"\n", 1)
	if got := string(f.get(t, file)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// The digest shows in the subject: two images tagged 1.4.0 must not read
	// the same in git log --oneline.
	if out.Subject != "Deploy hello 1.4.0@sha256:0123456789ab to qa/tag-v1-4-0" || urlOf(out, promote.KindTag) != "https://v1-4-0.tag.hello.example.com" {
		t.Errorf("outcome %+v", out)
	}
	digestOnly := must(t)(QAOverlay(hello, promote.KindTag, "v1.4.0", "registry.example.com/acme/hello@"+digestB, Meta{}))
	if out, err = digestOnly(f); err != nil || out.Subject != "Deploy hello sha256:0123456789ab to qa/tag-v1-4-0" {
		t.Errorf("digest only: %+v, %v", out, err)
	}
}

func TestQAOverlayCollision(t *testing.T) {
	f := loadRepo(t)
	img := "registry.example.com/acme/hello:1.4.0"
	deploy := func(target string) (clone.Outcome, error) {
		return must(t)(QAOverlay(hello, promote.KindBranch, target, img, Meta{}))(f)
	}
	steps := []struct{ target, env string }{
		{"Feature/A", "qa/branch-feature-a"},
		{"feature-a", "qa/branch-feature-a-d4dfdb71"},
		{"Feature/A", "qa/branch-feature-a"},
		{"feature-a", "qa/branch-feature-a-d4dfdb71"},
	}
	for _, s := range steps {
		out, err := deploy(s.target)
		if err != nil || envOf(out) != s.env {
			t.Fatalf("%s: %s, %v; want %s", s.target, envOf(out), err, s.env)
		}
	}
	if out, _ := deploy("feature-a"); urlOf(out, promote.KindBranch) != "https://feature-a-d4dfdb71.branch.hello.example.com" {
		t.Errorf("url %s", urlOf(out, promote.KindBranch))
	}
	ns := string(f.get(t, "apps/hello/overlays/qa/branch-feature-a-d4dfdb71/namespace.yaml"))
	if !strings.Contains(ns, "name: hello-branch-feature-a-d4dfdb71\n") {
		t.Errorf("namespace.yaml:\n%s", ns)
	}
	// A directory a person made is never taken over.
	f.put("apps/hello/overlays/qa/branch-demo/kustomization.yaml", "resources:\n- ../../../base\n")
	if out, err := deploy("demo"); err != nil || envOf(out) != "qa/branch-demo-"+hash8(promote.KindBranch, "demo") {
		t.Errorf("demo: %s, %v", envOf(out), err)
	}
	f.put("apps/hello/overlays/qa/branch-demo2/notes.txt", "mine")
	f.put("apps/hello/overlays/qa/branch-demo2-"+hash8(promote.KindBranch, "demo2")+"/notes.txt", "mine too")
	if _, err := deploy("demo2"); !errors.Is(err, errEnvCollision) {
		t.Errorf("demo2: err = %v, want errEnvCollision", err)
	}
	// Delete removes only the env owned by exactly that target.
	del := must(t)(DeleteQAOverlay(hello, promote.KindBranch, "feature-a", meta))
	out, err := del(f)
	if err != nil || out.Subject != "Remove qa/branch-feature-a-d4dfdb71 of hello" {
		t.Fatalf("delete: %+v, %v", out, err)
	}
	if f.under("apps/hello/overlays/qa/branch-feature-a-d4dfdb71") != nil || f.under("apps/hello/overlays/qa/branch-feature-a") == nil {
		t.Errorf("wrong env removed")
	}
	f.writes = nil
	for _, target := range []string{"feature-a", "demo2", "never-deployed"} {
		if _, err := must(t)(DeleteQAOverlay(hello, promote.KindBranch, target, meta))(f); err != nil {
			t.Fatal(err)
		}
	}
	if f.writes != nil {
		t.Errorf("deleting what the target does not own wrote %v", f.writes)
	}
	if _, err := must(t)(DeleteQAOverlay(hello, promote.KindTag, "Feature/A", meta))(f); err != nil || f.writes != nil {
		t.Errorf("another kind removed the branch env: %v %v", err, f.writes)
	}
}

func TestQAOverlayHostileTargets(t *testing.T) {
	// Other scripts allowed, so that every valid name reaches the writer.
	hello := hello
	hello.AllowUnicodeTargets = true
	for _, target := range hostileTargets {
		t.Run(fmt.Sprintf("%q", target), func(t *testing.T) {
			f := loadRepo(t)
			f.guard = "apps/hello/overlays/qa/"
			edit, err := QAOverlay(hello, promote.KindBranch, target, "registry.example.com/acme/hello:1.4.0", meta)
			if err != nil {
				if !errors.Is(err, ErrInvalidTarget) {
					t.Fatalf("err = %v, want ErrInvalidTarget", err)
				}
				if validateTarget(target) == nil {
					t.Fatalf("refused a valid target: %v", err)
				}
				return
			}
			out, err := edit(f)
			if err != nil {
				t.Fatal(err)
			}
			dir := "apps/hello/overlays/qa/" + strings.TrimPrefix(envOf(out), "qa/")
			for _, w := range f.writes {
				if path.Dir(w) != dir {
					t.Errorf("wrote %q outside %s", w, dir)
				}
			}
			k, tg, ok := readOwner(f.get(t, dir+"/kustomization.yaml"))
			if !ok || k != "branch" || tg != target {
				t.Errorf("owner read back %q %q %v", k, tg, ok)
			}
			if _, err := must(t)(DeleteQAOverlay(hello, promote.KindBranch, target, meta))(f); err != nil || f.under(dir) != nil {
				t.Errorf("delete: %v, left %v", err, f.under(dir))
			}
		})
	}
}

func TestEditConstructorsRefuse(t *testing.T) {
	bad := hello
	bad.Path = "../outside"
	expired := Meta{Teardown: "expired"}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"foreign qa", second(QAOverlay(hello, promote.KindBranch, "main", "registry.example.com/acme/other:1", meta)), ErrForeignImage},
		{"foreign production", second(ProductionImage(hello, "evil.example.com/acme/hello:1", meta, nil)), ErrForeignImage},
		{"no tag", second(ProductionImage(hello, "registry.example.com/acme/hello", meta, nil)), errInvalidImage},
		{"bad target", second(QAOverlay(hello, promote.KindBranch, "../../etc", "registry.example.com/acme/hello:1", meta)), ErrInvalidTarget},
		{"bad kind", second(QAOverlay(hello, "pr", "main", "registry.example.com/acme/hello:1", meta)), ErrInvalidKind},
		{"bad delete target", second(DeleteQAOverlay(hello, promote.KindTag, "a\nb", meta)), ErrInvalidTarget},
		{"bad project", second(ProductionImage(bad, "registry.example.com/acme/hello:1", meta, nil)), errInvalidProject},
		{"teardown of production", second(TearDownQA(hello, "production", promote.KindBranch, "main", expired)), errInvalidEnv},
		{"teardown of a path", second(TearDownQA(hello, "qa/../production", promote.KindBranch, "main", expired)), errInvalidEnv},
		{"teardown of a sub-folder", second(TearDownQA(hello, "qa/branch-main/x", promote.KindBranch, "main", expired)), errInvalidEnv},
		{"teardown of qa/", second(TearDownQA(hello, "qa/", promote.KindBranch, "main", expired)), errInvalidEnv},
		{"teardown without a reason", second(TearDownQA(hello, "qa/branch-main", promote.KindBranch, "main", meta)), errNoReason},
		{"teardown of a bad kind", second(TearDownQA(hello, "qa/branch-main", "pr", "main", expired)), ErrInvalidKind},
		{"teardown of a bad target", second(TearDownQA(hello, "qa/branch-main", promote.KindBranch, "", expired)), ErrInvalidTarget},
		{"teardown of a bad project", second(TearDownQA(bad, "qa/branch-main", promote.KindBranch, "main", expired)), errInvalidProject},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	var fe *foreignImageError
	if !errors.As(tests[0].err, &fe) {
		t.Errorf("foreign: %T", tests[0].err)
	}
}

func second(_ clone.Edit, err error) error { return err }

func TestQAOverlayFailures(t *testing.T) {
	img := "registry.example.com/acme/hello:1.4.0"
	tests := []struct {
		name  string
		setup func(f *memFiles)
		p     promote.Project
		want  func(error) bool
	}{
		{"broken base", func(f *memFiles) {
			f.put("apps/hello/base/service.yaml", "kind: Service\nmetadata: {name: [x}\n")
		}, hello, func(err error) bool { var re *RenderError; return errors.As(err, &re) }},
		{"remote base", func(f *memFiles) {
			f.put("apps/hello/base/kustomization.yaml", "resources:\n- deployment.yaml\n- https://github.com/acme/x//svc?ref=main\n")
		}, hello, func(err error) bool { return errors.Is(err, errRemoteReference) }},
		{"two services", func(f *memFiles) {
			f.put("apps/hello/base/service.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports:\n  - port: 1\n---\n"+
				"apiVersion: v1\nkind: Service\nmetadata:\n  name: b\nspec:\n  ports:\n  - port: 2\n")
		}, hello, func(err error) bool { return errors.Is(err, errNoService) }},
		{"image not in base", func(f *memFiles) {
			dep := "apps/hello/base/deployment.yaml"
			f.put(dep, strings.Replace(string(f.get(t, dep)), "acme/hello", "acme/other", 1))
		}, hello, func(err error) bool { return errors.Is(err, errImageMismatch) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := loadRepo(t)
			tt.setup(f)
			_, err := must(t)(QAOverlay(tt.p, promote.KindBranch, "main", img, Meta{}))(f)
			if !tt.want(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	t.Run("base spells the image its own way", func(t *testing.T) {
		f := loadRepo(t)
		dep := "apps/hello/base/deployment.yaml"
		f.put(dep, strings.Replace(string(f.get(t, dep)), "registry.example.com/acme/hello:0.0.0", "nginx:1.25", 1))
		p := hello
		p.Image = "docker.io/library/nginx"
		out, err := must(t)(QAOverlay(p, promote.KindBranch, "main", "nginx:1.27", Meta{}))(f)
		if err != nil {
			t.Fatal(err)
		}
		k := string(f.get(t, "apps/hello/overlays/qa/branch-main/kustomization.yaml"))
		if !strings.HasSuffix(k, "images:\n- name: nginx\n  newTag: \"1.27\"\n") || out.Subject != "Deploy hello 1.27 to qa/branch-main" {
			t.Errorf("%+v\n%s", out, k)
		}
	})
	t.Run("service from project", func(t *testing.T) {
		f := loadRepo(t)
		p := hello
		p.Service = "hello-web:8080"
		if _, err := must(t)(QAOverlay(p, promote.KindBranch, "main", img, Meta{}))(f); err != nil {
			t.Fatal(err)
		}
		if m := string(f.get(t, "apps/hello/overlays/qa/branch-main/mapping.yaml")); !strings.Contains(m, "service: hello-web:8080\n") {
			t.Errorf("mapping.yaml:\n%s", m)
		}
	})
}

func TestProductionImage(t *testing.T) {
	f := loadRepo(t)
	f.guard = "apps/hello/overlays/production/"
	var diff string
	edit := must(t)(ProductionImage(hello, "registry.example.com/acme/hello:1.4.0@"+digestB, meta, &diff))
	out, err := edit(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(diff, "+") || !strings.Contains(diff, "registry.example.com/acme/hello:1.4.0@"+digestB) {
		t.Errorf("diff of the rendered production does not show the new image:\n%s", diff)
	}
	file := "apps/hello/overlays/production/kustomization.yaml"
	golden(t, "production/kustomization.yaml", f.get(t, file))
	golden(t, "production/message", []byte(out.Message()))
	if envOf(out) != "production" || out.Subject != "Promote hello 1.4.0@sha256:0123456789ab to production" {
		t.Errorf("outcome %+v", out)
	}
	n := len(f.writes)
	if _, err := edit(f); err != nil || len(f.writes) != n {
		t.Errorf("second run: %v, writes %v", err, f.writes[n:])
	}

	t.Run("entry added", func(t *testing.T) {
		f := loadRepo(t)
		f.put(file, "resources:\n  - ../../base\n")
		if _, err := edit(f); err != nil {
			t.Fatal(err)
		}
		want := "resources:\n  - ../../base\nimages:\n  - name: registry.example.com/acme/hello\n    newTag: 1.4.0\n    digest: " + digestB + "\n"
		if got := string(f.get(t, file)); got != want {
			t.Errorf("got\n%s", got)
		}
	})
	t.Run("missing overlay", func(t *testing.T) {
		f := loadRepo(t)
		if err := f.RemoveAll("apps/hello/overlays/production"); err != nil {
			t.Fatal(err)
		}
		_, err := edit(f)
		if !errors.Is(err, errNoOverlay) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("broken base", func(t *testing.T) {
		f := loadRepo(t)
		f.put("apps/hello/base/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\n")
		_, err := edit(f)
		var re *RenderError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "missing metadata.name") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestQAOverlayBaseSpellsImageOtherwise covers the slower path of a new
// overlay: the base names the image in its familiar form ("nginx") and its
// Service "web", so the first render's guess fails and the base is rendered
// to learn how it spells the image.
func TestQAOverlayBaseSpellsImageOtherwise(t *testing.T) {
	f := loadRepo(t)
	f.put("apps/hello/base/deployment.yaml", strings.Replace(string(f.get(t, "apps/hello/base/deployment.yaml")),
		"image: registry.example.com/acme/hello:0.0.0", "image: nginx:1.0", 1))
	f.put("apps/hello/base/service.yaml", strings.Replace(string(f.get(t, "apps/hello/base/service.yaml")),
		"name: hello", "name: web", 1))
	p := hello
	p.Image = "docker.io/library/nginx"
	out, err := must(t)(QAOverlay(p, promote.KindBranch, "x", "nginx:1.27", Meta{}))(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := "apps/hello/overlays/qa/branch-x/"
	kust := string(f.get(t, dir+"kustomization.yaml"))
	if !strings.Contains(kust, "- name: nginx\n  newTag: \"1.27\"\n") {
		t.Errorf("images entry does not use the base's spelling:\n%s", kust)
	}
	if m := string(f.get(t, dir+"mapping.yaml")); !strings.Contains(m, "service: web:80") {
		t.Errorf("mapping does not route to the base's Service:\n%s", m)
	}
	if envOf(out) != "qa/branch-x" {
		t.Errorf("env %s", envOf(out))
	}
	rendered, err := Render(f, "apps/hello", "overlays/qa/branch-x")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckImage(rendered, "docker.io/library/nginx", "docker.io/library/nginx:1.27"); err != nil {
		t.Fatal(err)
	}
}

// TestQAOverlayKeepsItsHashedEnv: once a target lives under the hashed name,
// it stays there when the plain name is freed, instead of growing a second env.
func TestQAOverlayKeepsItsHashedEnv(t *testing.T) {
	f := loadRepo(t)
	img := "registry.example.com/acme/hello:1.4.0"
	if _, err := must(t)(QAOverlay(hello, promote.KindBranch, "Feature/A", img, Meta{}))(f); err != nil {
		t.Fatal(err)
	}
	out, err := must(t)(QAOverlay(hello, promote.KindBranch, "feature-a", img, Meta{}))(f)
	if err != nil || envOf(out) != "qa/branch-feature-a-d4dfdb71" {
		t.Fatalf("%s, %v", envOf(out), err)
	}
	if _, err := must(t)(DeleteQAOverlay(hello, promote.KindBranch, "Feature/A", Meta{}))(f); err != nil {
		t.Fatal(err)
	}
	out, err = must(t)(QAOverlay(hello, promote.KindBranch, "feature-a", "registry.example.com/acme/hello:1.5.0", Meta{}))(f)
	if err != nil || envOf(out) != "qa/branch-feature-a-d4dfdb71" {
		t.Fatalf("after the plain name was freed: %s, %v; want the hashed env kept", envOf(out), err)
	}
	if f.under("apps/hello/overlays/qa/branch-feature-a") != nil {
		t.Fatal("a second env was created for the same target")
	}
}

// envOf is the environment an edit's outcome names in its trailers.
func envOf(out clone.Outcome) string {
	env, _ := Landed(hello, promote.KindBranch, out.Trailers)
	return env
}

// urlOf is the URL of the QA environment an edit of kind landed in.
func urlOf(out clone.Outcome, kind promote.Kind) string {
	_, url := Landed(hello, kind, out.Trailers)
	return url
}

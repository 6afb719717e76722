package overlay

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/promote"
)

// TestRenderImageForms pins what kustomize v0.21.2 renders for each images:
// override form, over a base image that has a tag and a digest: an override
// replaces both, so the result is always imageRef.String().
func TestRenderImageForms(t *testing.T) {
	const base = "registry.example.com/acme/hello:0.0.0@" + digestA
	tests := []struct {
		name string
		img  imageRef
		want string
	}{
		{"tag", imageRef{hello.Image, "1.4.0", ""}, "registry.example.com/acme/hello:1.4.0"},
		{"digest", imageRef{hello.Image, "", digestB}, "registry.example.com/acme/hello@" + digestB},
		{"tag and digest", imageRef{hello.Image, "1.4.0", digestB}, "registry.example.com/acme/hello:1.4.0@" + digestB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := loadRepo(t)
			dep := "apps/hello/base/deployment.yaml"
			f.put(dep, strings.Replace(string(f.get(t, dep)), "registry.example.com/acme/hello:0.0.0", base, 1))
			prod := "apps/hello/overlays/production/kustomization.yaml"
			out, _, err := setImage(f.get(t, prod), tt.img, "")
			if err != nil {
				t.Fatal(err)
			}
			f.put(prod, string(out))
			rendered, err := Render(f, "apps/hello", "overlays/production")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(rendered), "image: "+tt.want+"\n") || tt.img.String() != tt.want {
				t.Errorf("rendered:\n%s\nwant image %s", rendered, tt.want)
			}
			if err := CheckImage(rendered, hello.Image, tt.img.String()); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestRenderSampleProduction(t *testing.T) {
	f := loadRepo(t)
	rendered, err := Render(f, "apps/hello", "overlays/production")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"image: registry.example.com/acme/hello:1.3.0", "namespace: hello", "replicas: 3"} {
		if !strings.Contains(string(rendered), want) {
			t.Errorf("rendered lacks %q:\n%s", want, rendered)
		}
	}
	if err := CheckImage(rendered, hello.Image, "registry.example.com/acme/hello:1.3.0"); err != nil {
		t.Error(err)
	}
}

func TestRenderRefusesRemote(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, err := w.Write([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: remote\n"))
		if err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	tests := map[string]string{
		"http resource":     "resources:\n- " + srv.URL + "/cm.yaml\n",
		"https base":        "resources:\n- https://github.com/acme/config//base?ref=v1\n",
		"github shorthand":  "resources:\n- github.com/acme/config/base\n",
		"scp-like":          "resources:\n- git@github.com:acme/config.git//base\n",
		"ssh":               "resources:\n- ssh://git@example.com/acme/config.git\n",
		"git prefix":        "resources:\n- git::https://example.com/acme/config.git\n",
		"file url":          "resources:\n- file:///etc\n",
		"ref query":         "resources:\n- example.com/acme/config?ref=main\n",
		"bases":             "bases:\n- https://example.com/acme/config\n",
		"component":         "components:\n- https://example.com/acme/component\n",
		"patch path":        "patches:\n- path: " + srv.URL + "/patch.yaml\n",
		"generator file":    "configMapGenerator:\n- name: x\n  files:\n  - k=" + srv.URL + "/f\n",
		"generator envs":    "secretGenerator:\n- name: x\n  envs:\n  - " + srv.URL + "/env\n",
		"openapi":           "openapi:\n  path: " + srv.URL + "/schema.json\n",
		"configurations":    "configurations:\n- " + srv.URL + "/c.yaml\n",
		"json6902":          "patchesJson6902:\n- path: " + srv.URL + "/p.yaml\n  target: {kind: Deployment, name: hello}\n",
		"replacements path": "replacements:\n- path: " + srv.URL + "/r.yaml\n",
		"transformers":      "transformers:\n- " + srv.URL + "/t.yaml\n",
		"strategic merge":   "patchesStrategicMerge:\n- " + srv.URL + "/p.yaml\n",
		"duplicate key":     "resources:\n- " + srv.URL + "/cm.yaml\n",
		"alias":             "commonAnnotations:\n  x: &u " + srv.URL + "/cm.yaml\ncomponents:\n- *u\n",
	}
	for name, kust := range tests {
		t.Run(name, func(t *testing.T) {
			f := loadRepo(t)
			f.put("apps/hello/base/kustomization.yaml", "resources:\n- deployment.yaml\n"+kust)
			_, err := Render(f, "apps/hello", "overlays/production")
			if !errors.Is(err, errRemoteReference) {
				t.Fatalf("err = %v, want errRemoteReference", err)
			}
			if !strings.Contains(err.Error(), "apps/hello/base/kustomization.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	plugins := map[string]string{
		"patch transformer file": "apiVersion: builtin\nkind: PatchTransformer\nmetadata:\n  name: p\npath: " + srv.URL + "/p.yaml\n",
		"generator file":         "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: g\nfiles:\n- " + srv.URL + "/f\n",
		"replacements file":      "apiVersion: builtin\nkind: ReplacementTransformer\nmetadata:\n  name: r\nreplacements:\n- path: " + srv.URL + "/r\n",
		"unparsable":             "kind: PatchTransformer\npath: [\n",
	}
	for name, config := range plugins {
		t.Run(name, func(t *testing.T) {
			f := loadRepo(t)
			f.put("apps/hello/base/plugin.yaml", config)
			f.put("apps/hello/base/kustomization.yaml", "resources:\n- deployment.yaml\ntransformers:\n- plugin.yaml\n")
			if _, err := Render(f, "apps/hello", "base"); !errors.Is(err, errRemoteReference) {
				t.Fatalf("err = %v, want errRemoteReference", err)
			}
			f.put("apps/hello/base/kustomization.yaml", "resources:\n- deployment.yaml\ngenerators:\n- |\n  "+
				strings.ReplaceAll(strings.TrimSuffix(config, "\n"), "\n", "\n  ")+"\n")
			if _, err := Render(f, "apps/hello", "base"); !errors.Is(err, errRemoteReference) {
				t.Fatalf("inline: err = %v, want errRemoteReference", err)
			}
		})
	}
	t.Run("plugin configs from a directory", func(t *testing.T) {
		f := loadRepo(t)
		f.put("apps/hello/base/t/kustomization.yaml", "resources:\n- p.yaml\n")
		f.put("apps/hello/base/t/p.yaml", plugins["patch transformer file"])
		f.put("apps/hello/base/kustomization.yaml", "resources:\n- deployment.yaml\ntransformers:\n- t\n")
		if _, err := Render(f, "apps/hello", "base"); !errors.Is(err, errRemoteReference) {
			t.Fatalf("err = %v, want errRemoteReference", err)
		}
	})
	t.Run("local plugin config", func(t *testing.T) {
		f := loadRepo(t)
		f.put("apps/hello/base/plugin.yaml", "apiVersion: builtin\nkind: AnnotationsTransformer\nmetadata:\n  name: a\n"+
			"annotations:\n  docs: https://docs.example.com/\nfieldSpecs:\n- path: metadata/annotations\n  create: true\n")
		f.put("apps/hello/base/kustomization.yaml", "resources:\n- deployment.yaml\ntransformers:\n- plugin.yaml\n")
		rendered, err := Render(f, "apps/hello", "base")
		if err != nil || !strings.Contains(string(rendered), "docs: https://docs.example.com/") {
			t.Fatalf("err = %v\n%s", err, rendered)
		}
	})
	if hits.Load() != 0 {
		t.Errorf("the test server was reached %d times", hits.Load())
	}
	t.Run("literals may hold URLs", func(t *testing.T) {
		f := loadRepo(t)
		f.put("apps/hello/base/kustomization.yaml", string(f.get(t, "apps/hello/base/kustomization.yaml"))+
			"configMapGenerator:\n- name: urls\n  literals:\n  - API=https://api.example.com/\n")
		if _, err := Render(f, "apps/hello", "overlays/production"); err != nil {
			t.Fatal(err)
		}
	})
	// Without the check, krusty fetches http resources itself: the check is
	// what keeps it off the network.
	t.Run("krusty alone would fetch", func(t *testing.T) {
		fsys := filesys.MakeFsInMemory()
		if err := fsys.WriteFile("/k/kustomization.yaml", []byte("resources:\n- "+srv.URL+"/cm.yaml\n")); err != nil {
			t.Fatal(err)
		}
		before := hits.Load()
		if _, err := build(fsys, "/k", "k", false); err != nil {
			t.Fatal(err)
		}
		if hits.Load() != before+1 {
			t.Errorf("hits = %d, want %d", hits.Load(), before+1)
		}
	})
}

// TestRenderNoDisk shows that an absolute path does not reach the disk: the
// in-memory file system has nothing but the project.
func TestRenderNoDisk(t *testing.T) {
	f := loadRepo(t)
	f.put("apps/hello/base/kustomization.yaml", "resources:\n- /etc/hostname\n- ../../../../etc\n")
	_, err := Render(f, "apps/hello", "base")
	var re *RenderError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RenderError", err)
	}
}

func TestRenderBrokenBase(t *testing.T) {
	f := loadRepo(t)
	f.put("apps/hello/base/deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: [broken\n")
	_, err := Render(f, "apps/hello", "overlays/production")
	var re *RenderError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RenderError", err)
	}
	if re.Dir != "apps/hello/overlays/production" || !strings.Contains(err.Error(), re.Err.Error()) ||
		!strings.Contains(err.Error(), "deployment.yaml") {
		t.Errorf("error %q: dir %q", err, re.Dir)
	}
}

func TestRenderSkipsOtherOverlays(t *testing.T) {
	f := loadRepo(t)
	// A broken sibling overlay must not matter, and is not even copied.
	f.put("apps/hello/overlays/qa/branch-other/kustomization.yaml", "resources:\n- https://example.com/x\n")
	f.put("apps/hello/overlays/staging/kustomization.yaml", "bogus: [\n")
	if _, err := Render(f, "apps/hello", "overlays/production"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		render, dir string
		skip        bool
	}{
		{"overlays/production", "overlays/production", false},
		{"overlays/production", "overlays/production/patches", false},
		{"overlays/production", "overlays/qa", true},
		{"overlays/production", "overlays/staging", true},
		{"overlays/production", "base", false},
		{"overlays/production", "components/x", false},
		{"overlays/qa/branch-x", "overlays/qa", false},
		{"overlays/qa/branch-x", "overlays/qa/branch-x", false},
		{"overlays/qa/branch-x", "overlays/qa/branch-x/sub", false},
		{"overlays/qa/branch-x", "overlays/qa/branch-y", true},
		{"overlays/qa/branch-x", "overlays/qa/branch-xy", true},
		{"overlays/qa/branch-x", "overlays/production", true},
		{"base", "overlays/production", true},
		{"base", "base/sub", false},
	}
	for _, tt := range tests {
		if got := skipDir(tt.dir, tt.render); got != tt.skip {
			t.Errorf("render %s: skip %s = %v, want %v", tt.render, tt.dir, got, tt.skip)
		}
	}
	if _, err := Render(f, "apps/hello", "../x"); !errors.Is(err, clone.ErrInvalidPath) {
		t.Errorf("err = %v, want clone.ErrInvalidPath", err)
	}
}

func TestCheckImage(t *testing.T) {
	const want = "registry.example.com/acme/hello:1.4.0"
	dep := func(kind, image string) string {
		return "apiVersion: apps/v1\nkind: " + kind + "\nmetadata:\n  name: w\nspec:\n  template:\n    spec:\n" +
			"      containers:\n      - name: c\n        image: " + image + "\n"
	}
	cron := "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: cj\nspec:\n  jobTemplate:\n    spec:\n      template:\n" +
		"        spec:\n          initContainers:\n          - name: i\n            image: registry.example.com/acme/hello:0.9\n"
	tests := []struct {
		name, rendered, repo, want string
		err                        bool
	}{
		{"deployment", dep("Deployment", want), hello.Image, want, false},
		{"statefulset mismatch", dep("StatefulSet", "registry.example.com/acme/hello:1.3.0"), hello.Image, want, true},
		{"other images ignored", dep("DaemonSet", want) + "---\n" + dep("Job", "busybox:1.36"), hello.Image, want, false},
		{"none", dep("Deployment", "busybox:1.36"), hello.Image, want, true},
		{"services only", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n", hello.Image, want, true},
		{"cronjob init container", dep("Deployment", want) + "---\n" + cron, hello.Image, want, true},
		{"digest differs", dep("Deployment", want+"@"+digestA), hello.Image, want, true},
		{"tag and digest", dep("Deployment", want+"@"+digestA), hello.Image, want + "@" + digestA, false},
		{"docker hub", dep("Deployment", "nginx:1.27"), "docker.io/library/nginx", "docker.io/library/nginx:1.27", false},
		{"similar name", dep("Deployment", "registry.example.com/acme/hello-db:1"), hello.Image, want, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckImage([]byte(tt.rendered), tt.repo, tt.want)
			if tt.err != (err != nil) || err != nil && !errors.Is(err, errImageMismatch) {
				t.Errorf("CheckImage = %v, want error %v", err, tt.err)
			}
		})
	}
}

// BenchmarkRenderQA measures one render of the sample QA overlay.
func BenchmarkRenderQA(b *testing.B) {
	f := loadRepo(b)
	edit, err := QAOverlay(hello, promote.KindBranch, "feature/login", "registry.example.com/acme/hello:1.4.0", Meta{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := edit(f); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Render(f, "apps/hello", "overlays/qa/branch-feature-login"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQAOverlayUpdate measures a whole QA clone.Edit on an existing overlay:
// resolve, in-place image edit, render, check.
func BenchmarkQAOverlayUpdate(b *testing.B) {
	f := loadRepo(b)
	for i := 0; b.Loop(); i++ {
		image := "registry.example.com/acme/hello:1." + string(rune('0'+i%10))
		edit, err := QAOverlay(hello, promote.KindBranch, "feature/login", image, Meta{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := edit(f); err != nil {
			b.Fatal(err)
		}
	}
}

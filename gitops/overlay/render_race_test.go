package overlay

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"sigs.k8s.io/kustomize/kyaml/openapi"
)

// concurrentProjects returns a repo of n copies of the sample project, each
// with its own QA overlay touching what reads kustomize's global state: a
// strategic-merge patch (the OpenAPI schema), a kind outside the
// precomputed namespace scopes (a Mapping), a generated ConfigMap. Some
// overlays set the schema themselves (openapi: version, or a custom schema
// file), which must neither race nor leak into the others' renders.
func concurrentProjects(tb testing.TB, n int) (*memFiles, []string) {
	src := loadRepo(tb)
	f := &memFiles{tb: tb, m: fstest.MapFS{}}
	var projects []string
	for i := range n {
		app := fmt.Sprintf("app-%03d", i)
		for name, file := range src.m {
			if rest, ok := strings.CutPrefix(name, "apps/hello/"); ok && !strings.HasPrefix(rest, "overlays/qa/") {
				f.put("apps/"+app+"/"+rest, strings.ReplaceAll(string(file.Data), "hello", app))
			}
		}
		dir := "apps/" + app + "/overlays/qa/env"
		kust := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: qa-%[1]d
resources:
- ../../../base
- mapping.yaml
images:
- name: registry.example.com/acme/%[2]s
  newTag: "2.0.%[1]d"
patches:
- patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: %[2]s
    spec:
      template:
        spec:
          containers:
          - name: %[2]s
            env:
            - name: ENV
              value: qa-%[1]d
configMapGenerator:
- name: extra
  literals:
  - N=%[1]d
`, i, app)
		switch i % 50 {
		case 7:
			kust += "openapi:\n  version: " + openapi.DefaultOpenAPI + "\n"
		case 31:
			kust += "openapi:\n  path: schema.json\n"
			f.put(dir+"/schema.json", `{"swagger": "2.0", "info": {"title": "x", "version": "1"}, "paths": {}, "definitions": {}}`)
		}
		f.put(dir+"/kustomization.yaml", kust)
		f.put(dir+"/mapping.yaml", fmt.Sprintf(`apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata:
  name: %[1]s
spec:
  hostname: %[1]s.qa.example.com
  prefix: /
  service: %[1]s:80
`, app))
		projects = append(projects, "apps/"+app)
	}
	return f, projects
}

// renderAll renders the QA overlay of every project, concurrently or one
// after the other, bypassing the render cache.
func renderAll(tb testing.TB, f *memFiles, projects []string, concurrent bool) []string {
	renders = &renderCache{max: 128, out: map[string][]byte{}}
	out := make([]string, len(projects))
	var wg sync.WaitGroup
	for i, p := range projects {
		run := func() {
			r, err := Render(f, p, "overlays/qa/env")
			if err != nil {
				tb.Errorf("%s: %v", p, err)
			}
			out[i] = string(r)
		}
		if !concurrent {
			run()
			continue
		}
		wg.Go(run)
	}
	wg.Wait()
	return out
}

// TestRenderConcurrent renders 200 different overlays at once, from a
// schema not yet parsed, and checks every result against a render of its
// own; with -race it proves that concurrent renders share no unguarded
// state.
func TestRenderConcurrent(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 40
	}
	f, projects := concurrentProjects(t, n)
	// As at start-up: no schema parsed yet.
	openapi.ResetOpenAPI()
	schemaOnce = sync.Once{}
	first := renderAll(t, f, projects, true)
	want := renderAll(t, f, projects, false)
	again := renderAll(t, f, projects, true)
	for i := range projects {
		if first[i] != want[i] || again[i] != want[i] {
			t.Errorf("%s: concurrent renders differ from the serial one:\n%s\n---\n%s\n---\n%s", projects[i], first[i], again[i], want[i])
		}
	}
	// (app-031's custom schema has no Deployment: there the patch replaces
	// the list of containers, as in a fresh kustomize, image included.)
	for _, i := range []int{0, 7} {
		for _, s := range []string{"value: qa-" + fmt.Sprint(i), "image: registry.example.com/acme/app-" + fmt.Sprintf("%03d", i) + ":2.0." + fmt.Sprint(i),
			"kind: Mapping", "namespace: qa-" + fmt.Sprint(i)} {
			if !strings.Contains(want[i], s) {
				t.Errorf("%s renders without %q:\n%s", projects[i], s, want[i])
			}
		}
	}
}

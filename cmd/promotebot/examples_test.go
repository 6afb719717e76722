package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"text/template"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/promote"
)

// The examples a user copies (examples/) are tested with the bot's own
// parts: its renderer and overlay writer on the sample config repo, kustomize
// on the deployment manifests, validate on the configurations, and the real
// server behind the CI snippets.

var (
	examplesDir       = filepath.Join("..", "..", "examples")
	exampleRepo       = filepath.Join(examplesDir, "config-repo")
	examplePromotebot = filepath.Join(examplesDir, "promotebot.yaml")
)

// exampleOverlays is every kustomization of examples/config-repo with the
// image it must run and the namespace its objects get.
var exampleOverlays = []struct {
	project, dir, image, namespace string
}{
	{"shop-web", "base", "registry.example.com/acme/shop-web:1.0.0", ""},
	{"shop-web", "overlays/production", "registry.example.com/acme/shop-web:2.3.1", "shop-web"},
	{"shop-web", "overlays/qa/branch-feature-login", "registry.example.com/acme/shop-web:2.4.0-feature-login.7", "shop-web-branch-feature-login"},
	{"shop-api", "base", "registry.example.com/acme/shop-api:1.0.0", ""},
	{"shop-api", "overlays/production", "registry.example.com/acme/shop-api:4.12.0", "shop-api"},
	{"shop-api", "overlays/qa/tag-v4-13-0-rc-1", "registry.example.com/acme/shop-api:v4.13.0-rc.1", "shop-api-tag-v4-13-0-rc-1"},
}

// exampleFiles is a clone.Files held in memory, loaded from a folder.
type exampleFiles struct{ m fstest.MapFS }

var _ clone.Files = (*exampleFiles)(nil)

func loadExampleFiles(t *testing.T, dir string) *exampleFiles {
	t.Helper()
	f := &exampleFiles{m: fstest.MapFS{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f.m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data, Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *exampleFiles) ReadFile(name string) ([]byte, error) { return fs.ReadFile(f.m, name) }

func (f *exampleFiles) WriteFile(name string, data []byte) error {
	f.m[name] = &fstest.MapFile{Data: bytes.Clone(data), Mode: 0o644}
	return nil
}

func (f *exampleFiles) RemoveAll(name string) error {
	for k := range f.m {
		if k == name || strings.HasPrefix(k, name+"/") {
			delete(f.m, k)
		}
	}
	return nil
}

func (f *exampleFiles) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(f.m, name) }

func (f *exampleFiles) clone() *exampleFiles {
	c := &exampleFiles{m: fstest.MapFS{}}
	for k, v := range f.m {
		c.m[k] = &fstest.MapFile{Data: bytes.Clone(v.Data), Mode: v.Mode}
	}
	return c
}

// exampleProjects are the projects of examples/promotebot.yaml as the
// writer sees them.
func exampleProjects(t *testing.T) map[string]promote.Project {
	t.Helper()
	cfg, err := promote.LoadConfig(examplePromotebot)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]promote.Project{}
	for _, p := range cfg.Projects {
		out[p.ID] = p
	}
	return out
}

// yamlDocs decodes every document of a multi-document YAML stream.
func yamlDocs(t *testing.T, name string, data []byte) []map[string]any {
	t.Helper()
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// field walks nested maps: lookup(doc, "metadata", "name").
func lookup(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func lookupStr(v any, keys ...string) string {
	s, _ := lookup(v, keys...).(string)
	return s
}

func ofKind(docs []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, d := range docs {
		if d["kind"] == kind {
			out = append(out, d)
		}
	}
	return out
}

// kustomizationDirs lists, relative to root, the folders holding a
// kustomization.yaml.
func kustomizationDirs(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		dirs = append(dirs, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(dirs)
	return dirs
}

func TestExamplesConfigRepoRenders(t *testing.T) {
	f := loadExampleFiles(t, exampleRepo)
	var want []string
	for _, o := range exampleOverlays {
		want = append(want, path.Join("apps", o.project, o.dir))
	}
	slices.Sort(want)
	if got := kustomizationDirs(t, exampleRepo); !slices.Equal(got, want) {
		t.Fatalf("kustomizations in examples/config-repo:\n%v\nthe test covers:\n%v", got, want)
	}
	for _, o := range exampleOverlays {
		t.Run(o.project+"/"+o.dir, func(t *testing.T) {
			repo, _, _ := strings.Cut(o.image, ":")
			rendered, err := overlay.Render(f, path.Join("apps", o.project), o.dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := overlay.CheckImage(rendered, repo, o.image); err != nil {
				t.Fatal(err)
			}
			docs := yamlDocs(t, o.dir, rendered)
			if len(ofKind(docs, "Deployment")) != 1 || len(ofKind(docs, "Service")) != 1 {
				t.Errorf("want one Deployment and one Service:\n%s", rendered)
			}
			if o.namespace == "" {
				return
			}
			for _, d := range docs {
				if d["kind"] != "Namespace" && lookupStr(d, "metadata", "namespace") != o.namespace {
					t.Errorf("%s %s is in namespace %q, want %s", d["kind"], lookupStr(d, "metadata", "name"), lookupStr(d, "metadata", "namespace"), o.namespace)
				}
			}
			if ns := ofKind(docs, "Namespace"); len(ns) != 1 || lookupStr(ns[0], "metadata", "name") != o.namespace {
				t.Errorf("want the Namespace %s in the overlay, got %v", o.namespace, ns)
			}
			if m := ofKind(docs, "Mapping"); len(m) != 1 || lookupStr(m[0], "spec", "service") != o.project+":80" {
				t.Errorf("want one Mapping to %s:80, got %v", o.project, m)
			}
			if !strings.HasPrefix(o.dir, "overlays/qa/") {
				return
			}
			// A teardown removes the folder: Argo CD and Flux must delete
			// every object it rendered, its Namespace included.
			for _, d := range docs {
				if strings.Contains(lookupStr(d, "metadata", "annotations", "argocd.argoproj.io/sync-options"), "Delete=false") ||
					lookupStr(d, "metadata", "annotations", "kustomize.toolkit.fluxcd.io/prune") == "disabled" {
					t.Errorf("%s %s would outlive its environment's teardown", d["kind"], lookupStr(d, "metadata", "name"))
				}
			}
		})
	}
}

// The QA overlays are byte for byte what the bot writes for their branch or
// tag, and writing them again changes nothing.
func TestExamplesQAOverlaysAreWhatTheBotWrites(t *testing.T) {
	projects := exampleProjects(t)
	disk := loadExampleFiles(t, exampleRepo)
	for _, o := range exampleOverlays {
		env, ok := strings.CutPrefix(o.dir, "overlays/qa/")
		if !ok {
			continue
		}
		t.Run(env, func(t *testing.T) {
			p := projects[o.project]
			dir := path.Join(p.Path, o.dir)
			kust := yamlDocs(t, dir, noErr(disk.ReadFile(dir+"/kustomization.yaml")))[0]
			kind := lookupStr(kust, "metadata", "annotations", "promotebot.dev/kind")
			target := lookupStr(kust, "metadata", "annotations", "promotebot.dev/target")
			edit, err := overlay.QAOverlay(p, promote.Kind(kind), target, o.image, overlay.Meta{})
			if err != nil {
				t.Fatal(err)
			}

			fresh := disk.clone()
			if err := fresh.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			out, err := edit(fresh)
			if err != nil {
				t.Fatal(err)
			}
			mapping := yamlDocs(t, "mapping.yaml", noErr(disk.ReadFile(dir+"/mapping.yaml")))[0]
			gotEnv, gotURL := overlay.Landed(p, promote.Kind(kind), out.Trailers)
			if gotEnv != "qa/"+env || gotURL != "https://"+lookupStr(mapping, "spec", "hostname") {
				t.Errorf("the bot writes %s (%s), the example is qa/%s (https://%s)", gotEnv, gotURL, env, lookupStr(mapping, "spec", "hostname"))
			}
			names, err := fs.Glob(fresh.m, dir+"/*")
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{dir + "/kustomization.yaml", dir + "/mapping.yaml", dir + "/namespace.yaml"}; !slices.Equal(names, want) {
				t.Errorf("the bot writes %v, want %v", names, want)
			}
			for _, name := range names {
				if got, want := noErr(fresh.ReadFile(name)), noErr(disk.ReadFile(name)); !bytes.Equal(got, want) {
					t.Errorf("%s: the bot writes\n%s\nthe example holds\n%s", name, got, want)
				}
			}

			again := disk.clone()
			if _, err := edit(again); err != nil {
				t.Fatal(err)
			}
			for name, file := range disk.m {
				if !bytes.Equal(again.m[name].Data, file.Data) {
					t.Errorf("deploying the same image again changed %s", name)
				}
			}
		})
	}
}

// The bot can promote to the production overlays: one line changes.
func TestExamplesProductionOverlaysTakeAPromotion(t *testing.T) {
	disk := loadExampleFiles(t, exampleRepo)
	for id, p := range exampleProjects(t) {
		t.Run(id, func(t *testing.T) {
			image := p.Image + ":9.9.9"
			var diff string
			edit, err := overlay.ProductionImage(p, image, overlay.Meta{}, &diff)
			if err != nil {
				t.Fatal(err)
			}
			f := disk.clone()
			_, err = edit(f)
			if err != nil {
				t.Fatal(err)
			}
			name := path.Join(p.Path, "overlays/production/kustomization.yaml")
			before := strings.Split(string(noErr(disk.ReadFile(name))), "\n")
			after := strings.Split(string(noErr(f.ReadFile(name))), "\n")
			var changed []string
			for i := range max(len(before), len(after)) {
				if i >= len(before) || i >= len(after) || before[i] != after[i] {
					changed = append(changed, after[min(i, len(after)-1)])
				}
			}
			if len(changed) != 1 || !strings.Contains(changed[0], "newTag:") || !strings.Contains(changed[0], "9.9.9") {
				t.Errorf("promotion changed %q in %s", changed, name)
			}
			if !strings.Contains(diff, image) {
				t.Errorf("the diff does not show %s:\n%s", image, diff)
			}
		})
	}
}

// buildKustomization runs kustomize on a folder of examples/ on disk. krusty
// has global state; these tests do not run in parallel.
func buildKustomization(t *testing.T, dir string) []map[string]any {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return yamlDocs(t, dir, out)
}

// Every kustomization outside the config repo builds.
func TestExamplesKustomizationsBuild(t *testing.T) {
	dirs := slices.DeleteFunc(kustomizationDirs(t, examplesDir), func(d string) bool {
		return strings.HasPrefix(d, "config-repo/")
	})
	if want := []string{"argocd", "flux", "kubernetes"}; !slices.Equal(dirs, want) {
		t.Errorf("kustomizations %v, want %v", dirs, want)
	}
	for _, d := range dirs {
		if docs := buildKustomization(t, filepath.Join(examplesDir, d)); len(docs) == 0 {
			t.Errorf("%s builds nothing", d)
		}
	}
}

// Every YAML file under examples/ parses, every document of it.
func TestExamplesYAMLParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(examplesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (path.Ext(p) != ".yaml" && path.Ext(p) != ".yml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if len(yamlDocs(t, p, data)) == 0 {
			t.Errorf("%s holds no document", p)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 30 {
		t.Errorf("only %d YAML files under examples/", n)
	}
}

func TestExamplesConfigsValidate(t *testing.T) {
	for file, want := range map[string]string{
		"promotebot.yaml":            "config OK: 2 projects (shop-web, shop-api)\n",
		"kubernetes/promotebot.yaml": "config OK: 2 projects (shop-web, shop-api)\n",
		"config.yaml":                "config OK: 1 project (hello)\n",
	} {
		stdout, stderr, err := runWith(t, nil, "validate", "--config", filepath.Join(examplesDir, file))
		if err != nil || stdout != want {
			t.Errorf("validate %s: %q %q %v, want %q", file, stdout, stderr, err, want)
		}
	}

	// The reference configuration shows every key the README documents,
	// set or commented out, and names every secret the bot reads.
	readme := string(noErr(os.ReadFile(filepath.Join("..", "..", "README.md"))))
	// The keys are the Configuration section's table (other tables name
	// JSON fields the same way).
	if i := strings.Index(readme, "\n## Configuration\n"); i >= 0 {
		readme = readme[i+1:]
		if j := strings.Index(readme[1:], "\n## "); j >= 0 {
			readme = readme[:j+1]
		}
	}
	example := string(noErr(os.ReadFile(examplePromotebot)))
	keys := regexp.MustCompile("(?m)^\\| `([a-zA-Z.\\[\\]]+)` \\|").FindAllStringSubmatch(readme, -1)
	if len(keys) < 20 {
		t.Fatalf("found only %d configuration keys in README.md", len(keys))
	}
	for _, k := range keys {
		leaf := k[1][strings.LastIndexAny(k[1], ".]")+1:]
		if !regexp.MustCompile(`(?m)^[\s#-]*` + regexp.QuoteMeta(leaf) + `:`).MatchString(example) {
			t.Errorf("examples/promotebot.yaml does not show %s", k[1])
		}
	}
	for _, v := range secretVariables() {
		if !strings.Contains(example, v) {
			t.Errorf("examples/promotebot.yaml does not mention %s", v)
		}
	}
}

// secretVariables are the environment variables the bot reads its secrets
// from, asked of the bot itself.
func secretVariables() []string {
	var vars []string
	promote.SecretsFromEnv(func(k string) string { vars = append(vars, k); return "" })
	return vars
}

func TestExamplesKubernetesRunsTheBot(t *testing.T) {
	docs := buildKustomization(t, filepath.Join(examplesDir, "kubernetes"))
	kinds := map[string]map[string]any{}
	for _, d := range docs {
		kinds[d["kind"].(string)] = d
		if d["kind"] != "Namespace" && lookupStr(d, "metadata", "namespace") != "promotebot" {
			t.Errorf("%s is not in namespace promotebot", d["kind"])
		}
	}
	for _, k := range []string{"Namespace", "Secret", "PersistentVolumeClaim", "ConfigMap", "Deployment", "Service"} {
		if kinds[k] == nil {
			t.Fatalf("no %s in examples/kubernetes", k)
		}
	}
	dep, cm := kinds["Deployment"], kinds["ConfigMap"]
	if lookup(dep, "spec", "replicas") != 1 || lookupStr(dep, "spec", "strategy", "type") != "Recreate" {
		t.Errorf("SQLite wants 1 replica and Recreate: %v", lookup(dep, "spec"))
	}
	pod := lookup(dep, "spec", "template", "spec")
	if lookup(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("the pod may run as root")
	}
	c := lookup(pod, "containers").([]any)[0]
	if lookupStr(c, "image") != "registry.example.com/acme/promotebot:0.1.0" || !slices.Equal(lookup(c, "args").([]any), []any{"serve"}) {
		t.Errorf("container runs %v %v", lookupStr(c, "image"), lookup(c, "args"))
	}
	if lookup(c, "securityContext", "readOnlyRootFilesystem") != true || lookupStr(c, "readinessProbe", "httpGet", "path") != "/readyz" ||
		lookupStr(c, "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Errorf("container security context or probes: %v", c)
	}

	env := map[string]any{}
	for _, e := range lookup(c, "env").([]any) {
		env[lookupStr(e, "name")] = e
	}
	secret := lookupStr(kinds["Secret"], "metadata", "name")
	for _, v := range secretVariables() {
		if lookupStr(env[v], "valueFrom", "secretKeyRef", "name") != secret || lookupStr(env[v], "valueFrom", "secretKeyRef", "key") != v {
			t.Errorf("%s does not come from the Secret %s: %v", v, secret, env[v])
		}
	}

	// The configuration the pod reads is the ConfigMap (its hashed name),
	// it validates, and its dataDir is the persistent volume.
	mounts := map[string]string{}
	for _, m := range lookup(c, "volumeMounts").([]any) {
		mounts[lookupStr(m, "name")] = lookupStr(m, "mountPath")
	}
	volumes := map[string]any{}
	for _, v := range lookup(pod, "volumes").([]any) {
		volumes[lookupStr(v, "name")] = v
	}
	config := lookupStr(env["PROMOTEBOT_CONFIG"], "value")
	if path.Dir(config) != "/etc/promotebot" || mounts["config"] != "/etc/promotebot" {
		t.Errorf("PROMOTEBOT_CONFIG %s, config mounted at %s", config, mounts["config"])
	}
	sources := lookup(volumes["config"], "projected", "sources").([]any)
	if lookupStr(sources[0], "configMap", "name") != lookupStr(cm, "metadata", "name") {
		t.Errorf("the pod mounts ConfigMap %q, kustomize made %q", lookupStr(sources[0], "configMap", "name"), lookupStr(cm, "metadata", "name"))
	}
	data := lookupStr(cm, "data", path.Base(config))
	file := filepath.Join(t.TempDir(), "promotebot.yaml")
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runWith(t, nil, "validate", "--config", file); err != nil {
		t.Errorf("the ConfigMap's configuration: %v", err)
	}
	cfg, err := promote.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if mounts["data"] != cfg.DataDir || lookupStr(volumes["data"], "persistentVolumeClaim", "claimName") != lookupStr(kinds["PersistentVolumeClaim"], "metadata", "name") {
		t.Errorf("dataDir %s, data volume %v mounted at %s", cfg.DataDir, volumes["data"], mounts["data"])
	}
	ports := lookup(kinds["Service"], "spec", "ports").([]any)
	if !strings.HasSuffix(cfg.Listen, ":8080") || lookupStr(ports[0], "targetPort") != "http" ||
		lookup(c, "ports").([]any)[0].(map[string]any)["containerPort"] != 8080 {
		t.Errorf("listen %s, Service ports %v, container ports %v", cfg.Listen, ports, lookup(c, "ports"))
	}
}

// examplePathParams are the parameters Argo CD's git directory generator
// gives the template for a folder.
func examplePathParams(dir string) map[string]any {
	return map[string]any{"path": map[string]any{
		"path": dir, "basename": path.Base(dir), "segments": strings.Split(dir, "/"),
	}}
}

func TestExamplesArgoCDApplicationSets(t *testing.T) {
	repo := exampleRepoURL(t)
	dirs := exampleDirs(t)
	for _, set := range buildKustomization(t, filepath.Join(examplesDir, "argocd")) {
		name := lookupStr(set, "metadata", "name")
		git := lookup(set, "spec", "generators").([]any)[0]
		spec := lookup(set, "spec", "template", "spec")
		if lookupStr(git, "git", "repoURL") != repo || lookupStr(spec, "source", "repoURL") != repo {
			t.Errorf("%s reads %s, promotebot pushes to %s", name, lookupStr(git, "git", "repoURL"), repo)
		}
		if lookup(spec, "syncPolicy", "automated", "prune") != true {
			t.Errorf("%s does not prune", name)
		}
		glob := lookupStr(lookup(git, "git", "directories").([]any)[0], "path")
		var matched []string
		for _, d := range dirs {
			if ok, _ := path.Match(glob, d); ok {
				matched = append(matched, d)
			}
		}
		var want []string
		for _, o := range exampleOverlays {
			if strings.HasPrefix(o.dir, "overlays/") && strings.Contains(glob, "/qa/") == strings.Contains(o.dir, "/qa/") {
				want = append(want, path.Join("apps", o.project, o.dir))
			}
		}
		slices.Sort(want)
		if !slices.Equal(matched, want) {
			t.Errorf("%s: %s matches %v, want %v", name, glob, matched, want)
		}
		for _, d := range matched {
			params := examplePathParams(d)
			appName := argoTemplate(t, lookupStr(set, "spec", "template", "metadata", "name"), params)
			ns := argoTemplate(t, lookupStr(spec, "destination", "namespace"), params)
			if got := argoTemplate(t, lookupStr(spec, "source", "path"), params); got != d {
				t.Errorf("%s: the Application of %s deploys %s", name, d, got)
			}
			for _, o := range exampleOverlays {
				if path.Join("apps", o.project, o.dir) == d && ns != o.namespace {
					t.Errorf("%s: the Application of %s targets namespace %s, the overlay uses %s", name, d, ns, o.namespace)
				}
			}
			if !regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).MatchString(appName) {
				t.Errorf("%s: Application name %q", name, appName)
			}
		}
		qa := strings.Contains(glob, "/qa/")
		finalizers, _ := lookup(set, "spec", "template", "metadata", "finalizers").([]any)
		if qa != slices.Contains(finalizers, any("resources-finalizer.argocd.argoproj.io")) {
			t.Errorf("%s: finalizers %v: a QA environment must go with its overlay, production must not", name, finalizers)
		}
		if !qa && lookup(set, "spec", "syncPolicy", "preserveResourcesOnDeletion") != true {
			t.Errorf("%s: production resources would be deleted with the ApplicationSet", name)
		}
		// A torn-down environment's Application must go, and take what it
		// deployed with it.
		if qa && lookup(set, "spec", "syncPolicy", "preserveResourcesOnDeletion") == true {
			t.Errorf("%s: preserveResourcesOnDeletion keeps a torn-down environment running", name)
		}
		if sync := lookupStr(set, "spec", "syncPolicy", "applicationsSync"); qa && (sync == "create-only" || sync == "create-update") {
			t.Errorf("%s: applicationsSync %s never deletes the Application of a torn-down environment", name, sync)
		}
	}
}

func argoTemplate(t *testing.T, text string, params map[string]any) string {
	t.Helper()
	tmpl, err := template.New("").Option("missingkey=error").Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, params); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// exampleRepoURL is gitops.repo of examples/promotebot.yaml.
func exampleRepoURL(t *testing.T) string {
	t.Helper()
	cfg, err := promote.LoadConfig(examplePromotebot)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.GitOps.Repo
}

// exampleDirs lists every folder of examples/config-repo, relative to it.
func exampleDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(exampleRepo, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(exampleRepo, p)
		dirs = append(dirs, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// Flux follows the overlays: the production Kustomizations point at the
// production overlays, and the QA ones at folders that kustomize-controller
// turns into one build of every environment below them.
func TestExamplesFluxFollowsTheOverlays(t *testing.T) {
	docs := buildKustomization(t, filepath.Join(examplesDir, "flux"))
	src := ofKind(docs, "GitRepository")
	if len(src) != 1 || lookupStr(src[0], "spec", "url") != exampleRepoURL(t) {
		t.Fatalf("GitRepository %v, promotebot pushes to %s", src, exampleRepoURL(t))
	}
	var paths []string
	for _, k := range ofKind(docs, "Kustomization") {
		p := strings.TrimPrefix(lookupStr(k, "spec", "path"), "./")
		paths = append(paths, p)
		if lookupStr(k, "spec", "sourceRef", "name") != lookupStr(src[0], "metadata", "name") || lookup(k, "spec", "prune") != true {
			t.Errorf("Kustomization %s: source %v, prune %v", lookupStr(k, "metadata", "name"), lookup(k, "spec", "sourceRef"), lookup(k, "spec", "prune"))
		}
		if lookup(k, "spec", "targetNamespace") != nil {
			t.Errorf("Kustomization %s overrides the overlays' namespaces", lookupStr(k, "metadata", "name"))
		}
	}
	slices.Sort(paths)
	want := []string{"apps/shop-api/overlays/production", "apps/shop-api/overlays/qa", "apps/shop-web/overlays/production", "apps/shop-web/overlays/qa"}
	if !slices.Equal(paths, want) {
		t.Fatalf("Kustomization paths %v, want %v", paths, want)
	}

	for _, o := range exampleOverlays {
		env, ok := strings.CutPrefix(o.dir, "overlays/qa/")
		if !ok {
			continue
		}
		// What kustomize-controller does for a path without a
		// kustomization.yaml: one naming every subfolder that has one.
		app := filepath.Join(exampleRepo, "apps", o.project)
		qa := filepath.Join(app, "overlays", "qa")
		entries := noErr(os.ReadDir(qa))
		var resources []string
		keeper := false
		for _, e := range entries {
			switch {
			case e.Name() == "kustomization.yaml":
				t.Fatalf("%s has a kustomization.yaml: Flux would not build the environments below it", qa)
			case e.IsDir():
				resources = append(resources, e.Name())
			case path.Ext(e.Name()) != ".yaml":
				keeper = true
			}
		}
		if !keeper || !slices.Equal(resources, []string{env}) {
			t.Errorf("%s holds %v; want the environment %s and a non-YAML file that keeps the folder in git", qa, entries, env)
		}
		fsys := filesys.MakeFsInMemory()
		f := loadExampleFiles(t, app)
		for name, file := range f.m {
			if err := fsys.WriteFile("/app/"+name, file.Data); err != nil {
				t.Fatal(err)
			}
		}
		kust := "resources:\n- " + strings.Join(resources, "\n- ") + "\n"
		if err := fsys.WriteFile("/app/overlays/qa/kustomization.yaml", []byte(kust)); err != nil {
			t.Fatal(err)
		}
		m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, "/app/overlays/qa")
		if err != nil {
			t.Fatalf("the generated kustomization of %s: %v", qa, err)
		}
		out := noErr(m.AsYaml())
		repo, _, _ := strings.Cut(o.image, ":")
		if err := overlay.CheckImage(out, repo, o.image); err != nil {
			t.Error(err)
		}
		if ns := ofKind(yamlDocs(t, qa, out), "Namespace"); len(ns) != 1 || lookupStr(ns[0], "metadata", "name") != o.namespace {
			t.Errorf("%s: Namespaces %v, want %s", qa, ns, o.namespace)
		}
	}
}

// checkout could cause (a missing example file).
func noErr[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

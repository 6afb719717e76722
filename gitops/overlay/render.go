package overlay

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/promote"
)

// RenderError is returned when kustomize cannot build an overlay; Err is
// kustomize's own error. It is permanent: the same files render the same.
type RenderError struct {
	// Dir is the overlay directory, relative to the repository root.
	Dir string
	// Err is what kustomize returned (or the panic it raised).
	Err error
}

// Error implements error.
func (e *RenderError) Error() string { return fmt.Sprintf("kustomize build %s: %v", e.Dir, e.Err) }

// Unwrap returns kustomize's error and promote.ErrPermanent.
func (e *RenderError) Unwrap() []error { return []error{e.Err, promote.ErrPermanent} }

// errRemoteReference is returned, before kustomize runs, for a kustomization
// that names something kustomize would fetch over the network (a remote
// base, resource, component or file).
var errRemoteReference = promote.NewPermanent("remote reference refused")

// errImageMismatch is returned by CheckImage when the rendered manifests do
// not run the wanted image.
var errImageMismatch = promote.NewPermanent("rendered image mismatch")

// kustomize's global state is kyaml's OpenAPI schema (package openapi):
// globalSchema (the parsed definitions, indexed by resource type and by
// namespace scope), the Kubernetes version or custom schema to use, and
// whether it is parsed yet. The rest a Run reads is built once and then
// copied (builtinconfig.MakeDefaultConfig, behind a sync.Once) or only read
// (the builtin plugin tables, precomputedIsNamespaceScoped).
//
//   - The schema is parsed on first use, under openapi's lock, but
//     IsNamespaceScoped reads the namespace-scope map without the lock, even
//     while another goroutine's first use fills it (a data race -race finds
//     in TestRenderConcurrent). So the default schema is parsed once before
//     the first render (schemaOnce); from then on it is only read, and
//     renders run concurrently. Every Run also calls openapi.SetSchema,
//     which without an openapi: field in the kustomization only sets the
//     default version again, under the lock.
//   - A kustomization with openapi: (a Kubernetes version, or a custom
//     schema file) makes SetSchema mark the schema unparsed: the next reader
//     re-parses it into the very maps other Runs read without the lock, and a
//     custom schema stays in force for every later render (and is added to
//     whatever was parsed before: its result depends on the renders before
//     it). Such a render runs alone (renderMu held for writing) from a reset
//     schema, as in a new process, and parses the default one again after.
//
// Everything else a Run uses is its own: a Kustomizer is made per render.
var (
	// renderMu is held for reading by ordinary renders and for writing by a
	// render that sets the OpenAPI schema.
	renderMu sync.RWMutex
	// renderSlots bounds concurrent renders: they only use the CPU.
	renderSlots = make(chan struct{}, runtime.GOMAXPROCS(0))
	schemaOnce  sync.Once
)

// initSchema parses kyaml's default OpenAPI schema afresh, as a first Run
// would on first use (22 ms, 3.5 MiB here).
func initSchema() {
	openapi.ResetOpenAPI()
	openapi.Schema()
}

// kustomizationNames are the file names kustomize reads in a directory.
var kustomizationNames = map[string]bool{"kustomization.yaml": true, "kustomization.yml": true, "Kustomization": true}

// Render builds overlayDir (relative to projectPath, e.g.
// "overlays/production" or "base") with kustomize, in process, on an
// in-memory copy of the project: kustomize can read nothing outside the
// project, nothing on disk and, because remote references are refused first,
// nothing from the network. Of overlays/ only the rendered overlay is copied.
func Render(f clone.Files, projectPath, overlayDir string) ([]byte, error) {
	if overlayDir == "" || path.Clean(overlayDir) != overlayDir || strings.HasPrefix(overlayDir, "/") ||
		overlayDir == ".." || strings.HasPrefix(overlayDir, "../") {
		return nil, fmt.Errorf("render %q: %w", overlayDir, clone.ErrInvalidPath)
	}
	c := &copier{f: f, fsys: filesys.MakeFsInMemory(), project: projectPath,
		root: path.Join("/", projectPath), overlayDir: overlayDir, sum: sha256.New()}
	if err := c.copyDir(""); err != nil {
		return nil, fmt.Errorf("render %s: %w", path.Join(projectPath, overlayDir), err)
	}
	key := string(c.sum.Sum([]byte(path.Join(projectPath, overlayDir) + "\x00")))
	if out, ok := renders.get(key); ok {
		return out, nil
	}
	setsSchema := false
	for _, k := range c.kusts {
		sets, err := checkLocal(c.fsys, k)
		if err != nil {
			return nil, err
		}
		setsSchema = setsSchema || sets
	}
	out, err := build(c.fsys, path.Join(c.root, overlayDir), path.Join(projectPath, overlayDir), setsSchema)
	if err == nil {
		renders.put(key, out)
	}
	return out, err
}

// renderCache remembers recent renders by a digest of every file kustomize
// was given. With remote references refused, the same files always render
// the same way, so a base shared by many QA overlays renders once.
type renderCache struct {
	mu    sync.Mutex
	max   int
	order []string
	out   map[string][]byte
}

var renders = &renderCache{max: 128, out: map[string][]byte{}}

func (c *renderCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out, ok := c.out[key]
	return out, ok
}

func (c *renderCache) put(key string, out []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.out[key]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.out, c.order[0])
		c.order = c.order[1:]
	}
	c.order = append(c.order, key)
	c.out[key] = out
}

// copier copies a project into an in-memory file system for kustomize,
// hashing every path and content it copies.
type copier struct {
	f                         clone.Files
	fsys                      filesys.FileSystem
	project, root, overlayDir string
	kusts                     []string // kustomization files copied
	sum                       hash.Hash
}

// copyDir copies the directory rel of the project, skipping the directories
// below overlays/ that do not lead to overlayDir.
func (c *copier) copyDir(rel string) error {
	entries, err := c.f.ReadDir(path.Join(c.project, rel))
	if err != nil {
		return fmt.Errorf("read %s: %w", path.Join(c.project, rel), err)
	}
	for _, e := range entries {
		r := path.Join(rel, e.Name())
		switch {
		case e.IsDir():
			if skipDir(r, c.overlayDir) {
				continue
			}
			if err := c.copyDir(r); err != nil {
				return err
			}
		case e.Type().IsRegular():
			if err := c.copyFile(r, e.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *copier) copyFile(r, name string) error {
	data, err := c.f.ReadFile(path.Join(c.project, r))
	if err != nil {
		return fmt.Errorf("read %s: %w", path.Join(c.project, r), err)
	}
	if err := c.fsys.WriteFile(path.Join(c.root, r), data); err != nil {
		return fmt.Errorf("copy %s: %w", r, err)
	}
	fmt.Fprintf(c.sum, "%s\x00%d\x00", r, len(data))
	c.sum.Write(data)
	if kustomizationNames[name] {
		c.kusts = append(c.kusts, path.Join(c.root, r))
	} else if mayConfigurePlugin(data) {
		if err := checkPluginDocs(path.Join(c.project, r), data); err != nil {
			return err
		}
	}
	return nil
}

// skipDir reports whether the project directory rel is an overlay other than
// overlayDir (or one of the directories holding it).
func skipDir(rel, overlayDir string) bool {
	parent, _ := path.Split(rel)
	parent = strings.TrimSuffix(parent, "/")
	if parent != "overlays" && !strings.HasPrefix(parent, "overlays/") {
		return false
	}
	inside := rel == overlayDir || strings.HasPrefix(rel, overlayDir+"/")
	return !inside && !strings.HasPrefix(overlayDir, rel+"/")
}

// build runs kustomize on dir; name is how errors call it. Renders run
// concurrently, at most GOMAXPROCS at a time, except one whose
// kustomizations set the OpenAPI schema (setsSchema), which runs alone.
func build(fsys filesys.FileSystem, dir, name string, setsSchema bool) (out []byte, err error) {
	schemaOnce.Do(initSchema)
	if setsSchema {
		renderMu.Lock()
		defer renderMu.Unlock()
		// From no schema parsed, as in a new process; after it (deferred
		// before the recover below, so it runs after it), the default
		// schema parsed again before any other render starts.
		openapi.ResetOpenAPI()
		defer initSchema()
	} else {
		renderMu.RLock()
		defer renderMu.RUnlock()
	}
	renderSlots <- struct{}{}
	defer func() { <-renderSlots }()
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &RenderError{Dir: name, Err: fmt.Errorf("kustomize panicked: %v", r)}
		}
	}()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		return nil, &RenderError{Dir: name, Err: err}
	}
	out, err = m.AsYaml()
	if err != nil {
		return nil, &RenderError{Dir: name, Err: err}
	}
	return out, nil
}

// remotePrefix matches what kustomize's git URL parser accepts without a
// "://": any scheme, an scp-like "user@" and the github.com shorthand.
var remotePrefix = regexp.MustCompile(`(?i)^([a-z][a-z0-9+.-]*:|[a-z][a-z0-9-]*@|github\.com[/:])`)

// checkLocal refuses a kustomization naming anything kustomize would fetch:
// a URL (http, https, ssh, file, git::…), scp-like "user@host:" or
// "github.com/…" git references, or "?ref=" queries. The file is decoded
// with kustomize's own decoder (YAML 1.1, duplicate keys and aliases
// resolved as kustomize resolves them), so the check sees what kustomize
// will load; a file that decoder refuses, kustomize refuses too. It also
// reports whether the kustomization sets the OpenAPI schema (openapi:).
func checkLocal(fsys filesys.FileSystem, name string) (bool, error) {
	data, err := fsys.ReadFile(name)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", name, err)
	}
	var k types.Kustomization
	if k.Unmarshal(data) != nil {
		return false, nil
	}
	return len(k.OpenAPI) > 0, checkRefs(name, &k)
}

// checkRefs is checkLocal's check of a decoded kustomization.
func checkRefs(name string, k *types.Kustomization) error {
	// kustomize still loads the deprecated fields (Bases,
	// PatchesStrategicMerge, PatchesJson6902): they must be checked too.
	//lint:ignore SA1019 a deprecated field kustomize still loads
	values := slices.Concat(k.Resources, k.Bases, k.Components, k.Crds, k.Configurations,
		k.Generators, k.Transformers, k.Validators, []string{k.OpenAPI["path"]})
	//lint:ignore SA1019 a deprecated field kustomize still loads
	for _, p := range k.PatchesStrategicMerge {
		values = append(values, string(p))
	}
	//lint:ignore SA1019 a deprecated field kustomize still loads
	for _, p := range slices.Concat(k.Patches, k.PatchesJson6902) {
		values = append(values, p.Path)
	}
	for _, r := range k.Replacements {
		values = append(values, r.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		values = append(slices.Concat(values, g.FileSources, g.EnvSources), g.EnvSource)
	}
	for _, g := range k.SecretGenerator {
		values = append(slices.Concat(values, g.FileSources, g.EnvSources), g.EnvSource)
	}
	if err := refuseRemote(name, values); err != nil {
		return err
	}
	for _, v := range slices.Concat(k.Generators, k.Transformers, k.Validators) {
		if strings.Contains(v, "\n") {
			if err := checkPluginDocs(name, []byte(v)); err != nil {
				return err
			}
		}
	}
	return nil
}

// refuseRemote returns errRemoteReference for the first remote value.
func refuseRemote(name string, values []string) error {
	for _, v := range values {
		if strings.Contains(v, "\n") {
			continue // an inline patch or plugin configuration, not a path
		}
		_, file, _ := strings.Cut(v, "=") // generator files: "key=path"
		if isRemote(v) || isRemote(file) {
			return fmt.Errorf("%w: %s names %q, which is not a local path", errRemoteReference, strings.TrimPrefix(name, "/"), v)
		}
	}
	return nil
}

// pluginPathKeys are the keys of builtin plugin configurations (PatchTransformer,
// ConfigMapGenerator, ReplacementTransformer, HelmChartInflationGenerator…)
// whose values kustomize loads.
var pluginPathKeys = map[string]bool{"path": true, "paths": true, "files": true, "envs": true, "env": true, "repo": true}

// builtinPlugins are the kinds of kustomize's builtin generators and
// transformers, whose configurations may name files to load.
var builtinPlugins = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range krusty.GetBuiltinPluginNames() {
		m[n] = true
	}
	return m
}()

// mayConfigurePlugin tells which files checkPluginDocs must read: every
// builtin plugin kind ends in Transformer or Generator.
func mayConfigurePlugin(data []byte) bool {
	return bytes.Contains(data, []byte("Transformer")) || bytes.Contains(data, []byte("Generator"))
}

// checkPluginDocs refuses a builtin plugin configuration (a project file or
// an inline entry of a kustomization) that makes the plugin load something
// remote, such as a PatchTransformer whose path is a URL. A configuration
// that does not parse is refused too: it cannot be checked.
func checkPluginDocs(name string, data []byte) error {
	name = strings.TrimPrefix(name, "/")
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s: cannot check it for plugin configurations: %v", errRemoteReference, name, err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		if _, kind := mapLookup(doc.Content[0], "kind"); kind == nil || !builtinPlugins[kind.Value] {
			continue
		}
		if err := refuseRemote(name, pluginPaths(&doc, false)); err != nil {
			return err
		}
	}
}

// pluginPaths collects the scalars found under pluginPathKeys at any depth;
// under says whether n is itself below such a key.
func pluginPaths(n *yaml.Node, under bool) []string {
	switch {
	case n.Kind == yaml.AliasNode && n.Alias != nil:
		return pluginPaths(n.Alias, under)
	case n.Kind == yaml.ScalarNode && under:
		return []string{n.Value}
	case n.Kind == yaml.MappingNode:
		var out []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, pluginPaths(n.Content[i+1], pluginPathKeys[n.Content[i].Value])...)
		}
		return out
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, pluginPaths(c, under)...)
	}
	return out
}

// isRemote reports whether kustomize could take s for something to fetch.
func isRemote(s string) bool {
	s = strings.TrimSpace(s)
	l := strings.ToLower(s)
	return strings.Contains(l, "://") || remotePrefix.MatchString(s) ||
		strings.Contains(l, "?ref=") || strings.Contains(l, "?version=") || strings.Contains(l, "_git/")
}

// container is one container of a workload in rendered manifests.
type container struct {
	kind, object, name, image string
}

// podSpecPaths locate the pod spec of the workload kinds CheckImage reads.
var podSpecPaths = map[string][]string{
	"Deployment":  {"spec", "template", "spec"},
	"StatefulSet": {"spec", "template", "spec"},
	"DaemonSet":   {"spec", "template", "spec"},
	"ReplicaSet":  {"spec", "template", "spec"},
	"Job":         {"spec", "template", "spec"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
	"Pod":         {"spec"},
}

// containers lists the containers and init containers of the workloads in
// rendered manifests.
func containers(rendered []byte) ([]container, error) {
	nodes, err := kio.FromBytes(rendered)
	if err != nil {
		return nil, fmt.Errorf("read rendered manifests: %w", err)
	}
	var out []container
	for _, n := range nodes {
		p, ok := podSpecPaths[n.GetKind()]
		if !ok {
			continue
		}
		spec, err := n.Pipe(yaml.Lookup(p...))
		if err != nil || spec == nil {
			continue
		}
		for _, field := range []string{"containers", "initContainers"} {
			list, err := spec.Pipe(yaml.Lookup(field))
			if err != nil || list == nil {
				continue
			}
			items, err := list.Elements()
			if err != nil {
				continue
			}
			for _, c := range items {
				out = append(out, container{kind: n.GetKind(), object: n.GetName(),
					name: scalarField(c, "name"), image: scalarField(c, "image")})
			}
		}
	}
	return out, nil
}

// CheckImage checks rendered manifests: every container and init container
// of a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod
// whose image is of repository must run exactly want (compared normalized,
// so "nginx:1" is "docker.io/library/nginx:1"), and there must be one.
func CheckImage(rendered []byte, repository, want string) error {
	repo, err := normalizedName(repository)
	if err != nil {
		return err
	}
	w, err := parseImage(want)
	if err != nil {
		return err
	}
	cs, err := containers(rendered)
	if err != nil {
		return err
	}
	found := 0
	var bad []string
	for _, c := range cs {
		name, _, _ := splitImage(c.image)
		if !sameRepository(name, repo) {
			continue
		}
		found++
		if got, err := parseImage(c.image); err != nil || got != w {
			bad = append(bad, fmt.Sprintf("%s/%s container %s runs %q", c.kind, c.object, c.name, c.image))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: want %s: %s", errImageMismatch, want, strings.Join(bad, "; "))
	}
	if found == 0 {
		return fmt.Errorf("%w: no container runs %s", errImageMismatch, repo)
	}
	return nil
}

// imageName returns how the rendered manifests spell repo (e.g. "nginx" for
// "docker.io/library/nginx"); repo itself when no container runs it.
func imageName(rendered []byte, repo string) (string, error) {
	cs, err := containers(rendered)
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if name, _, _ := splitImage(c.image); sameRepository(name, repo) {
			return name, nil
		}
	}
	return repo, nil
}

// scalarField returns the value of a scalar field of a mapping, or "".
func scalarField(m *yaml.RNode, key string) string {
	f := m.Field(key)
	if f == nil || f.Value == nil || f.Value.YNode().Kind != yaml.ScalarNode {
		return ""
	}
	return f.Value.YNode().Value
}

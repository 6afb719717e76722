// Package overlay writes a project's overlays in the config repository as
// edits for package clone: QA overlays per branch or tag (kustomization,
// namespace, Ambassador Mapping) with their collision-free env names, and
// the production image pin, edited in place (the YAML splicer keeps
// comments, order and quoting), each rendered with kustomize in process and
// checked before it is committed.
package overlay

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/trailer"
	"github.com/promotebot/promotebot/promote"
)

// errNoOverlay is returned when the overlay an Edit must change is missing.
var errNoOverlay = promote.NewPermanent("overlay not found")

// errNoService is returned when no Service can be chosen for a QA Mapping:
// the project names none and its base renders none, or several of which
// none is named after the project.
var errNoService = promote.NewPermanent("no service for QA traffic")

// managedComment heads every kustomization promotebot creates.
const managedComment = "Managed by promotebot: created for a QA environment. People may add to this\n" +
	"file; promotebot only edits the images: entry of the project's image."

// QAOverlay returns the Edit that deploys image to the QA environment of a
// branch or tag: it creates overlays/qa/<env>/ (kustomization.yaml,
// namespace.yaml, mapping.yaml) or, when the target already owns it, edits
// only the image entry of its kustomization.yaml; then it renders the
// overlay and checks the image. The target, kind and image are checked here,
// before any Edit exists.
func QAOverlay(p promote.Project, kind promote.Kind, target, image string, meta Meta) (clone.Edit, error) {
	return QAOverlayIn(p, kind, target, image, "", meta)
}

// QAOverlayIn is QAOverlay preferring env (without "qa/"), when it is one of
// the target's two names and free, to the plain name: the environment
// announced when the build was accepted, so that the build gets it whichever
// of two targets that share a plain name deploys first.
func QAOverlayIn(p promote.Project, kind promote.Kind, target, image, env string, meta Meta) (clone.Edit, error) {
	n, err := qaNames(p, kind, target)
	if err != nil {
		return nil, err
	}
	n.prefer = env
	img, err := projectImage(p, image)
	if err != nil {
		return nil, err
	}
	return func(f clone.Files) (clone.Outcome, error) { return writeQA(f, p, n, img, meta) }, nil
}

func writeQA(f clone.Files, p promote.Project, n envNames, img imageRef, meta Meta) (clone.Outcome, error) {
	env, exists, err := n.resolve(f, p)
	if err != nil {
		return clone.Outcome{}, err
	}
	dir := qaDir(p, env)
	checked := false
	if exists {
		err = updateImage(f, path.Join(dir, "kustomization.yaml"), img, func() ([]byte, error) {
			return Render(f, p.Path, "base")
		})
	} else {
		checked, err = createQA(f, p, n, env, img)
	}
	if err != nil {
		return clone.Outcome{}, fmt.Errorf("qa/%s of %s: %w", env, p.ID, err)
	}
	if !checked {
		if err := renderCheck(f, p, path.Join("overlays", "qa", env), img); err != nil {
			return clone.Outcome{}, err
		}
	}
	return clone.Outcome{
		Subject:  fmt.Sprintf("Deploy %s %s to qa/%s", p.ID, img.Short(), env),
		Trailers: trailers(meta, p, "qa/"+env, img.String()),
	}, nil
}

// qaNames checks the project and the target (git's rules, and the
// project's script) and returns the names the target's environment may take.
func qaNames(p promote.Project, kind promote.Kind, target string) (envNames, error) {
	if err := validateProject(p); err != nil {
		return envNames{}, err
	}
	if err := checkScript(p, target); err != nil {
		return envNames{}, err
	}
	return newEnvNames(kind, target)
}

// DeleteQAOverlay returns the Edit that removes the QA environment owned by
// exactly that kind and target, plain or hashed; when it owns none, the Edit
// changes nothing.
func DeleteQAOverlay(p promote.Project, kind promote.Kind, target string, meta Meta) (clone.Edit, error) {
	n, err := qaNames(p, kind, target)
	if err != nil {
		return nil, err
	}
	return func(f clone.Files) (clone.Outcome, error) {
		env, ok, err := n.owned(f, p)
		if err != nil {
			return clone.Outcome{}, err
		}
		if !ok {
			env = n.plain
		} else if err := f.RemoveAll(qaDir(p, env)); err != nil {
			return clone.Outcome{}, fmt.Errorf("remove qa/%s of %s: %w", env, p.ID, err)
		}
		return clone.Outcome{
			Subject:  fmt.Sprintf("Remove qa/%s of %s", env, p.ID),
			Trailers: trailers(meta, p, "qa/"+env, ""),
		}, nil
	}, nil
}

// ProductionImage returns the Edit that points the production overlay's
// image entry at image, in place, then renders the overlay and checks it.
// With meta.RollbackOf set, the change is a rollback to image: its subject
// is "Roll back <project> to <version>".
//
// When diff is not nil, each run of the edit stores in it what the change
// does to the rendered manifests (lineDiff), for the people who review it;
// it is empty when either render fails.
func ProductionImage(p promote.Project, image string, meta Meta, diff *string) (clone.Edit, error) {
	if err := validateProject(p); err != nil {
		return nil, err
	}
	img, err := projectImage(p, image)
	if err != nil {
		return nil, err
	}
	return func(f clone.Files) (clone.Outcome, error) {
		// What production renders to now, for the diff people review; a
		// failure only leaves the diff out.
		before, berr := Render(f, p.Path, "overlays/production")
		file := path.Join(p.Path, "overlays", "production", "kustomization.yaml")
		err := updateImage(f, file, img, func() ([]byte, error) {
			return Render(f, p.Path, "overlays/production")
		})
		if err != nil {
			return clone.Outcome{}, fmt.Errorf("production of %s: %w", p.ID, err)
		}
		if err := renderCheck(f, p, "overlays/production", img); err != nil {
			return clone.Outcome{}, err
		}
		if diff != nil {
			*diff = ""
			if after, aerr := Render(f, p.Path, "overlays/production"); berr == nil && aerr == nil {
				*diff = lineDiff(string(before), string(after))
			}
		}
		subject := fmt.Sprintf("Promote %s %s to production", p.ID, img.Short())
		if meta.RollbackOf != "" {
			subject = fmt.Sprintf("Roll back %s to %s", p.ID, img.Short())
		}
		return clone.Outcome{Subject: subject, Trailers: trailers(meta, p, trailer.Production, img.String())}, nil
	}, nil
}

// updateImage edits the image entry of a kustomization file in place and
// writes it when it changed. render gives the manifests the overlay's images
// transformer sees; it runs only when a new entry must learn how they spell
// the image.
func updateImage(f clone.Files, file string, img imageRef, render func() ([]byte, error)) error {
	data, err := f.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errNoOverlay, file, err)
	}
	has, err := hasImage(data, img.Repository)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	name := ""
	if !has {
		rendered, err := render()
		if err != nil {
			return err
		}
		if name, err = imageName(rendered, img.Repository); err != nil {
			return err
		}
	}
	out, changed, err := setImage(data, img, name)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if !changed {
		return nil
	}
	if err := f.WriteFile(file, out); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// renderCheck renders an overlay of the project and checks its image.
func renderCheck(f clone.Files, p promote.Project, overlay string, img imageRef) error {
	rendered, err := Render(f, p.Path, overlay)
	if err != nil {
		return err
	}
	if err := CheckImage(rendered, img.Repository, img.String()); err != nil {
		return fmt.Errorf("%s: %w", path.Join(p.Path, overlay), err)
	}
	return nil
}

// createQA writes a new QA overlay owned by the target and reports whether
// it already checked the rendered image. The common case renders once: the
// overlay is written assuming the base spells the image as the project does,
// rendered, and the Service is read from that render. Only when that fails is
// the base rendered on its own to learn the image's name and the Service.
func createQA(f clone.Files, p promote.Project, n envNames, env string, img imageRef) (bool, error) {
	dir := path.Join("overlays", "qa", env)
	service := p.Service
	if err := writeQAFiles(f, p, n, env, img, img.Repository, service); err != nil {
		return false, err
	}
	rendered, err := Render(f, p.Path, dir)
	if err == nil && CheckImage(rendered, img.Repository, img.String()) == nil {
		if service != "" {
			return true, nil
		}
		if service, err = discoverService(rendered, p.ID); err == nil {
			// Only the Mapping's service changes: it renders nothing else.
			return true, writeQAFile(f, p, env, "mapping.yaml", qaMapping(p, QAHost(p, n.kind, env), service))
		}
	}
	base, err := Render(f, p.Path, "base")
	if err != nil {
		return false, err
	}
	name, err := imageName(base, img.Repository)
	if err != nil {
		return false, err
	}
	if service == "" {
		if service, err = discoverService(base, p.ID); err != nil {
			return false, err
		}
	}
	return false, writeQAFiles(f, p, n, env, img, name, service)
}

// writeQAFiles writes the three files of a QA overlay; name is how the base
// spells the image.
func writeQAFiles(f clone.Files, p promote.Project, n envNames, env string, img imageRef, name, service string) error {
	ns := n.namespace(p, env)
	kust, err := yaml.MarshalWithOptions(qaKustomization(n, ns), &yaml.EncoderOptions{SeqIndent: yaml.CompactSequenceStyle})
	if err != nil {
		return fmt.Errorf("encode kustomization.yaml: %w", err)
	}
	if kust, _, err = setImage(kust, img, name); err != nil {
		return fmt.Errorf("kustomization.yaml: %w", err)
	}
	if err := f.WriteFile(path.Join(qaDir(p, env), "kustomization.yaml"), kust); err != nil {
		return fmt.Errorf("write %s: %w", path.Join(qaDir(p, env), "kustomization.yaml"), err)
	}
	if err := writeQAFile(f, p, env, "namespace.yaml", qaNamespace(p, env, ns)); err != nil {
		return err
	}
	if service == "" {
		service = p.ID + ":80" // provisional: replaced once the render names the Service
	}
	return writeQAFile(f, p, env, "mapping.yaml", qaMapping(p, QAHost(p, n.kind, env), service))
}

func writeQAFile(f clone.Files, p promote.Project, env, file string, doc *yaml.Node) error {
	data, err := yaml.MarshalWithOptions(doc, &yaml.EncoderOptions{SeqIndent: yaml.CompactSequenceStyle})
	if err != nil {
		return fmt.Errorf("encode %s: %w", file, err)
	}
	if err := f.WriteFile(path.Join(qaDir(p, env), file), data); err != nil {
		return fmt.Errorf("write %s: %w", path.Join(qaDir(p, env), file), err)
	}
	return nil
}

// node builders: documents are built as nodes so that no input is ever
// spliced into YAML text.
type pair struct {
	key   string
	value *yaml.Node
}

func str(v string) *yaml.Node { return strNode(v, 0) }

func mapOf(pairs ...pair) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, p := range pairs {
		m.Content = append(m.Content, str(p.key), p.value)
	}
	return m
}

func seqOf(items ...string) *yaml.Node {
	s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, it := range items {
		s.Content = append(s.Content, str(it))
	}
	return s
}

func document(root *yaml.Node, comment string) *yaml.Node {
	return &yaml.Node{Kind: yaml.DocumentNode, HeadComment: comment, Content: []*yaml.Node{root}}
}

func qaKustomization(n envNames, namespace string) *yaml.Node {
	return document(mapOf(
		pair{"apiVersion", str("kustomize.config.k8s.io/v1beta1")},
		pair{"kind", str("Kustomization")},
		pair{"metadata", mapOf(pair{"annotations", mapOf(
			pair{annotationKind, str(string(n.kind))},
			pair{annotationTarget, str(n.target)},
		)})},
		pair{"namespace", str(namespace)},
		pair{"resources", seqOf("../../../base", "namespace.yaml", "mapping.yaml")},
	), managedComment)
}

func qaNamespace(p promote.Project, env, namespace string) *yaml.Node {
	return document(mapOf(
		pair{"apiVersion", str("v1")},
		pair{"kind", str("Namespace")},
		pair{"metadata", mapOf(
			pair{"name", str(namespace)},
			pair{"labels", mapOf(
				pair{"app.kubernetes.io/managed-by", str("promotebot")},
				pair{"promotebot.dev/project", str(p.ID)},
				pair{"promotebot.dev/env", str(env)},
			)},
		)},
	), "")
}

func qaMapping(p promote.Project, host, service string) *yaml.Node {
	return document(mapOf(
		pair{"apiVersion", str("getambassador.io/v3alpha1")},
		pair{"kind", str("Mapping")},
		pair{"metadata", mapOf(pair{"name", str(p.ID)})},
		pair{"spec", mapOf(
			pair{"hostname", str(host)},
			pair{"prefix", str("/")},
			pair{"service", str(service)},
		)},
	), "")
}

// discoverService picks the Service QA traffic goes to from the rendered
// base: the only one, or the one named after the project; its first port.
func discoverService(rendered []byte, id string) (string, error) {
	nodes, err := kio.FromBytes(rendered)
	if err != nil {
		return "", fmt.Errorf("read rendered base: %w", err)
	}
	var services []*yaml.RNode
	for _, n := range nodes {
		if n.GetKind() == "Service" {
			services = append(services, n)
		}
	}
	var svc *yaml.RNode
	for _, s := range services {
		if len(services) == 1 || s.GetName() == id {
			svc = s
		}
	}
	if svc == nil {
		return "", fmt.Errorf("%w: the base renders %d Services, none named %s; set the project's service", errNoService, len(services), id)
	}
	ports, err := svc.Pipe(yaml.Lookup("spec", "ports"))
	if err == nil && ports != nil && ports.YNode().Kind == yaml.SequenceNode && len(ports.YNode().Content) > 0 {
		v := scalarField(yaml.NewRNode(ports.YNode().Content[0]), "port")
		if _, err := strconv.Atoi(v); err == nil {
			return svc.GetName() + ":" + v, nil
		}
	}
	return "", fmt.Errorf("%w: Service %s has no port", errNoService, svc.GetName())
}

// trailers writes Meta and the change as the commit's trailers, in order,
// leaving out empty ones.
func trailers(m Meta, p promote.Project, env, image string) []trailer.Trailer {
	var t []trailer.Trailer
	add := func(k, v string) {
		if strings.TrimSpace(v) != "" {
			t = append(t, trailer.Trailer{Key: k, Value: v})
		}
	}
	add(trailer.Build, m.Build)
	add(trailer.RollbackOf, m.RollbackOf)
	add(trailer.Project, p.ID)
	add(trailer.Environment, env)
	add(trailer.Teardown, m.Teardown)
	add(trailer.Image, image)
	add(trailer.Source, m.Source)
	add(trailer.Author, m.Author)
	add(trailer.BuiltAt, m.BuiltAt)
	add(trailer.ReceivedAt, m.ReceivedAt)
	for _, a := range m.ApprovedBy {
		add(trailer.ApprovedBy, a)
	}
	add(trailer.PromotedBy, m.PromotedBy)
	add(trailer.Reason, m.Reason)
	add(trailer.RequiredApprovals, m.RequiredApprovals)
	return t
}

// Landed tells where a QA edit of kind landed, from the trailers of its
// outcome (the edit chose the plain or the hashed env name): the
// environment, "qa/<env>", and its URL.
func Landed(p promote.Project, kind promote.Kind, ts []trailer.Trailer) (env, url string) {
	for _, t := range ts {
		if t.Key == trailer.Environment {
			env = t.Value
			break
		}
	}
	return env, "https://" + QAHost(p, kind, strings.TrimPrefix(env, "qa/"))
}

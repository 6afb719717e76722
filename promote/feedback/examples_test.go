package feedback_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var examplesFlux = filepath.Join("..", "..", "examples", "flux")

// fluxObject is the part of a Flux or Kubernetes object the checks read.
type fluxObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec       map[string]any    `yaml:"spec"`
	StringData map[string]string `yaml:"stringData"`
	Resources  []string          `yaml:"resources"`
}

func loadFlux(t *testing.T) map[string][]fluxObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(examplesFlux, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("examples/flux: %v", err)
	}
	out := map[string][]fluxObject{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var o fluxObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[o.Kind] = append(out[o.Kind], o)
		}
	}
	return out
}

// Every Kustomization of examples/flux tells its path in its events, and
// waits for its objects' health; the Provider, its Secret and the Alert
// send their events to the bot as generic-hmac.
func TestFluxExamples(t *testing.T) {
	objs := loadFlux(t)
	var kustomizations int
	for _, k := range objs["Kustomization"] {
		if k.APIVersion != "kustomize.toolkit.fluxcd.io/v1" {
			if !slices.Contains(k.Resources, "notifications.yaml") {
				t.Errorf("examples/flux/kustomization.yaml does not apply notifications.yaml: %v", k.Resources)
			}
			continue
		}
		kustomizations++
		path, _ := k.Spec["path"].(string)
		if got := k.Metadata.Annotations["event.toolkit.fluxcd.io/path"]; got != path || path == "" {
			t.Errorf("Kustomization %s: annotation event.toolkit.fluxcd.io/path %q, spec.path %q", k.Metadata.Name, got, path)
		}
		if k.Spec["wait"] != true {
			t.Errorf("Kustomization %s: no wait: true; its success would not mean healthy", k.Metadata.Name)
		}
	}
	if kustomizations != 4 {
		t.Errorf("%d Kustomizations", kustomizations)
	}

	providers, alerts := objs["Provider"], objs["Alert"]
	if len(providers) != 1 || len(alerts) != 1 {
		t.Fatalf("providers %v, alerts %v", providers, alerts)
	}
	p := providers[0]
	secretName := lookupString(p.Spec, "secretRef", "name")
	if p.Spec["type"] != "generic-hmac" || !strings.HasSuffix(p.Spec["address"].(string), "/v1/events/flux") {
		t.Errorf("Provider %v", p.Spec)
	}
	var token bool
	for _, s := range objs["Secret"] {
		if s.Metadata.Name == secretName && s.Metadata.Namespace == p.Metadata.Namespace {
			_, token = s.StringData["token"] // generic-hmac keys its HMAC with "token"
		}
	}
	if !token {
		t.Errorf("no Secret %s with a token beside the Provider", secretName)
	}
	a := alerts[0]
	if lookupString(a.Spec, "providerRef", "name") != p.Metadata.Name || a.Spec["eventSeverity"] != "info" || a.Metadata.Namespace != p.Metadata.Namespace {
		t.Errorf("Alert %v", a.Spec)
	}
	sources, _ := a.Spec["eventSources"].([]any)
	if len(sources) != 1 || lookupString(sources[0].(map[string]any), "kind") != "Kustomization" || lookupString(sources[0].(map[string]any), "name") != "*" {
		t.Errorf("Alert event sources %v", sources)
	}
}

func lookupString(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	s, _ := v.(string)
	return s
}

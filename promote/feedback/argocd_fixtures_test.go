package feedback_test

// Argo CD as the tests see it: its notifications configuration read from
// examples/argocd/notifications.yaml, rendered and evaluated the way
// notifications-engine does, over the Applications of testdata/argocd.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
	"github.com/expr-lang/expr"
	"go.yaml.in/yaml/v3"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/promotebot/promotebot/promote"
)

// argoConfig is examples/argocd/notifications.yaml as Argo CD reads it:
// the data of argocd-notifications-cm and of argocd-notifications-secret.
type argoConfig struct {
	data   map[string]string
	secret map[string]string
}

// argoCondition is one condition of a trigger (notifications-engine's
// triggers.Condition).
type argoCondition struct {
	When        string   `yaml:"when"`
	OncePer     string   `yaml:"oncePer"`
	Send        []string `yaml:"send"`
	Description string   `yaml:"description"`
}

func loadNotifications(t *testing.T) argoConfig {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesArgoCD, "notifications.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c argoConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Data       map[string]string `yaml:"data"`
			StringData map[string]string `yaml:"stringData"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch doc.Kind + "/" + doc.Metadata.Name {
		case "ConfigMap/argocd-notifications-cm":
			c.data = doc.Data
		case "Secret/argocd-notifications-secret":
			c.secret = doc.StringData
		default:
			t.Fatalf("notifications.yaml holds %s/%s", doc.Kind, doc.Metadata.Name)
		}
	}
	if c.data == nil || c.secret == nil {
		t.Fatal("notifications.yaml lacks argocd-notifications-cm or argocd-notifications-secret")
	}
	return c
}

// body is the webhook.promotebot body of template name, and its method.
func (c argoConfig) body(t *testing.T, name string) (method, body string) {
	t.Helper()
	raw, ok := c.data["template."+name]
	if !ok {
		t.Fatalf("no template %s", name)
	}
	var tmpl struct {
		Webhook map[string]struct {
			Method string `yaml:"method"`
			Body   string `yaml:"body"`
		} `yaml:"webhook"`
	}
	if err := yaml.Unmarshal([]byte(raw), &tmpl); err != nil {
		t.Fatalf("template %s: %v", name, err)
	}
	hook, ok := tmpl.Webhook["promotebot"]
	if !ok || len(tmpl.Webhook) != 1 {
		t.Fatalf("template %s: webhooks %v, want promotebot", name, tmpl.Webhook)
	}
	return hook.Method, hook.Body
}

// triggers are the trigger.* entries, by name.
func (c argoConfig) triggers(t *testing.T) map[string][]argoCondition {
	t.Helper()
	out := map[string][]argoCondition{}
	for k, v := range c.data {
		name, ok := strings.CutPrefix(k, "trigger.")
		if !ok {
			continue
		}
		var conds []argoCondition
		if err := yaml.Unmarshal([]byte(v), &conds); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		out[name] = conds
	}
	return out
}

// secretRef is notifications-engine's reference to a key of
// argocd-notifications-secret in a service's configuration.
var secretRef = regexp.MustCompile(`[$][\w-]+`)

// service is the promotebot webhook service with the Secret's values put
// in, as Argo CD does: its URL and the headers it sends.
func (c argoConfig) service(t *testing.T) (url string, headers map[string]string) {
	t.Helper()
	raw := secretRef.ReplaceAllStringFunc(c.data["service.webhook.promotebot"], func(ref string) string {
		v, ok := c.secret[ref[1:]]
		if !ok {
			t.Errorf("the service refers to %s, which argocd-notifications-secret lacks", ref)
		}
		return v
	})
	var svc struct {
		URL     string `yaml:"url"`
		Headers []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"headers"`
	}
	if err := yaml.Unmarshal([]byte(raw), &svc); err != nil {
		t.Fatalf("service.webhook.promotebot: %v", err)
	}
	headers = map[string]string{}
	for _, h := range svc.Headers {
		headers[h.Name] = h.Value
	}
	return svc.URL, headers
}

// loadApp reads an Application fixture the way Argo CD hands it to its
// templates: an unstructured object, JSON types throughout.
func loadApp(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdataArgoCD, name))
	if err != nil {
		t.Fatal(err)
	}
	js, err := k8syaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var app map[string]any
	if err := json.Unmarshal(js, &app); err != nil {
		t.Fatal(err)
	}
	return app
}

// loadList is the items of testdata/argocd/applications.json.
func loadList(t *testing.T) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdataArgoCD, "applications.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// set changes the field at path of app (a deep copy is the caller's).
func set(t *testing.T, app map[string]any, value any, path ...string) {
	t.Helper()
	m := app
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("no %s in %v", k, path)
		}
		m = next
	}
	if value == nil {
		delete(m, path[len(path)-1])
		return
	}
	m[path[len(path)-1]] = value
}

// render renders a template body over app as notifications-engine does:
// text/template with sprig's functions but env and expandenv, and the
// Application as .app.
func render(t *testing.T, name, body string, app map[string]any) []byte {
	t.Helper()
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	tmpl, err := template.New(name).Funcs(funcs).Parse(body)
	if err != nil {
		t.Fatalf("template %s: %v", name, err)
	}
	vars := map[string]any{
		"app":              app,
		"context":          map[string]any{"argocdUrl": "https://argocd.example.com", "notificationType": "webhook"},
		"serviceType":      "webhook",
		"notificationType": "webhook",
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, vars); err != nil {
		t.Fatalf("template %s: %v", name, err)
	}
	return out.Bytes()
}

// firing is a trigger condition that holds, with its oncePer value.
type firing struct {
	trigger string
	send    []string
	oncePer string
}

// fire evaluates every trigger's conditions over app with expr, as
// notifications-engine does, with Argo CD's time helpers.
func fire(t *testing.T, triggers map[string][]argoCondition, app map[string]any) []firing {
	t.Helper()
	vars := map[string]any{
		"app": app,
		"time": map[string]any{
			"Parse": func(s string) time.Time {
				v, err := time.Parse(time.RFC3339, s)
				if err != nil {
					panic(err)
				}
				return v
			},
			"Now": time.Now,
		},
	}
	var out []firing
	for name, conds := range triggers {
		for _, c := range conds {
			prog, err := expr.Compile(c.When)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			v, err := expr.Run(prog, vars)
			if err != nil {
				t.Fatalf("%s: when: %v", name, err)
			}
			if held, _ := v.(bool); !held {
				continue
			}
			f := firing{trigger: name, send: c.Send}
			if c.OncePer != "" {
				once, err := expr.Eval(c.OncePer, vars)
				if err != nil {
					t.Fatalf("%s: oncePer: %v", name, err)
				}
				f.oncePer = toString(once)
			}
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b firing) int { return strings.Compare(a.trigger, b.trigger) })
	return out
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}

const (
	qaHealthyRev  = "3c1f0e2a9b7d64e58f10a2b3c4d5e6f708192a3b"
	qaDegradedRev = "7e2d9c4b1a0f8e6d5c3b2a190817f6e5d4c3b2a1"
	prodFailedRev = "b5a4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6"

	degradedMessage = `Deployment/shop-api: Deployment "shop-api" exceeded its progress deadline; ` +
		"Job/shop-api-migrate: Job has reached the specified backoff limit\n" + `last error: "relation \"orders\" does not exist"`
	failedMessage = `one or more objects failed to apply, reason: admission webhook "validate.kyverno.svc-fail" denied the request:` + "\n\n" +
		"resource Deployment/shop-web/shop-web was blocked due to the following policies\n\n" +
		"require-image-digest:\n" +
		"  check-digest: 'validation error: images must be pinned by digest. rule check-digest failed at path /spec/template/spec/containers/0/image/'"
)

// argoEvents are the events each fixture gives, by source.
func argoEvents(t *testing.T) (qaHealthy, qaSynced, qaDegraded, prodFailed promote.ClusterEvent) {
	qa := promote.ClusterEvent{Object: "argocd/shop-web-branch-feature-login", Path: "apps/shop-web/overlays/qa/branch-feature-login", Revision: qaHealthyRev}
	qaHealthy = qa
	qaHealthy.Status, qaHealthy.At = promote.RolloutHealthy, mustTime(t, "2026-08-07T10:02:31Z")
	api := promote.ClusterEvent{Object: "argocd/shop-api-tag-v4-13-0-rc-1", Path: "apps/shop-api/overlays/qa/tag-v4-13-0-rc-1", Revision: qaDegradedRev}
	qaSynced = api
	qaSynced.Status, qaSynced.At = promote.RolloutSynced, mustTime(t, "2026-08-07T10:06:45Z")
	qaDegraded = api
	qaDegraded.Status, qaDegraded.At, qaDegraded.Message = promote.RolloutDegraded, mustTime(t, "2026-08-07T10:16:48Z"), degradedMessage
	prodFailed = promote.ClusterEvent{
		Object: "argocd/shop-web-production", Path: "apps/shop-web/overlays/production", Revision: prodFailedRev,
		Status: promote.RolloutDegraded, At: mustTime(t, "2026-08-07T10:21:33Z"), Message: failedMessage,
	}
	return qaHealthy, qaSynced, qaDegraded, prodFailed
}

func withSource(ev promote.ClusterEvent, source string) promote.ClusterEvent {
	ev.Source = source
	return ev
}

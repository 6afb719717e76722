package feedback_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
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
	"github.com/promotebot/promotebot/promote/feedback"
)

const argoPath = "/v1/events/argocd"

var (
	examplesArgoCD = filepath.Join("..", "..", "examples", "argocd")
	testdataArgoCD = filepath.Join("..", "..", "testdata", "argocd")
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

// The templates of examples/argocd/notifications.yaml, rendered over real
// Applications when their triggers fire, and posted as Argo CD posts them,
// give the events the bot records.
func TestArgoCDNotifications(t *testing.T) {
	cfg := loadNotifications(t)
	triggers := cfg.triggers(t)
	url, headers := cfg.service(t)
	if url != "https://promotebot.example.com/v1/events/argocd" {
		t.Errorf("service url %q", url)
	}
	qaHealthy, qaSynced, qaDegraded, prodFailed := argoEvents(t)

	qaFinished := mustTime(t, "2026-08-07T10:02:03Z")
	staleSynced := promote.ClusterEvent{
		Object: qaHealthy.Object, Path: qaHealthy.Path, Revision: qaHealthyRev, Status: promote.RolloutSynced, At: qaFinished,
	}
	untimedHealthy := qaHealthy
	untimedHealthy.At = qaFinished
	recovered := qaDegraded
	recovered.Status, recovered.Message, recovered.At = promote.RolloutHealthy, "", mustTime(t, "2026-08-07T10:31:05Z")

	for _, tc := range []struct {
		name    string
		fixture string
		change  func(t *testing.T, app map[string]any)
		// want maps each trigger that fires to the event it gives.
		want map[string]promote.ClusterEvent
		// oncePer is the value of the triggers' oncePer, where checked.
		oncePer map[string]string
	}{
		{
			name: "QA synced and healthy since the sync", fixture: "app-qa-healthy.yaml",
			want: map[string]promote.ClusterEvent{
				"on-promotebot-sync-succeeded": qaHealthy,
				"on-promotebot-deployed":       qaHealthy,
			},
			oncePer: map[string]string{"on-promotebot-sync-succeeded": qaHealthyRev},
		},
		{
			name: "QA degraded after a sync", fixture: "app-qa-degraded.yaml",
			want: map[string]promote.ClusterEvent{
				"on-promotebot-sync-succeeded":  qaSynced,
				"on-promotebot-health-degraded": qaDegraded,
			},
		},
		{
			name: "production sync failed, the previous revision still healthy", fixture: "app-production-sync-failed.yaml",
			want: map[string]promote.ClusterEvent{"on-promotebot-sync-failed": prodFailed},
		},
		{
			// Argo CD wrote the sync's success before it looked at the
			// health again (argo-cd #9070): Healthy is the previous
			// revision's.
			name: "health older than the sync", fixture: "app-qa-healthy.yaml",
			change: func(t *testing.T, app map[string]any) {
				set(t, app, "2026-08-07T09:12:50Z", "status", "health", "lastTransitionTime")
			},
			want:    map[string]promote.ClusterEvent{"on-promotebot-sync-succeeded": staleSynced},
			oncePer: map[string]string{"on-promotebot-sync-succeeded": qaHealthyRev},
		},
		{
			name: "Argo CD without health.lastTransitionTime", fixture: "app-qa-healthy.yaml",
			change: func(t *testing.T, app map[string]any) {
				set(t, app, nil, "status", "health", "lastTransitionTime")
			},
			want: map[string]promote.ClusterEvent{
				"on-promotebot-sync-succeeded": staleSynced,
				"on-promotebot-deployed":       untimedHealthy,
			},
		},
		{
			name: "healthy again without a new sync", fixture: "app-qa-degraded.yaml",
			change: func(t *testing.T, app map[string]any) {
				set(t, app, map[string]any{"status": "Healthy", "lastTransitionTime": "2026-08-07T10:31:05Z"}, "status", "health")
				set(t, app, nil, "status", "resources")
			},
			// sync-succeeded was sent at the sync, once for its
			// revision; what it would say now is the recovery too.
			want: map[string]promote.ClusterEvent{
				"on-promotebot-sync-succeeded": recovered,
				"on-promotebot-deployed":       recovered,
			},
			oncePer: map[string]string{"on-promotebot-sync-succeeded": qaDegradedRev},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := loadApp(t, tc.fixture)
			if tc.change != nil {
				tc.change(t, app)
			}
			fired := fire(t, triggers, app)
			var names []string
			for _, f := range fired {
				names = append(names, f.trigger)
				if want, ok := tc.oncePer[f.trigger]; ok && f.oncePer != want {
					t.Errorf("%s: oncePer %q, want %q", f.trigger, f.oncePer, want)
				}
			}
			var wantNames []string
			for name := range tc.want {
				wantNames = append(wantNames, name)
			}
			slices.Sort(wantNames)
			if !slices.Equal(names, wantNames) {
				t.Fatalf("triggers fired: %v, want %v", names, wantNames)
			}
			for _, f := range fired {
				if len(f.send) != 1 {
					t.Fatalf("%s sends %v", f.trigger, f.send)
				}
				method, body := cfg.body(t, f.send[0])
				if method != http.MethodPost {
					t.Errorf("%s: method %q", f.send[0], method)
				}
				rendered := render(t, f.send[0], body, app)
				if !json.Valid(rendered) {
					t.Fatalf("%s renders no JSON:\n%s", f.send[0], rendered)
				}
				rec := &recorder{}
				h := &feedback.ArgoCD{Secret: cfg.secret["promotebot-events-secret"], Observer: rec, RepoURL: "https://github.com/acme/deploy-config.git"}
				for _, handler := range []http.Handler{h, gated(h.Gate(), h)} {
					if r := post(t, handler, argoPath, rendered, headers); r.status != http.StatusOK || !strings.Contains(r.body, `"outcome":"applied"`) {
						t.Errorf("%s: %d %s", f.send[0], r.status, r.body)
					}
				}
				want := withSource(tc.want[f.trigger], "argocd")
				if got := rec.seen(); !reflect.DeepEqual(got, []promote.ClusterEvent{want, want}) {
					t.Errorf("%s: observed\n%+v\nwant\n%+v", f.trigger, got, want)
				}
			}
		})
	}
}

// The four bodies are one, but for "trigger"; each trigger sends one of
// them; names are what the annotations can carry.
func TestArgoCDTemplatesAgree(t *testing.T) {
	cfg := loadNotifications(t)
	want := map[string]string{
		"promotebot-sync-succeeded":  "sync-succeeded",
		"promotebot-sync-failed":     "sync-failed",
		"promotebot-health-degraded": "health-degraded",
		"promotebot-deployed":        "deployed",
	}
	var shared string
	for name, trigger := range want {
		_, body := cfg.body(t, name)
		line := `"trigger": "` + trigger + `",`
		if strings.Count(body, line) != 1 {
			t.Errorf("%s does not say %s", name, line)
		}
		generic := strings.Replace(body, line, `"trigger": "…",`, 1)
		if shared == "" {
			shared = generic
		} else if generic != shared {
			t.Errorf("%s's body differs from the others beyond its trigger", name)
		}
	}
	var templates []string
	for k := range cfg.data {
		if name, ok := strings.CutPrefix(k, "template."); ok {
			templates = append(templates, name)
			if _, ok := want[name]; !ok {
				t.Errorf("unexpected template %s", name)
			}
		}
	}
	if len(templates) != len(want) {
		t.Errorf("templates %v", templates)
	}
	for name, conds := range cfg.triggers(t) {
		if strings.Contains(name, ".") || !strings.HasPrefix(name, "on-promotebot-") {
			t.Errorf("trigger %s: a subscription annotation cannot name it", name)
		}
		for _, c := range conds {
			if len(c.Send) != 1 || want[c.Send[0]] == "" || "on-"+c.Send[0] != name {
				t.Errorf("trigger %s sends %v", name, c.Send)
			}
			if c.Description == "" {
				t.Errorf("trigger %s has no description", name)
			}
		}
	}
}

// Every Application of the example ApplicationSets subscribes the
// promotebot service to every trigger.
func TestArgoCDApplicationsSubscribe(t *testing.T) {
	triggers := loadNotifications(t).triggers(t)
	for _, file := range []string{"applicationset-qa.yaml", "applicationset-production.yaml"} {
		data, err := os.ReadFile(filepath.Join(examplesArgoCD, file))
		if err != nil {
			t.Fatal(err)
		}
		var set struct {
			Spec struct {
				Template struct {
					Metadata struct {
						Annotations map[string]string `yaml:"annotations"`
					} `yaml:"metadata"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(data, &set); err != nil {
			t.Fatal(err)
		}
		annotations := set.Spec.Template.Metadata.Annotations
		for name := range triggers {
			key := "notifications.argoproj.io/subscribe." + name + ".promotebot"
			if v, ok := annotations[key]; !ok || v != "" {
				t.Errorf("%s: no %s: \"\"", file, key)
			}
		}
		if len(annotations) != len(triggers) {
			t.Errorf("%s: annotations %v", file, annotations)
		}
	}
}

// Every template renders for any Application, including ones with fields
// absent: never synced, multi-source, a Helm chart. What the bot does not
// follow is answered 200, ignored.
func TestArgoCDRendersAnyApplication(t *testing.T) {
	cfg := loadNotifications(t)
	_, headers := cfg.service(t)
	apps := map[string]map[string]any{}
	for _, item := range loadList(t) {
		name := item["metadata"].(map[string]any)["name"].(string)
		apps[name] = item
	}
	fresh := loadApp(t, "app-qa-healthy.yaml")
	set(t, fresh, nil, "status", "operationState")
	set(t, fresh, nil, "status", "history")
	set(t, fresh, map[string]any{"status": "Missing"}, "status", "health")
	set(t, fresh, map[string]any{"status": "OutOfSync"}, "status", "sync")
	apps["never synced"] = fresh

	for appName, app := range apps {
		for _, name := range []string{"promotebot-sync-succeeded", "promotebot-sync-failed", "promotebot-health-degraded", "promotebot-deployed"} {
			_, body := cfg.body(t, name)
			rendered := render(t, name, body, app)
			if !json.Valid(rendered) {
				t.Fatalf("%s over %s renders no JSON:\n%s", name, appName, rendered)
			}
			rec := &recorder{}
			h := &feedback.ArgoCD{Secret: cfg.secret["promotebot-events-secret"], Observer: rec}
			r := post(t, h, argoPath, rendered, headers)
			if r.status != http.StatusOK {
				t.Errorf("%s over %s: %d %s", name, appName, r.status, r.body)
			}
			switch appName {
			case "redis", "monitoring", "never synced":
				if !strings.Contains(r.body, `"outcome":"ignored"`) || len(rec.seen()) != 0 {
					t.Errorf("%s over %s: %s, observed %v", name, appName, r.body, rec.seen())
				}
			}
		}
	}
}

func TestArgoCDRefusesWithoutTheToken(t *testing.T) {
	cfg := loadNotifications(t)
	_, body := cfg.body(t, "promotebot-deployed")
	rendered := render(t, "promotebot-deployed", body, loadApp(t, "app-qa-healthy.yaml"))
	secret := cfg.secret["promotebot-events-secret"]
	for _, tc := range []struct {
		name    string
		secret  string
		headers map[string]string
	}{
		{"no Authorization", secret, map[string]string{"Content-Type": "application/json"}},
		{"wrong token", secret, map[string]string{"Authorization": "Bearer not-the-secret"}},
		{"the token with a suffix", secret, map[string]string{"Authorization": "Bearer " + secret + "x"}},
		{"basic auth", secret, map[string]string{"Authorization": "Basic " + secret}},
		{"bearer without a token", secret, map[string]string{"Authorization": "Bearer "}},
		{"no secret configured", "", map[string]string{"Authorization": "Bearer "}},
		{"no secret configured, any token", "", map[string]string{"Authorization": "Bearer " + secret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			h := &feedback.ArgoCD{Secret: tc.secret, Observer: rec}
			checkJSONError(t, post(t, h, argoPath, rendered, tc.headers), http.StatusUnauthorized, secret)
			checkJSONError(t, postUnread(t, h, argoPath, tc.headers), http.StatusUnauthorized, secret)
			if r := postUnread(t, gated(h.Gate(), h), argoPath, tc.headers); r.status != http.StatusUnauthorized {
				t.Errorf("behind its gate: %d", r.status)
			}
			if got := rec.seen(); len(got) != 0 {
				t.Errorf("observed %v", got)
			}
		})
	}
	// The right token proves the call on its own: the gate need not read
	// the body to let it through.
	h := &feedback.ArgoCD{Secret: secret}
	if proven, err := h.Gate().Headers(http.Header{"Authorization": {"Bearer " + secret}}); !proven || err != nil {
		t.Errorf("gate: %v %v", proven, err)
	}
}

func TestArgoCDRefusesWhatIsNotAnEvent(t *testing.T) {
	headers := map[string]string{"Authorization": "Bearer tok"}
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"not JSON", "app=shop-web&health=Healthy", http.StatusBadRequest},
		{"empty object", "{}", http.StatusBadRequest},
		{"the catalog's Slack body", `{"attachments":[{"title":"shop-web","color":"#18be52"}]}`, http.StatusBadRequest},
		{"no app", `{"trigger":"deployed"}`, http.StatusBadRequest},
		{"a time that is not RFC 3339", `{"trigger":"deployed","app":"a","finishedAt":"yesterday"}`, http.StatusBadRequest},
		{"over the limit", `{"trigger":"deployed","app":"` + strings.Repeat("a", 1<<20) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			h := &feedback.ArgoCD{Secret: "tok", Observer: rec}
			checkJSONError(t, post(t, h, argoPath, []byte(tc.body), headers), tc.status)
			if got := rec.seen(); len(got) != 0 {
				t.Errorf("observed %v", got)
			}
		})
	}
}

// With RepoURL set, an Application of another repository is ignored; the
// comparison ignores case, a trailing slash and ".git".
func TestArgoCDRepoURL(t *testing.T) {
	cfg := loadNotifications(t)
	_, headers := cfg.service(t)
	_, body := cfg.body(t, "promotebot-deployed")
	rendered := render(t, "promotebot-deployed", body, loadApp(t, "app-qa-healthy.yaml"))
	for repo, observed := range map[string]bool{
		"": true,
		"https://github.com/acme/deploy-config.git": true,
		"https://github.com/Acme/deploy-config/":    true,
		"https://github.com/acme/deploy-config":     true,
		"https://github.com/acme/other-config.git":  false,
	} {
		rec := &recorder{}
		h := &feedback.ArgoCD{Secret: cfg.secret["promotebot-events-secret"], Observer: rec, RepoURL: repo}
		r := post(t, h, argoPath, rendered, headers)
		if r.status != http.StatusOK || (len(rec.seen()) == 1) != observed {
			t.Errorf("RepoURL %q: %d %s, observed %v", repo, r.status, r.body, rec.seen())
		}
	}
}

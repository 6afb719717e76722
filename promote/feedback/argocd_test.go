package feedback_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/feedback"
)

const argoPath = "/v1/events/argocd"

var (
	examplesArgoCD = filepath.Join("..", "..", "examples", "argocd")
	testdataArgoCD = filepath.Join("..", "..", "testdata", "argocd")
)

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

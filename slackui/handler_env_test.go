package slackui

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// TestEnvironmentClicks: Tear down and Keep are carried out as clicked,
// once, recorded before the answer; a refusal is told to the clicker.
func TestEnvironmentClicks(t *testing.T) {
	const reason = "Only owners of hello can tear down `qa/branch-feature-login`."
	const leak = "https://x-access-token:ghs_s3cret@github.com/acme/config.git"
	for _, kind := range []promote.ActionKind{promote.ActionTeardown, promote.ActionKeep} {
		tests := []struct {
			name string
			err  error
			want []ephemeralCall // nil: nothing told; one with Text "" is any text without the error's
		}{
			{"carried out", nil, nil},
			{"refused", &promote.Refusal{Reason: reason}, []ephemeralCall{{"D0QA1", "UQA1", reason}}},
			{"refused, wrapped", errors.Join(errors.New("act"), &promote.Refusal{Reason: reason}),
				[]ephemeralCall{{"D0QA1", "UQA1", reason}}},
			{"failed", errors.New("push " + leak + ": connection reset"), []ephemeralCall{{"D0QA1", "UQA1", ""}}},
		}
		for _, tt := range tests {
			t.Run(string(kind)+"/"+tt.name, func(t *testing.T) {
				a, r := &fakeActor{actErr: tt.err}, &fakeResponder{}
				h := newHandlers(a, r)
				body := form(clickJSON(click{actionID: string(kind), value: "BUILD1"}))
				w := serveSigned(h.Interactions(), body)
				got := a.snapshot() // before Wait: recorded before the answer
				serveSigned(h.Interactions(), body)
				h.Wait()
				if w.Code != http.StatusOK || w.Body.Len() != 0 {
					t.Errorf("answer %d %q, want an empty 200", w.Code, w.Body.String())
				}
				want := []promote.Action{{Kind: kind, BuildID: "BUILD1", User: "UQA1",
					At: time.Unix(1700000000, 100000).UTC()}}
				if !slices.Equal(got.Acts, want) || len(got.Allowed)+len(got.Views) != 0 {
					t.Fatalf("when answered, the actor had %+v, want Act %+v only", got, want)
				}
				if n := len(a.snapshot().Acts); n != 1 {
					t.Errorf("Act called %d times for one click delivered twice", n)
				}
				eph, opened := r.snapshot()
				if len(opened) != 0 {
					t.Errorf("opened views: %v", opened)
				}
				if len(tt.want) == 1 && tt.want[0].Text == "" {
					if len(eph) != 1 || eph[0].Channel != "D0QA1" || eph[0].User != "UQA1" || eph[0].Text == "" ||
						strings.Contains(eph[0].Text, "ghs_") || strings.Contains(eph[0].Text, "connection reset") {
						t.Errorf("told %v, want one generic message to UQA1 in D0QA1", eph)
					}
					return
				}
				if !slices.Equal(eph, tt.want) {
					t.Errorf("told %v, want %v", eph, tt.want)
				}
			})
		}
	}
}

func TestEnvsCommand(t *testing.T) {
	// A Refusal's reason is mrkdwn the domain escaped: it is shown as is.
	const refusal = `No project "a&lt;b&gt;". Projects: hello.`
	none := promote.EnvironmentsView{Project: testProject(), TTL: testTTL}
	tests := []struct {
		name     string
		text     string
		actor    *fakeActor
		want     Message
		wantEnvs []string
	}{
		{"environments", "envs hello", &fakeActor{envs: testEnvs()}, EnvironmentsMessage(testEnvs(), envsNow),
			[]string{"hello"}},
		{"spaced", "  envs   hello  ", &fakeActor{envs: testEnvs()}, EnvironmentsMessage(testEnvs(), envsNow),
			[]string{"hello"}},
		{"none", "envs hello", &fakeActor{envs: none}, EnvironmentsMessage(none, envsNow), []string{"hello"}},
		{"hostile", "envs hello", &fakeActor{envs: manyEnvs(3, hostile)},
			EnvironmentsMessage(manyEnvs(3, hostile), envsNow), []string{"hello"}},
		{"without project", "envs", &fakeActor{}, Ephemeral("Which project? `/promote envs <project>`"), nil},
		{"unknown project", "envs a<b>", &fakeActor{envsErr: &promote.Refusal{Reason: refusal}}, Notice(refusal),
			[]string{"a<b>"}},
		{"fails", "envs hello", &fakeActor{envsErr: errors.New("pq: password authentication failed for user promotebot")},
			Ephemeral("Could not list the QA environments; try again."), []string{"hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := tt.actor, &fakeResponder{}
			h := newHandlers(a, r)
			h.Now = func() time.Time { return envsNow }
			w := serveSigned(h.Commands(), commandForm(tt.text))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d (%s)", w.Code, w.Body)
			}
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %q: %v", w.Body.String(), err)
			}
			if want := commandAnswer(t, tt.want); !reflect.DeepEqual(got, want) {
				t.Errorf("answer\n%s\nwant\n%v", w.Body, want)
			}
			if strings.Contains(w.Body.String(), "password") {
				t.Errorf("answer shows the error: %s", w.Body)
			}
			assertInert(t, tt.name, got)
			if calls := a.snapshot(); !slices.Equal(calls.Envs, tt.wantEnvs) ||
				len(calls.Acts)+len(calls.Allowed)+len(calls.Options)+len(calls.Statuses) != 0 {
				t.Errorf("actor got %+v, want Environments %v", calls, tt.wantEnvs)
			}
			if eph, opened := r.snapshot(); len(eph)+len(opened) != 0 {
				t.Errorf("responder called: %v %v", eph, opened)
			}
		})
	}
}

// TestEnvsCommandAnswersInTime: a slow listing is answered within Slack's
// 3 s, with a failure.
func TestEnvsCommandAnswersInTime(t *testing.T) {
	defer func(d time.Duration) { answerWithin = d }(answerWithin)
	answerWithin = 200 * time.Millisecond
	gate := make(chan struct{})
	defer close(gate)
	h := newHandlers(&fakeActor{gate: gate, envs: testEnvs()}, &fakeResponder{})
	start := time.Now()
	w := serveSigned(h.Commands(), commandForm("envs hello"))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("answered after %v", took)
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("answer %q: %v", w.Body.String(), err)
	}
	if want := commandAnswer(t, Ephemeral("Could not list the QA environments; try again.")); !reflect.DeepEqual(got, want) {
		t.Errorf("answer %s", w.Body)
	}
}

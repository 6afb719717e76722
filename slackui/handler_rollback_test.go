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

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// clickAt is when clickJSON's clicks were made.
var clickAt = time.Unix(1700000000, 100000).UTC()

func TestRollbackClickOpensTheDialog(t *testing.T) {
	const refusal = "Only owners of Hello Service can roll back."
	const older = "registry.example.com/acme/hello:1.3.0"
	chosen := `{"build":"BUILD1","image":"` + older + `"}`
	rollback := promote.Action{Kind: promote.ActionRollback, BuildID: "BUILD1", User: "UQA1", At: clickAt}
	rollbackTo := rollback
	rollbackTo.Image = older
	offered := rollbackView(promote.StatePromoted, nil)
	tests := []struct {
		name        string
		click       click
		actor       *fakeActor
		openErr     error
		wantAllowed []promote.Action
		wantViews   []string
		wantOpen    string // the dialog's private_metadata; "" for no dialog
		wantImage   string // the image the dialog names
		wantTell    string // exact text, "generic" for any text without the error's, "" for none
	}{
		{name: "Roll back button", click: click{actionID: ActionProdRollback, value: "BUILD1"},
			actor: &fakeActor{view: offered}, wantAllowed: []promote.Action{rollback}, wantViews: []string{"BUILD1"},
			wantOpen:  `{"build":"BUILD1","image":"` + prevImage + `","channel":"D0QA1"}`,
			wantImage: prevImage},
		{name: "an image chosen in /promote rollback", click: click{actionID: ActionProdRollbackTo, value: chosen},
			actor: &fakeActor{view: offered}, wantAllowed: []promote.Action{rollbackTo}, wantViews: []string{"BUILD1"},
			wantOpen: `{"build":"BUILD1","image":"` + older + `","channel":"D0QA1"}`, wantImage: older},
		{name: "refused", click: click{actionID: ActionProdRollback, value: "BUILD1"},
			actor:       &fakeActor{view: offered, allowErr: &promote.Refusal{Reason: refusal}},
			wantAllowed: []promote.Action{rollback}, wantTell: refusal},
		{name: "chosen image refused", click: click{actionID: ActionProdRollbackTo, value: chosen},
			actor:       &fakeActor{view: offered, allowErr: &promote.Refusal{Reason: refusal}},
			wantAllowed: []promote.Action{rollbackTo}, wantTell: refusal},
		{name: "no earlier image", click: click{actionID: ActionProdRollback, value: "BUILD1"},
			actor:       &fakeActor{view: testView(promote.StatePromoted)},
			wantAllowed: []promote.Action{rollback}, wantViews: []string{"BUILD1"},
			wantTell: "No earlier production image is known to put back."},
		{name: "view fails", click: click{actionID: ActionProdRollback, value: "BUILD1"},
			actor:       &fakeActor{viewErr: errors.New("database is locked")},
			wantAllowed: []promote.Action{rollback}, wantViews: []string{"BUILD1"}, wantTell: "generic"},
		{name: "views.open fails", click: click{actionID: ActionProdRollback, value: "BUILD1"},
			actor: &fakeActor{view: offered}, openErr: errors.New("slack views.open: expired_trigger_id"),
			wantAllowed: []promote.Action{rollback}, wantViews: []string{"BUILD1"},
			wantOpen:  `{"build":"BUILD1","image":"` + prevImage + `","channel":"D0QA1"}`,
			wantImage: prevImage, wantTell: "generic"},
		{name: "unreadable choice", click: click{actionID: ActionProdRollbackTo, value: "BUILD1"},
			actor: &fakeActor{view: offered}},
		{name: "choice without an image", click: click{actionID: ActionProdRollbackTo, value: `{"build":"BUILD1"}`},
			actor: &fakeActor{view: offered}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := tt.actor, &fakeResponder{openErr: tt.openErr}
			h := newHandlers(a, r)
			w := serveSigned(h.Interactions(), form(clickJSON(tt.click)))
			h.Wait()
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Fatalf("answer %d %q, want an empty 200", w.Code, w.Body.String())
			}
			calls := a.snapshot()
			if len(calls.Acts) != 0 || !slices.Equal(calls.Allowed, tt.wantAllowed) || !slices.Equal(calls.Views, tt.wantViews) {
				t.Errorf("actor got %+v, want Allowed %+v and View %v, no Act", calls, tt.wantAllowed, tt.wantViews)
			}
			eph, opened := r.snapshot()
			if tt.wantOpen == "" {
				if len(opened) != 0 {
					t.Errorf("opened %v", opened)
				}
			} else {
				if len(opened) != 1 {
					t.Fatalf("opened %d views, want 1", len(opened))
				}
				v := opened[0]
				if v.Trigger != "T1" || v.View.Type != slack.VTModal || v.View.CallbackID != RollbackCallbackID ||
					v.View.PrivateMetadata != tt.wantOpen {
					t.Errorf("opened trigger %q, view type %q callback %q metadata %q; want metadata %q", v.Trigger,
						v.View.Type, v.View.CallbackID, v.View.PrivateMetadata, tt.wantOpen)
				}
				ask := v.View.Blocks.BlockSet[0].(*slack.SectionBlock).Text.Text
				if want := "Put `" + tt.wantImage + "` back in production in place of " +
					"`registry.example.com/acme/hello:1.4.0`?"; ask != want {
					t.Errorf("the dialog asks %q, want %q", ask, want)
				}
			}
			switch tt.wantTell {
			case "":
				if len(eph) != 0 {
					t.Errorf("told %v", eph)
				}
			case "generic":
				if len(eph) != 1 || eph[0].Text == "" || strings.Contains(eph[0].Text, "locked") ||
					strings.Contains(eph[0].Text, "trigger") {
					t.Errorf("told %v, want one generic message", eph)
				}
			default:
				if want := []ephemeralCall{{"D0QA1", "UQA1", tt.wantTell}}; !slices.Equal(eph, want) {
					t.Errorf("told %v, want %v", eph, want)
				}
			}
		})
	}
}

func TestRollbackClickDeliveredTwiceAsksOnce(t *testing.T) {
	a, r := &fakeActor{view: rollbackView(promote.StatePromoted, nil)}, &fakeResponder{}
	h := newHandlers(a, r)
	body := form(clickJSON(click{actionID: ActionProdRollback, value: "BUILD1"}))
	serveSigned(h.Interactions(), body)
	serveSigned(h.Interactions(), body)
	h.Wait()
	if _, opened := r.snapshot(); len(opened) != 1 {
		t.Errorf("opened %d dialogs for one click delivered twice", len(opened))
	}
}

func TestRollbackSubmission(t *testing.T) {
	const refusal = "A rollback of Hello Service is already under way."
	const meta = `{"build":"BUILD1","image":"` + prevImage + `","channel":"D0OWN1"}`
	want := func(reason string) []promote.Action {
		return []promote.Action{{Kind: promote.ActionRollback, BuildID: "BUILD1", User: "UQA1", Image: prevImage,
			Reason: reason}}
	}
	tests := []struct {
		name     string
		payload  string
		actErr   error
		wantActs []promote.Action
		want     map[string]any // the JSON answer; nil for an empty 200
		wantTell string         // exact text, "generic" for any text without the error's, "" for none
	}{
		{name: "reason trimmed", payload: viewSubmissionJSON(RollbackCallbackID, meta, reasonState("  login broken  ")),
			wantActs: want("login broken")},
		{name: "hostile reason, as typed", payload: viewSubmissionJSON(RollbackCallbackID, meta, reasonState(hostile)),
			wantActs: want(hostile)},
		{name: "blank reason", payload: viewSubmissionJSON(RollbackCallbackID, meta, reasonState(" \n ")),
			wantActs: want("")},
		{name: "no state", payload: viewSubmissionJSON(RollbackCallbackID, meta, ""), wantActs: want("")},
		{name: "refused", payload: viewSubmissionJSON(RollbackCallbackID, meta, reasonState("x")),
			actErr: &promote.Refusal{Reason: refusal}, wantActs: want("x"), wantTell: refusal},
		{name: "failed", payload: viewSubmissionJSON(RollbackCallbackID, meta, reasonState("x")),
			actErr: errors.New("disk full at /var/lib/secret"), wantActs: want("x"), wantTell: "generic"},
		{name: "refused, no channel to tell", payload: viewSubmissionJSON(RollbackCallbackID,
			`{"build":"BUILD1","image":"`+prevImage+`"}`, reasonState("x")),
			actErr: &promote.Refusal{Reason: refusal}, wantActs: want("x")},
		{name: "unreadable metadata", payload: viewSubmissionJSON(RollbackCallbackID, "BUILD1", reasonState("x")),
			want: map[string]any{"response_action": "errors", "errors": map[string]any{
				"reason": "This dialog cannot be read; close it and click Roll back again."}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, r := &fakeActor{actErr: tt.actErr}, &fakeResponder{}
			h := newHandlers(a, r)
			w := serveSigned(h.Interactions(), form(tt.payload))
			// Recorded before the answer: read before h.Wait().
			if got := a.snapshot().Acts; !slices.Equal(got, tt.wantActs) {
				t.Errorf("Act got %+v, want %+v", got, tt.wantActs)
			}
			if w.Code != http.StatusOK {
				t.Fatalf("status %d (%s)", w.Code, w.Body)
			}
			if tt.want == nil {
				if w.Body.Len() != 0 {
					t.Errorf("answer %q, want empty (the dialog closes)", w.Body.String())
				}
			} else {
				var got map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatalf("answer %q: %v", w.Body.String(), err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("answer %v, want %v", got, tt.want)
				}
			}
			h.Wait()
			eph, opened := r.snapshot()
			if len(opened) != 0 {
				t.Errorf("opened %v", opened)
			}
			switch tt.wantTell {
			case "":
				if len(eph) != 0 {
					t.Errorf("told %v", eph)
				}
			case "generic":
				if len(eph) != 1 || eph[0].Channel != "D0OWN1" || eph[0].User != "UQA1" || eph[0].Text == "" ||
					strings.Contains(eph[0].Text, "disk") {
					t.Errorf("told %v, want one generic message to UQA1 in D0OWN1", eph)
				}
			default:
				if want := []ephemeralCall{{"D0OWN1", "UQA1", tt.wantTell}}; !slices.Equal(eph, want) {
					t.Errorf("told %v, want %v", eph, want)
				}
			}
		})
	}
}

func TestRollbackSubmissionDeliveredTwiceActsOnce(t *testing.T) {
	a, r := &fakeActor{}, &fakeResponder{}
	h := newHandlers(a, r)
	body := form(viewSubmissionJSON(RollbackCallbackID, `{"build":"BUILD1","image":"`+prevImage+`","channel":"D0OWN1"}`,
		reasonState("x")))
	serveSigned(h.Interactions(), body)
	serveSigned(h.Interactions(), body)
	h.Wait()
	if n := len(a.snapshot().Acts); n != 1 {
		t.Errorf("Act called %d times for one submission delivered twice", n)
	}
	if eph, _ := r.snapshot(); len(eph) != 0 {
		t.Errorf("told %v", eph)
	}
}

func TestCommandRollback(t *testing.T) {
	options := testOptions()
	none := promote.RollbackOptions{Project: testProject()}
	hostileOptions := testOptions()
	hostileOptions.Project.Name = hostile
	hostileOptions.Choices[0].Image = hostile
	// A Refusal's reason is mrkdwn the domain escaped: it is shown as is.
	const refusal = `No project "&lt;!channel&gt;". Projects: hello.`
	tests := []struct {
		name        string
		text        string
		actor       *fakeActor
		want        Message
		wantOptions []string
	}{
		{"options", "rollback hello", &fakeActor{options: options}, RollbackMessage(options), []string{"hello UOWN1"}},
		{"options, spaced", "  rollback   hello  ", &fakeActor{options: options}, RollbackMessage(options),
			[]string{"hello UOWN1"}},
		{"no current build", "rollback hello", &fakeActor{options: none}, RollbackMessage(none), []string{"hello UOWN1"}},
		{"without project", "rollback", &fakeActor{}, Ephemeral("Which project? `/promote rollback <project>`"), nil},
		{"unknown project", "rollback <!channel>", &fakeActor{optionsErr: &promote.Refusal{Reason: refusal}},
			Notice(refusal), []string{"<!channel> UOWN1"}},
		{"fails", "rollback hello", &fakeActor{optionsErr: errors.New("git fetch https://x-access-token:ghs_s3cret@github.com")},
			Ephemeral("Could not read production's history; try again."), []string{"hello UOWN1"}},
		{"hostile options", "rollback hello", &fakeActor{options: hostileOptions}, RollbackMessage(hostileOptions),
			[]string{"hello UOWN1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.actor
			h := newHandlers(a, &fakeResponder{})
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
			assertInert(t, tt.name, got)
			if strings.Contains(w.Body.String(), "s3cret") {
				t.Errorf("answer shows the error: %s", w.Body)
			}
			calls := a.snapshot()
			if !slices.Equal(calls.Options, tt.wantOptions) || len(calls.Acts)+len(calls.Allowed)+len(calls.Statuses) != 0 {
				t.Errorf("actor got %+v, want RollbackOptions %v", calls, tt.wantOptions)
			}
		})
	}
	// The help tells of it.
	if help := strings.Join(blockTexts(t, HelpMessage()), "\n"); !strings.Contains(help, "`/promote rollback &lt;project&gt;`") ||
		!strings.Contains(help, "*Roll back*") {
		t.Errorf("help does not tell of rollback:\n%s", help)
	}
}

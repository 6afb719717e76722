package slackui

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

const (
	// prevImage is the production image before testView's build.
	prevImage          = "registry.example.com/acme/hello:1.3.2"
	rollbackCommit     = "0badc0de0badc0de0badc0de0badc0de0badc0de"
	testRollbackReason = "Login fails for SSO users"
)

// ownerRollback is UOWN1's rollback to prevImage, asked and not ended.
func ownerRollback() *promote.Rollback {
	return &promote.Rollback{Image: prevImage, By: "UOWN1", ByName: "grace", Reason: testRollbackReason,
		At: t0.Add(3 * time.Hour)}
}

// autoRollback is autoRollback's to prevImage, asked and not ended.
func autoRollback() *promote.Rollback {
	return &promote.Rollback{Image: prevImage, ByName: "promotebot", Reason: testFailure, Auto: true,
		At: t0.Add(3 * time.Hour)}
}

// rollbackView is testView(s) with prevImage before it in production and
// the rollback r (nil for none).
func rollbackView(s promote.State, r *promote.Rollback) promote.BuildView {
	v := testView(s)
	v.RollbackTo = prevImage
	if r != nil {
		v.Build.Rollback = r
	}
	return v
}

// rollbackVariants are the builds production runs or ran, with every kind
// of rollback.
func rollbackVariants() map[string]promote.BuildView {
	degraded := func(timedOut bool) promote.BuildView {
		v := rolloutView(promote.StatePromoted, promote.RolloutProduction, true,
			testRollout(promote.RolloutDegraded, timedOut))
		v.RollbackTo = prevImage
		return v
	}
	timedOut := rolloutView(promote.StatePromoted, promote.RolloutProduction, true,
		testRollout(promote.RolloutSynced, true))
	timedOut.RollbackTo = prevImage
	landed := func(r *promote.Rollback) *promote.Rollback { r.Commit = rollbackCommit; return r }
	return map[string]promote.BuildView{
		"offered":          rollbackView(promote.StatePromoted, nil),
		"offered-degraded": degraded(false),
		"offered-degraded-timed-out": with(degraded(true), func(v *promote.BuildView) {
			v.Build.Rollback = landed(ownerRollback()) // an earlier rollback put it back
		}),
		"offered-timed-out": timedOut,
		"no-earlier-image":  testView(promote.StatePromoted),
		"pending":           rollbackView(promote.StatePromoted, ownerRollback()),
		"pending-degraded": with(degraded(false), func(v *promote.BuildView) {
			v.Build.Rollback = autoRollback()
		}),
		"pending-auto": rollbackView(promote.StatePromoted, autoRollback()),
		"failed": rollbackView(promote.StatePromoted, with2(ownerRollback(), func(r *promote.Rollback) {
			r.Error = "push to config: remote rejected"
		})),
		"restored":    rollbackView(promote.StatePromoted, landed(ownerRollback())),
		"rolled-back": testView(promote.StateRolledBack),
		"rolled-back-no-reason": rollbackView(promote.StateRolledBack, with2(landed(ownerRollback()),
			func(r *promote.Rollback) { r.Reason = " " })),
		"rolled-back-auto": rollbackView(promote.StateRolledBack, landed(autoRollback())),
		"rolled-back-unknown": with(testView(promote.StateRolledBack), func(v *promote.BuildView) {
			v.Build.Rollback = nil
		}),
	}
}

// with2 returns r changed by f.
func with2(r *promote.Rollback, f func(*promote.Rollback)) *promote.Rollback {
	f(r)
	return r
}

// rollbackMessages renders every view in every role.
func rollbackMessages(views map[string]promote.BuildView) map[string]Message {
	ms := map[string]Message{}
	for name, v := range views {
		for _, role := range []promote.MessageRole{promote.MessageChannel, promote.MessageOwner, promote.MessageQA,
			promote.MessageProduction, promote.MessageRollback} {
			ms[name+"/"+string(role)] = Render(post(role, "UQA1", v))
		}
	}
	return ms
}

// testChoice is putting prevImage back in place of testView's build, from
// UOWN1's DM.
func testChoice() RollbackChoice {
	return RollbackChoice{Build: buildID, Image: prevImage, Channel: "D0OWN1"}
}

// testOptions is what /promote rollback hello offers: testView's build in
// production, three images before it (the middle one put back by a
// rollback).
func testOptions() promote.RollbackOptions {
	cur := testView(promote.StatePromoted).Build
	return promote.RollbackOptions{Project: testProject(), Current: &cur, Choices: []promote.ProductionChange{
		{Image: prevImage, Commit: "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", At: t0.Add(-48 * time.Hour), Build: "b-0000"},
		{Image: "registry.example.com/acme/hello:1.3.1", Commit: "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
			At: t0.Add(-96 * time.Hour), RollbackOf: "b-0099"},
		{Image: "registry.example.com/acme/hello:1.3.0", Commit: "3333333ccccccccccccccccccccccccccccccccc",
			At: t0.Add(-240 * time.Hour), Build: "b-0098"},
	}}
}

// optionsMessages are /promote rollback's answers to o and its variants.
func optionsMessages(o promote.RollbackOptions) map[string]Message {
	pending, failed, many := o, o, o
	p := *o.Current
	p.Rollback = ownerRollback()
	pending.Current = &p
	f := *o.Current
	f.Rollback = with2(ownerRollback(), func(r *promote.Rollback) { r.Error = "push: rejected" })
	failed.Current = &f
	many.Choices = nil
	for i := range 30 {
		many.Choices = append(many.Choices, promote.ProductionChange{Image: fmt.Sprintf("%s-%d", prevImage, i)})
	}
	return map[string]Message{
		"choices":    RollbackMessage(o),
		"no-current": RollbackMessage(promote.RollbackOptions{Project: o.Project}),
		"no-choices": RollbackMessage(promote.RollbackOptions{Project: o.Project, Current: o.Current}),
		"pending":    RollbackMessage(pending),
		"failed":     RollbackMessage(failed),
		"many":       RollbackMessage(many),
		"empty":      RollbackMessage(promote.RollbackOptions{}),
	}
}

// longOptions has long in every field a person or a registry chose.
func longOptions(long string) promote.RollbackOptions {
	cur := testView(promote.StatePromoted).Build
	cur.Image, cur.PromotedBy = long, long
	o := promote.RollbackOptions{Project: promote.Project{ID: long, Name: long}, Current: &cur}
	for range 30 {
		o.Choices = append(o.Choices, promote.ProductionChange{Image: long, Commit: long, RollbackOf: long})
	}
	return o
}

// rollbackButtons are m's Roll back buttons.
func rollbackButtons(t *testing.T, m Message) []map[string]any {
	var bs []map[string]any
	for _, b := range buttons(t, m) {
		if b["action_id"] == ActionProdRollback {
			bs = append(bs, b)
		}
	}
	return bs
}

// The Roll back button is on the build production runs, in the production
// announcement and the owners' DM, while an earlier image is known and no
// rollback is under way; beside the production alerts when there are.
func TestRollbackButton(t *testing.T) {
	offered := map[string]bool{"offered": true, "offered-degraded": true, "offered-degraded-timed-out": true,
		"offered-timed-out": true, "failed": true, "restored": true}
	besideAlerts := map[string]bool{"offered-degraded": true, "offered-degraded-timed-out": true,
		"offered-timed-out": true}
	for name, v := range rollbackVariants() {
		for _, role := range []promote.MessageRole{promote.MessageChannel, promote.MessageOwner, promote.MessageQA,
			promote.MessageProduction, promote.MessageRollback} {
			t.Run(name+"/"+string(role), func(t *testing.T) {
				m := Render(post(role, "UOWN1", v))
				got := rollbackButtons(t, m)
				want := offered[name] && (role == promote.MessageOwner || role == promote.MessageProduction)
				if !want {
					if len(got) > 0 {
						t.Fatalf("has a Roll back button: %s", encode(t, m.Blocks))
					}
					if v.Build.State == promote.StateRolledBack && len(buttons(t, m)) > 0 {
						t.Errorf("a rolled-back build has buttons: %s", encode(t, m.Blocks))
					}
					return
				}
				if len(got) != 1 {
					t.Fatalf("%d Roll back buttons, want 1: %s", len(got), encode(t, m.Blocks))
				}
				b := got[0]
				if b["value"] != buildID || b["style"] != "danger" || b["confirm"] != nil ||
					b["text"].(map[string]any)["text"] != "Roll back" {
					t.Errorf("button %v", b)
				}
				blocks := decode(t, m.Blocks).([]any)
				first, last := blocks[0].(map[string]any), blocks[len(blocks)-1].(map[string]any)
				if besideAlerts[name] {
					acc, _ := first["accessory"].(map[string]any)
					if acc == nil || acc["action_id"] != ActionProdRollback ||
						!strings.Contains(strings.ToLower(first["text"].(map[string]any)["text"].(string)), "production") {
						t.Errorf("the button is not beside the production alerts: %s", encode(t, blocks))
					}
				} else if role == promote.MessageProduction {
					if last["type"] != "actions" || len(last["elements"].([]any)) != 1 {
						t.Errorf("the button is not the message's last block: %s", encode(t, blocks))
					}
				}
				all := strings.Join(blockTexts(t, m), "\n")
				if !strings.Contains(all, "*Roll back* (owners) puts `"+prevImage+"` back in production") {
					t.Errorf("the message does not say what Roll back does:\n%s", all)
				}
			})
		}
	}
	// Nor is Deploy offered once the build was rolled back, to no one: only
	// its QA environment can still be torn down or kept.
	for name, m := range everyMessage(testView) {
		if !strings.HasSuffix(name, "/"+string(promote.StateRolledBack)) {
			continue
		}
		if ids := slices.DeleteFunc(buttonIDs(t, m), func(id string) bool {
			return id == ActionQATeardown || id == ActionQAKeep
		}); len(ids) > 0 {
			t.Errorf("%s: a rolled-back build has buttons %v", name, ids)
		}
	}
}

func TestRollbackLines(t *testing.T) {
	const img, imgPlain = "`" + prevImage + "`", prevImage
	tests := []struct{ variant, line, text string }{
		{"offered", "", ""},
		{"restored", "", ""},
		{"pending", ":rewind: Rolling back to " + img + " (asked by <@UOWN1>)",
			"Rolling back to " + imgPlain + " (asked by <@UOWN1>)"},
		{"pending-auto", ":rewind: Rolling back to " + img + " (autoRollback)",
			"Rolling back to " + imgPlain + " (autoRollback)"},
		{"failed", ":x: Rollback failed: `push to config: remote rejected`",
			"Rollback failed: push to config: remote rejected"},
		{"rolled-back", ":rewind: Rolled back by <@UOWN1> to " + img + ": " + testRollbackReason,
			"Rolled back by <@UOWN1> to " + imgPlain + ": " + testRollbackReason},
		{"rolled-back-no-reason", ":rewind: Rolled back by <@UOWN1> to " + img,
			"Rolled back by <@UOWN1> to " + imgPlain},
		{"rolled-back-auto", ":rewind: Rolled back by promotebot (autoRollback) to " + img +
			" (production degraded: `" + testFailure + "`)",
			"Rolled back by promotebot (autoRollback) to " + imgPlain + " (production degraded: " + testFailure + ")"},
		{"rolled-back-unknown", ":rewind: Rolled back", "Rolled back"},
	}
	views := rollbackVariants()
	for _, tt := range tests {
		t.Run(tt.variant, func(t *testing.T) {
			v := views[tt.variant]
			line, text := rollbackLine(v.Build)
			if line != tt.line || text != tt.text {
				t.Fatalf("rollbackLine\n got %q, %q\nwant %q, %q", line, text, tt.line, tt.text)
			}
			if line == "" {
				return
			}
			roles := []promote.MessageRole{promote.MessageChannel, promote.MessageOwner, promote.MessageProduction}
			if v.Build.State == promote.StateRolledBack {
				roles = append(roles, promote.MessageQA)
			}
			for _, role := range roles {
				m := Render(post(role, "UQA3", v))
				if all := strings.Join(blockTexts(t, m), "\n"); !strings.Contains(all, "\n"+line) {
					t.Errorf("%s: no line %q in\n%s", role, line, all)
				}
				if !strings.Contains(m.Text, text) {
					t.Errorf("%s: fallback text %q lacks %q", role, m.Text, text)
				}
			}
		})
	}
}

func TestRollbackChannelMessage(t *testing.T) {
	const from, to = "`registry.example.com/acme/hello:1.4.0`", "`" + prevImage + "`"
	const fromPlain, toPlain = "registry.example.com/acme/hello:1.4.0", prevImage
	rolledBack := func(f func(r *promote.Rollback)) promote.BuildView {
		v := testView(promote.StateRolledBack)
		r := *v.Build.Rollback
		f(&r)
		v.Build.Rollback = &r
		return v
	}
	auto := func(r *promote.Rollback) { *r = *autoRollback(); r.Commit = rollbackCommit }
	tests := []struct {
		name                   string
		v                      promote.BuildView
		section, text, context string
	}{
		{"owner", testView(promote.StateRolledBack),
			"<@UOWN1> rolled back Hello Service from " + from + " to " + to + ": " + testRollbackReason,
			"<@UOWN1> rolled back Hello Service from " + fromPlain + " to " + toPlain + ": " + testRollbackReason,
			"Rollback commit `0badc0d`"},
		{"no reason", rolledBack(func(r *promote.Rollback) { r.Reason = "" }),
			"<@UOWN1> rolled back Hello Service from " + from + " to " + to,
			"<@UOWN1> rolled back Hello Service from " + fromPlain + " to " + toPlain, "Rollback commit `0badc0d`"},
		{"reason on lines", rolledBack(func(r *promote.Rollback) { r.Reason = "  SSO\nbroken \n" }),
			"<@UOWN1> rolled back Hello Service from " + from + " to " + to + ": SSO broken",
			"<@UOWN1> rolled back Hello Service from " + fromPlain + " to " + toPlain + ": SSO broken",
			"Rollback commit `0badc0d`"},
		{"by name only", rolledBack(func(r *promote.Rollback) { r.By = "" }),
			"grace rolled back Hello Service from " + from + " to " + to + ": " + testRollbackReason,
			"grace rolled back Hello Service from " + fromPlain + " to " + toPlain + ": " + testRollbackReason,
			"Rollback commit `0badc0d`"},
		{"pull request", rolledBack(func(r *promote.Rollback) {
			r.PullRequest = "https://github.com/acme/deploy-config/pull/43"
		}),
			"<@UOWN1> rolled back Hello Service from " + from + " to " + to + ": " + testRollbackReason,
			"<@UOWN1> rolled back Hello Service from " + fromPlain + " to " + toPlain + ": " + testRollbackReason,
			"Rollback pull request <https://github.com/acme/deploy-config/pull/43|#43> · Rollback commit `0badc0d`"},
		{"auto", rolledBack(auto),
			"promotebot rolled back Hello Service from " + from + " to " + to +
				" (production degraded: `" + testFailure + "`)",
			"promotebot rolled back Hello Service from " + fromPlain + " to " + toPlain +
				" (production degraded: " + testFailure + ")", "Rollback commit `0badc0d`"},
		{"auto, the controller's message from the rollout", with(rolledBack(func(r *promote.Rollback) {
			auto(r)
			r.Reason = ""
		}), func(v *promote.BuildView) {
			v.Build.Rollout.Production = testRollout(promote.RolloutDegraded, false)
		}),
			"promotebot rolled back Hello Service from " + from + " to " + to +
				" (production degraded: `" + testFailure + "`)",
			"promotebot rolled back Hello Service from " + fromPlain + " to " + toPlain +
				" (production degraded: " + testFailure + ")", "Rollback commit `0badc0d`"},
		{"auto, no message", rolledBack(func(r *promote.Rollback) { auto(r); r.Reason = "" }),
			"promotebot rolled back Hello Service from " + from + " to " + to + " (production degraded: _no reason given_)",
			"promotebot rolled back Hello Service from " + fromPlain + " to " + toPlain +
				" (production degraded: no reason given)", "Rollback commit `0badc0d`"},
		{"no rollback recorded", with(testView(promote.StateRolledBack), func(v *promote.BuildView) { v.Build.Rollback = nil }),
			"someone rolled back Hello Service from " + from + " to an earlier image",
			"someone rolled back Hello Service from " + fromPlain + " to an earlier image", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Render(post(promote.MessageRollback, "", tt.v))
			want := []string{tt.section}
			if tt.context != "" {
				want = append(want, tt.context)
			}
			if got := blockTexts(t, m); strings.Join(got, "\n--\n") != strings.Join(want, "\n--\n") {
				t.Errorf("blocks\n got %q\nwant %q", got, want)
			}
			if m.Text != tt.text {
				t.Errorf("text\n got %q\nwant %q", m.Text, tt.text)
			}
			if len(buttons(t, m)) > 0 {
				t.Errorf("has buttons")
			}
		})
	}
}

func TestRollbackModal(t *testing.T) {
	c := testChoice()
	m, ok := RollbackModal(c, rollbackView(promote.StatePromoted, nil))
	if !ok {
		t.Fatal("no modal")
	}
	const meta = `{"build":"b-0001","image":"registry.example.com/acme/hello:1.3.2","channel":"D0OWN1"}`
	if m.Type != slack.VTModal || m.CallbackID != RollbackCallbackID || m.PrivateMetadata != meta {
		t.Fatalf("modal type %q callback %q metadata %q", m.Type, m.CallbackID, m.PrivateMetadata)
	}
	if got, ok := decodeChoice(m.PrivateMetadata); !ok || got != c {
		t.Errorf("metadata decodes to %+v, %v", got, ok)
	}
	ask := m.Blocks.BlockSet[0].(*slack.SectionBlock).Text.Text
	if want := "Put `" + prevImage + "` back in production in place of `registry.example.com/acme/hello:1.4.0`?"; ask != want {
		t.Errorf("the dialog asks %q, want %q", ask, want)
	}
	in, ok := m.Blocks.BlockSet[2].(*slack.InputBlock)
	if !ok || in.BlockID != RollbackReasonBlockID || !in.Optional {
		t.Fatalf("reason block %+v", m.Blocks.BlockSet[2])
	}
	// One line: the reason becomes a commit trailer.
	if el := in.Element.(*slack.PlainTextInputBlockElement); el.ActionID != RollbackReasonActionID || el.Multiline ||
		el.MaxLength != maxReason {
		t.Errorf("reason input %+v", el)
	}
	if m.Title.Text != "Roll back production" || m.Submit.Text != "Roll back" || m.Close.Text != "Cancel" {
		t.Errorf("title %q submit %q close %q", m.Title.Text, m.Submit.Text, m.Close.Text)
	}

	// A hostile image travels exactly and is shown inert.
	h := RollbackChoice{Build: buildID, Image: hostile, Channel: "C0HELLO"}
	hm, ok := RollbackModal(h, hostileView(promote.StatePromoted))
	if !ok {
		t.Fatal("no modal for a hostile image")
	}
	assertInert(t, "hostile modal", hm)
	if got, ok := decodeChoice(hm.PrivateMetadata); !ok || got != h {
		t.Errorf("hostile metadata decodes to %+v, %v", got, ok)
	}
	// An image too long to carry opens no dialog.
	if _, ok := RollbackModal(RollbackChoice{Build: buildID, Image: strings.Repeat("a", maxChoice)},
		testView(promote.StatePromoted)); ok {
		t.Error("a dialog for an image longer than Slack carries")
	}
}

func TestDecodeChoice(t *testing.T) {
	for _, s := range []string{"", "b-0001", "null", "[]", "{}", `{"build":"b-0001"}`, `{"image":"x"}`,
		`{"build":"b-0001","image":""}`, `{"build":1,"image":"x"}`,
		`{"build":"b","image":"` + strings.Repeat("a", 3000) + `"}`} {
		if c, ok := decodeChoice(s); ok {
			t.Errorf("decodeChoice(%.40q) = %+v", s, c)
		}
	}
	if c, ok := decodeChoice(`{"build":"b-0001","image":"x"}`); !ok || c != (RollbackChoice{Build: "b-0001", Image: "x"}) {
		t.Errorf("decodeChoice = %+v, %v", c, ok)
	}
}

func TestRollbackOptionsMessage(t *testing.T) {
	ms := optionsMessages(testOptions())
	since := when(t0.Add(90 * time.Minute))
	prod := ":rocket: *Production* runs `registry.example.com/acme/hello:1.4.0` since " + since + " by <@UOWN1>"
	choices := []string{
		"`" + prevImage + "` · " + when(t0.Add(-48*time.Hour)) + " · `1111111`",
		"`registry.example.com/acme/hello:1.3.1` · " + when(t0.Add(-96*time.Hour)) + " · `2222222` · :rewind: rollback",
		"`registry.example.com/acme/hello:1.3.0` · " + when(t0.Add(-240*time.Hour)) + " · `3333333`",
	}
	const note = "Each button asks you to confirm, with an optional reason; the channel is told."
	const closed = "No rollback can be asked now: production runs no promoted build, or a rollback is under way."
	tests := []struct {
		name   string
		blocks []string
		text   string
		values []string // the buttons' values, in order
	}{
		{"choices", append(append([]string{"Hello Service", prod, "*Earlier production images*, newest first"},
			choices...), note), "Hello Service: production runs registry.example.com/acme/hello:1.4.0; 3 earlier images",
			[]string{`{"build":"b-0001","image":"registry.example.com/acme/hello:1.3.2"}`,
				`{"build":"b-0001","image":"registry.example.com/acme/hello:1.3.1"}`,
				`{"build":"b-0001","image":"registry.example.com/acme/hello:1.3.0"}`}},
		{"no-current", []string{"Hello Service",
			"Nothing to roll back: no build of Hello Service is known to run in production."},
			"Hello Service: nothing to roll back, no build is known to run in production", nil},
		{"no-choices", []string{"Hello Service", prod,
			"*Earlier production images*: none in the config repository's history"},
			"Hello Service: production runs registry.example.com/acme/hello:1.4.0; no earlier image", nil},
		{"pending", append(append([]string{"Hello Service",
			prod + "\n:rewind: Rolling back to `" + prevImage + "` (asked by <@UOWN1>)",
			"*Earlier production images*, newest first"}, choices...), closed),
			"Hello Service: production runs registry.example.com/acme/hello:1.4.0. Rolling back to " + prevImage +
				" (asked by <@UOWN1>); 3 earlier images", nil},
		{"empty", []string{"Unknown project",
			"Nothing to roll back: no build of Unknown project is known to run in production."},
			"Unknown project: nothing to roll back, no build is known to run in production", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ms[tt.name]
			if got := blockTexts(t, m); strings.Join(got, "\n--\n") != strings.Join(tt.blocks, "\n--\n") {
				t.Errorf("blocks\n got %q\nwant %q", got, tt.blocks)
			}
			if m.Text != tt.text {
				t.Errorf("text\n got %q\nwant %q", m.Text, tt.text)
			}
			var values []string
			for _, b := range buttons(t, m) {
				if b["action_id"] != ActionProdRollbackTo || b["text"].(map[string]any)["text"] != "Roll back to this" {
					t.Errorf("button %v", b)
				}
				values = append(values, b["value"].(string))
			}
			if strings.Join(values, "\n") != strings.Join(tt.values, "\n") {
				t.Errorf("button values\n got %q\nwant %q", values, tt.values)
			}
		})
	}

	// A failed rollback may be asked again.
	if n := len(buttons(t, ms["failed"])); n != 3 {
		t.Errorf("after a failed rollback: %d buttons, want 3", n)
	}
	// Many images: as many as fit, the rest counted.
	many := blockTexts(t, ms["many"])
	if n := len(buttons(t, ms["many"])); n != maxRollbackChoices {
		t.Errorf("30 images: %d buttons, want %d", n, maxRollbackChoices)
	}
	if last := many[len(many)-1]; !strings.HasPrefix(last, "…and 10 older | ") {
		t.Errorf("30 images: the last block is %q", last)
	}
	// An image too long for a button's value is listed without one.
	long := testOptions()
	long.Choices[1].Image = strings.Repeat("x", maxChoice)
	m := RollbackMessage(long)
	if n := len(buttons(t, m)); n != 2 {
		t.Errorf("a too long image has a button: %d buttons", n)
	}
	if all := strings.Join(blockTexts(t, m), "\n"); !strings.Contains(all, "· _too long to choose here_") {
		t.Errorf("a too long image is not explained:\n%s", all)
	}
}

func TestRollbackTextIsEscaped(t *testing.T) {
	views := map[string]promote.BuildView{}
	for _, s := range []promote.State{promote.StatePromoted, promote.StateRolledBack} {
		views["hostile-"+string(s)] = hostileView(s)
		auto := hostileView(s)
		auto.Build.Rollback = &promote.Rollback{Image: hostile, ByName: hostile, Reason: hostile, Auto: true,
			Commit: hostile}
		views["hostile-auto-"+string(s)] = auto
		pending := hostileView(s)
		pending.Build.Rollback.Error = ""
		views["hostile-pending-"+string(s)] = pending
	}
	for name, m := range rollbackMessages(views) {
		assertInert(t, name, messageJSON(m))
	}
	o := testOptions()
	o.Project.Name = hostile
	o.Current.Image, o.Current.PromotedBy = hostile, hostile
	o.Choices[0].Image, o.Choices[0].Commit, o.Choices[0].RollbackOf = hostile, hostile, hostile
	for name, m := range optionsMessages(o) {
		assertInert(t, "options/"+name, messageJSON(m))
	}
	// The rollback post shows the reason as text.
	m := Render(post(promote.MessageRollback, "", hostileView(promote.StateRolledBack)))
	if want := ": &lt;!channel&gt; *x* &lt;https://evil|click&gt; &amp; &lt;@U0ADMIN&gt;"; !strings.HasSuffix(
		blockTexts(t, m)[0], want) {
		t.Errorf("the reason is not escaped as %q:\n%s", want, blockTexts(t, m)[0])
	}
}

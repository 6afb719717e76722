package slackui

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

func TestLongTextIsCut(t *testing.T) {
	long := strings.Repeat("<", 10000)
	mk := func(s promote.State) promote.BuildView {
		v := testView(s)
		v.Build.Error, v.Build.Target, v.Build.Image = long, long, long
		v.Build.Author, v.Project.Name, v.SupersededByImage = long, long, long
		v.QAMembers = strings.Split(strings.Repeat("UQA1,", 1000), ",")
		for i := 0; i < 50; i++ {
			v.Approvals = append(v.Approvals, approval("UQA1", promote.Reject, long))
		}
		v.Feedback, v.RolloutTimeout = true, 1<<62
		v.Build.Rollout.QA = &promote.Rollout{Status: promote.RolloutDegraded, Message: long, TimedOut: true}
		v.Build.Rollout.Production = &promote.Rollout{Status: promote.RolloutDegraded, Message: long, TimedOut: true}
		v.RollbackTo = long
		v.Env = &promote.Environment{Project: long, Target: long, Name: long, URL: long, Image: long,
			BuildID: buildID, ActiveAt: t0, WarnedAt: t0.Add(time.Hour), Teardown: long}
		v.TTL = 1 << 62
		v.Build.Rollback = &promote.Rollback{Image: long, ByName: long, Reason: long, Error: long, PullRequest: long}
		return v
	}
	ms := everyMessage(mk)
	for k, m := range rollbackMessages(map[string]promote.BuildView{"long": mk(promote.StatePromoted),
		"long-rolled-back": mk(promote.StateRolledBack)}) {
		ms["rollback/"+k] = m
	}
	ms["rollback-options/long"] = RollbackMessage(longOptions(long))
	ms["ephemeral/long"] = Ephemeral(long)
	ms["verdict/long"] = Render(promote.Post{Role: promote.MessageVerdictReply, Approval: approval("UQA1", promote.Reject, long)})
	many := promote.StatusView{Project: testProject()}
	for i := 0; i < 200; i++ {
		many.QA = append(many.QA, testView(promote.StateQAReady))
	}
	ms["status/many"] = StatusMessage(many)
	for name, m := range ms {
		if n := utf8.RuneCountInString(m.Text); n > maxSectionText {
			t.Errorf("%s: text has %d characters", name, n)
		}
		walk(decode(t, m.Blocks), func(o map[string]any) {
			if o["type"] == "section" {
				if txt, ok := o["text"].(map[string]any); ok {
					if n := utf8.RuneCountInString(txt["text"].(string)); n > maxSectionText {
						t.Errorf("%s: section text has %d characters", name, n)
					}
				}
			}
		})
	}
	if !strings.Contains(ms["status/many"].Blocks[2].(*slack.SectionBlock).Text.Text, "more") {
		t.Errorf("200 QA environments are not summarized")
	}
}

// limits are the longest texts Slack accepts, by where they are.
var limits = map[string]int{"button": maxButtonText, "confirm": maxConfirmText, "field": maxFieldText,
	"title": maxConfirmTitle, "header": maxHeaderText, "other": maxSectionText}

func TestMessagesValidate(t *testing.T) {
	ms := everyMessage(testView)
	for k, m := range everyMessage(hostileView) {
		ms["hostile/"+k] = m
	}
	// Every rollout status, with a long message and revision, timed out.
	long := strings.Repeat("<", 10000)
	for _, st := range rolloutStatuses {
		for k, m := range everyMessage(func(s promote.State) promote.BuildView {
			v := testView(s)
			v.Feedback, v.RolloutTimeout = true, testTimeout
			r := &promote.Rollout{Status: st, Revision: long, Message: long, TimedOut: true}
			v.Build.Rollout.QA, v.Build.Rollout.Production = r, r
			return v
		}) {
			ms["rollout-"+string(st)+"/"+k] = m
		}
	}
	for k, m := range rollbackMessages(rollbackVariants()) {
		ms["rollback/"+k] = m
	}
	for k, m := range optionsMessages(testOptions()) {
		ms["rollback-options/"+k] = m
	}
	for k, m := range envsMessages() {
		ms["envs/"+k] = m
	}
	for name, m := range ms {
		if strings.TrimSpace(m.Text) == "" {
			t.Errorf("%s: no fallback text", name)
		}
		if len(m.Blocks) == 0 || len(m.Blocks) > 50 {
			t.Errorf("%s: %d blocks", name, len(m.Blocks))
		}
		for i, b := range m.Blocks {
			raw, err := json.Marshal(b)
			if err != nil {
				t.Fatalf("%s: block %d: %v", name, i, err)
			}
			var o map[string]any
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatal(err)
			}
			if o["type"] == nil || o["type"] == "" || o["type"] != string(b.BlockType()) {
				t.Errorf("%s: block %d has type %v", name, i, o["type"])
			}
			validateObject(t, name, o, "other")
		}
	}
	rollback, ok := RollbackModal(testChoice(), rollbackView(promote.StatePromoted, nil))
	if !ok {
		t.Fatal("no rollback modal")
	}
	for name, m := range map[string]any{"reject modal": RejectModal(buildID, testView(promote.StateQAReady)),
		"rollback modal": rollback} {
		modal := decode(t, m).(map[string]any)
		validateObject(t, name, modal, "other")
		for _, k := range []string{"title", "submit", "close"} {
			if n := utf8.RuneCountInString(modal[k].(map[string]any)["text"].(string)); n > maxModalTitle {
				t.Errorf("%s: %s has %d characters", name, k, n)
			}
		}
		if n := len(modal["private_metadata"].(string)); n > 3000 {
			t.Errorf("%s: private_metadata has %d bytes", name, n)
		}
	}
	// A button's value takes 2000 characters.
	for name, m := range ms {
		for _, b := range buttons(t, m) {
			if n := utf8.RuneCountInString(b["value"].(string)); n > maxChoice {
				t.Errorf("%s: button %v has a value of %d characters", name, b["action_id"], n)
			}
		}
	}
}

// validateObject checks every text object below o against Slack's rules.
func validateObject(t *testing.T, name string, o map[string]any, where string) {
	t.Helper()
	if typ, _ := o["type"].(string); typ == slack.MarkdownType || typ == slack.PlainTextType {
		text, _ := o["text"].(string)
		obj := slack.TextBlockObject{Type: typ, Text: text}
		if _, ok := o["emoji"]; ok {
			e := o["emoji"].(bool)
			obj.Emoji = &e
		}
		if err := obj.Validate(); err != nil {
			t.Errorf("%s: %s text %q: %v", name, where, text, err)
		}
		if n := utf8.RuneCountInString(text); n > limits[where] {
			t.Errorf("%s: %s text has %d characters, Slack takes %d", name, where, n, limits[where])
		}
		return
	}
	switch o["type"] {
	case "section":
		if fs, _ := o["fields"].([]any); len(fs) > 10 {
			t.Errorf("%s: %d fields", name, len(fs))
		}
	case "context", "actions":
		if es, _ := o["elements"].([]any); len(es) == 0 || len(es) > 10 {
			t.Errorf("%s: %s block with %d elements", name, o["type"], len(es))
		}
	}
	for k, c := range o {
		sub := where
		switch {
		case o["type"] == "button" && k == "text":
			sub = "button"
		case o["type"] == "header":
			sub = "header"
		case k == "fields" || o["type"] == "context":
			sub = "field"
		case k == "title" && o["type"] == nil:
			sub = "title"
		case k == "text" && o["type"] == nil:
			sub = "confirm"
		}
		switch x := c.(type) {
		case map[string]any:
			validateObject(t, name, x, sub)
		case []any:
			for _, e := range x {
				if m, ok := e.(map[string]any); ok {
					validateObject(t, name, m, sub)
				}
			}
		}
	}
}

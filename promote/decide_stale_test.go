package promote_test

import (
	"context"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// TestActRefusesClicksOlderThanTheBuildsLastChange: a click made before
// the build last changed state (a captured request replayed later, or a
// stale message) is refused with an explanation and changes nothing; a
// click made since is carried out. A promotion that failed is not tried
// again by the click that started it.
func TestActRefusesClicksOlderThanTheBuildsLastChange(t *testing.T) {
	// to moves the flow's build by evs, each recorded now.
	to := func(t *testing.T, f *flow, evs ...promote.Event) time.Time {
		t.Helper()
		before := time.Now()
		for _, ev := range evs {
			if _, err := f.st.Apply(context.Background(), f.build.ID, ev, nil); err != nil {
				t.Fatal(err)
			}
		}
		return before
	}
	tests := []struct {
		name    string
		events  []promote.Event // applied after the QA deploy
		kind    promote.ActionKind
		user    string
		clicked func(changed time.Time) time.Time // changed: just before the events
		refused string                            // in the refusal; "" for none
		want    promote.State
	}{
		{name: "approve clicked before the QA deploy", kind: promote.ActionApprove, user: "UQA1",
			clicked: func(time.Time) time.Time { return time.Now().Add(-time.Hour) },
			refused: "changed since you clicked", want: promote.StateQAReady},
		{name: "approve clicked since", kind: promote.ActionApprove, user: "UQA1",
			clicked: func(time.Time) time.Time { return time.Now() }, want: promote.StateApproved},
		{name: "approve with no click time (not from Slack)", kind: promote.ActionApprove, user: "UQA1",
			clicked: func(time.Time) time.Time { return time.Time{} }, want: promote.StateApproved},
		{name: "the deploy click of a failed promotion, replayed", kind: promote.ActionDeploy, user: "UOWN1",
			events:  []promote.Event{promote.EventApproved, promote.EventPromote, promote.EventPromoteFailed},
			clicked: func(changed time.Time) time.Time { return changed.Add(-time.Millisecond) },
			refused: "changed since you clicked", want: promote.StatePromoteFailed},
		{name: "deploy clicked again after the failure", kind: promote.ActionDeploy, user: "UOWN1",
			events:  []promote.Event{promote.EventApproved, promote.EventPromote, promote.EventPromoteFailed},
			clicked: func(time.Time) time.Time { return time.Now() }, want: promote.StatePromoting},
		{name: "close clicked before the approval", kind: promote.ActionClose, user: "UOWN1",
			events:  []promote.Event{promote.EventApproved},
			clicked: func(changed time.Time) time.Time { return changed.Add(-time.Millisecond) },
			refused: "changed since you clicked", want: promote.StateApproved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, "")
			changed := to(t, f, tt.events...)
			a := promote.Action{Kind: tt.kind, BuildID: f.build.ID, User: tt.user, At: tt.clicked(changed)}
			_, err := f.s.Act(context.Background(), a)
			allowErr := f.s.Allowed(context.Background(), a)
			if tt.refused != "" {
				wantRefusal(t, err, tt.refused)
				wantRefusal(t, allowErr, tt.refused)
			} else if err != nil {
				t.Fatalf("Act: %v", err)
			}
			if got := get(t, f.st, f.build.ID).State; got != tt.want {
				t.Errorf("build is %s, want %s", got, tt.want)
			}
		})
	}
}

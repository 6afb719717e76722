package slackui

import (
	"errors"
	"net/http"
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

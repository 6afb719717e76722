package localslack

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// est is a reader's time zone, 5 hours behind UTC.
var est = time.FixedZone("EST", -5*3600)

// TestDates: a date Slack formats for its reader shows in the page's
// reader's zone, with the tokens Slack documents, and the fallback when it
// cannot be read.
func TestDates(t *testing.T) {
	at := "1700000000" // 2023-11-14T22:13:20Z, 5:13 PM in EST
	for _, tc := range []struct {
		name, format string
		now          time.Time
		want         string
	}{
		{"same day", "{date_short_pretty} {time}", time.Date(2023, 11, 14, 23, 0, 0, 0, est), "today 5:13 PM"},
		{"next day", "{date_short_pretty} {time}", time.Date(2023, 11, 15, 9, 0, 0, 0, est), "yesterday 5:13 PM"},
		{"the day before", "{date_pretty}", time.Date(2023, 11, 13, 9, 0, 0, 0, est), "tomorrow"},
		{"a week later", "{date_short_pretty} {time}", time.Date(2023, 11, 21, 9, 0, 0, 0, est), "Nov 14, 2023 5:13 PM"},
		{"in UTC", "{date_short_pretty} {time}", time.Date(2023, 11, 21, 9, 0, 0, 0, time.UTC), "Nov 14, 2023 10:13 PM"},
		{"numbers", "{date_num} {time_secs}", time.Date(2024, 1, 1, 0, 0, 0, 0, est), "2023-11-14 5:13:20 PM"},
		{"long", "on {date_long}", time.Date(2024, 1, 1, 0, 0, 0, 0, est), "on Tuesday, November 14th, 2023"},
		{"date", "{date}", time.Date(2024, 1, 1, 0, 0, 0, 0, est), "November 14th, 2023"},
		{"unknown token", "{weekday}", time.Date(2024, 1, 1, 0, 0, 0, 0, est), "fallback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &renderer{now: tc.now}
			r.mrkdwn("<!date^" + at + "^" + tc.format + "|fallback>")
			if got, want := r.b.String(), "<time>"+tc.want+"</time>"; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	r := &renderer{now: time.Date(2024, 1, 1, 0, 0, 0, 0, est)}
	r.mrkdwn("<!date^soon^{date}|2023-11-14T22:13:20Z>")
	if got := r.b.String(); got != "<time>2023-11-14T22:13:20Z</time>" {
		t.Errorf("a time that is not a number: %q", got)
	}
	for n, want := range map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th",
		21: "21st", 22: "22nd", 23: "23rd", 31: "31st"} {
		if got := ordinal(n); got != want {
			t.Errorf("ordinal(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestTimeline: a conversation reads as Slack's does, oldest first with the
// newest at the bottom, each message with its local time; what the page
// tells a person (a click that came too late) takes its place in the
// timeline instead of staying above everything posted after it.
func TestTimeline(t *testing.T) {
	clock := time.Date(2025, 3, 4, 15, 4, 5, 0, est)
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	later := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(d)
	}
	f := newFixtureAt(t, now)
	btn := slack.NewButtonBlockElement("qa_approve", "b-1", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false))
	_, ts, err := f.client.PostMessage("UQA", slack.MsgOptionText("first", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("", btn)))
	if err != nil {
		t.Fatal(err)
	}
	click := formWith(t, f.get(t, "/?as=UQA"), `<form class="act"`, `data-action="qa_approve"`)
	later(time.Hour)
	if _, _, _, err := f.client.UpdateMessage("DQA", ts, slack.MsgOptionText("first, decided", false),
		slack.MsgOptionBlocks()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.client.PostMessage("UQA", slack.MsgOptionText("second", false)); err != nil {
		t.Fatal(err)
	}
	later(time.Minute)
	f.post(t, "/click", click) // the button is gone: the page says so
	later(time.Minute)
	if _, _, err := f.client.PostMessage("UQA", slack.MsgOptionText("third", false)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.interactions()); n != 0 {
		t.Fatalf("a click on a button that is gone reached the bot (%d)", n)
	}
	page := f.get(t, "/?as=UQA")
	order := []string{">3:04 PM<", "first, decided", ">4:04 PM<", "second", ">4:05 PM<",
		"That button is no longer on the message", ">4:06 PM<", "third"}
	at := 0
	for _, want := range order {
		i := strings.Index(page[at:], want)
		if i < 0 {
			t.Fatalf("the page does not hold %q after the text before it, in order %q:\n%s", want, order, page)
		}
		at += i + len(want)
	}
	if strings.Contains(page, "+0000") || strings.Contains(page, ">2025-03-04T") {
		t.Errorf("the page shows raw times:\n%s", page)
	}
}

package trailer

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want []Trailer
	}{
		{"Subject only\n", nil},
		{"Key: looks like a trailer but is the subject\n", nil},
		{"Subject\n\nA: 1\nB-2: two words \n", []Trailer{{Key: "A", Value: "1"}, {Key: "B-2", Value: "two words"}}},
		{"Subject\n\nBody: not last\n\nA: 1\n", []Trailer{{Key: "A", Value: "1"}}},
		{"Subject\n\nA: 1\nnot a trailer\n", nil},
		{"Subject\n\nA: 1\n\nThanks!\n", nil},
		{"Subject\n\nA: 1\n  continued\n", []Trailer{{Key: "A", Value: "1 continued"}}},
		{"Subject\n\n  continuation first\n", nil},
		{"Subject\r\n\r\nA: 1\r\n", []Trailer{{Key: "A", Value: "1"}}},
		{"Subject\n\nBad key: 1\n", nil},
		{"Subject\n\n<evil>: 1\n", nil},
		{"Subject\n\nA: 1\n \t\nB: 2\n", []Trailer{{Key: "B", Value: "2"}}},
	} {
		if got := Parse(tc.msg); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

func TestPeople(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct{ name, id, wantName, person string }{
		{"Ann", "U1", "Ann", "Ann <slack:U1>"},
		{"", "U2", "", "<slack:U2>"},
		{" Eve\nApproved-by: <x> ", "U3", "EveApproved-by: x", "EveApproved-by: x <slack:U3>"},
	} {
		if got := Person(tc.name, tc.id); got != tc.person {
			t.Errorf("Person(%q, %q) = %q, want %q", tc.name, tc.id, got, tc.person)
		}
		name, id, ok := ParsePerson(Person(tc.name, tc.id))
		if !ok || name != tc.wantName || id != tc.id {
			t.Errorf("ParsePerson(Person(%q)) = %q, %q, %v", tc.name, name, id, ok)
		}
		a := Approval(tc.name, tc.id, at)
		name, id, when, ok := ParseApproval(a)
		if !ok || name != tc.wantName || id != tc.id || !when.Equal(at) || when.Location() != time.UTC {
			t.Errorf("ParseApproval(%q) = %q, %q, %v, %v", a, name, id, when, ok)
		}
	}
	// The bot's own decisions (autoRollback) name it without a Slack id.
	for _, tc := range []struct{ name, person string }{{"promotebot", "promotebot"}, {" Eve <x>\n", "Eve x"}, {"", ""}} {
		if got := Person(tc.name, ""); got != tc.person {
			t.Errorf("Person(%q, \"\") = %q, want %q", tc.name, got, tc.person)
		}
	}
	if name, id, ok := ParsePerson("promotebot"); !ok || name != "promotebot" || id != "" {
		t.Errorf("ParsePerson(promotebot) = %q, %q, %v", name, id, ok)
	}
	for _, v := range []string{"", "Ann <slack:>", "Ann <slack:u1>", "<evil>"} {
		if _, _, ok := ParsePerson(v); ok {
			t.Errorf("ParsePerson(%q) accepted", v)
		}
	}
	for _, v := range []string{"Ann", "Ann <slack:u1>", "Ann <slack:U1> yesterday", "<slack:U1> 2025-01-02T03:04:05Z x"} {
		if _, _, _, ok := ParseApproval(v); ok {
			t.Errorf("ParseApproval(%q) accepted", v)
		}
	}
}

// FuzzTrailers checks Parse on any message, and that trailers
// written by Format come back as written.
//
// On any message: no panic; every trailer's key is [A-Za-z0-9-]+ and stands
// at the start of a line of the message; every value is trimmed and holds
// no "\n".
//
// Round trip, for a subject that is not blank (a message of trailers alone
// has no trailers: its only paragraph is the subject, as in git) and keys of
// trailer characters (callers write constant keys): Parse returns
// the keys in order with the values made one line, whatever the subject,
// body and values hold, so a value holding "\nApproved-by: x" never adds an
// approval.
func FuzzTrailers(f *testing.F) {
	prod := Format("Promote hello 1.4.0 to production", "", []Trailer{
		{Build, "01JBUILD"}, {Project, "hello"}, {Environment, Production},
		{Image, "registry.example.com/acme/hello:1.4.0"},
		{Source, "branch feature/Login @ abc123 https://ci.example.com/1"},
		{ApprovedBy, Approval("Ann", "U1", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))},
		{PromotedBy, Person("Bob", "U2")}, {RequiredApprovals, "1"},
	})
	msgs := []string{
		prod, "subject only\n", "", "\n\n", "s\n\nK: v\n", "s\n\nK:\n  x\n", "s\n\nK: v\n continued\n\tmore\n",
		"s\n\n  x\nK: v\n", "s\n\nnot a trailer\nK: v\n", "s\n\nK: v\n\n", "s\r\n\r\nK: v\r\n", "s\n\n:v\n",
		"s\n\nK : v\n", "s\n\nKü: v\n", "s\n\nK: a\u2028b\n", "s\n\n\u00a0\nK: v\n", "s\n\nK:\u0085\n",
		"Approved-by: x\n", "s\n\nbody\n\nApproved-by: Ann <slack:U1> 2025-01-02T03:04:05Z\n",
	}
	for i, m := range msgs {
		f.Add(m, "Deploy hello 1.4.0 to qa/branch-feature-login", "", "Promotebot-Build", "01JBUILD",
			"Approved-by", msgs[(i+3)%len(msgs)], "Promoted-by", "Bob <slack:U2>")
	}
	f.Add("", "s", "body\n\nApproved-by: forged", "Promotebot-Source", "branch x\nApproved-by: x", "", "", "", "")
	f.Add("", "s\n\nApproved-by: x", "", "K", "v\n\nApproved-by: x\n", "K2", "  \t ", "K3", "a\r\nb")
	f.Add("", "  ", "", "K", "v", "", "", "", "")
	f.Add("", "s", "", "Approved-by", "Ann <slack:U1> 2025-01-02T03:04:05Z\u2028Approved-by: x", "", "", "", "")
	f.Fuzz(func(t *testing.T, msg, subject, body, k1, v1, k2, v2, k3, v3 string) {
		checkTrailers(t, msg, Parse(msg))
		var in []Trailer
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
			if kv[0] == "" {
				continue
			}
			if !isKeyText(kv[0]) {
				return
			}
			in = append(in, Trailer{Key: kv[0], Value: kv[1]})
		}
		if len(in) == 0 || strings.TrimSpace(subject) == "" {
			return
		}
		m := Format(subject, body, in)
		got := Parse(m)
		checkTrailers(t, m, got)
		want := make([]Trailer, len(in))
		for i, tr := range in {
			want[i] = Trailer{Key: tr.Key, Value: strings.Join(strings.Fields(tr.Value), " ")}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Parse of\n%s\n= %q\nwant %q", m, got, want)
		}
		if a, w := approvals(got), countKey(in, ApprovedBy); a > w {
			t.Fatalf("%d approvals read from %d Approved-by trailers:\n%s", a, w, m)
		}
	})
}

func isKeyText(k string) bool {
	return k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == ""
}

func countKey(ts []Trailer, key string) int {
	n := 0
	for _, t := range ts {
		if strings.EqualFold(t.Key, key) {
			n++
		}
	}
	return n
}

// checkTrailers checks what holds for the trailers of any message.
func checkTrailers(t *testing.T, msg string, ts []Trailer) {
	t.Helper()
	for _, tr := range ts {
		if !isKeyText(tr.Key) || !strings.Contains("\n"+msg, "\n"+tr.Key+":") {
			t.Fatalf("trailer key %q is not a key at the start of a line of %q", tr.Key, msg)
		}
		// A lone "\r" inside a value stays, as in git, which splits lines
		// at "\n" only; promotebot never writes one (Format).
		if strings.Contains(tr.Value, "\n") || tr.Value != strings.TrimSpace(tr.Value) {
			t.Fatalf("trailer %s has the value %q, not one trimmed line, in %q", tr.Key, tr.Value, msg)
		}
	}
}

// approvals counts the Approved-by trailers that read as approvals.
func approvals(ts []Trailer) int {
	n := 0
	for _, t := range ts {
		if _, _, _, ok := ParseApproval(t.Value); ok && strings.EqualFold(t.Key, ApprovedBy) {
			n++
		}
	}
	return n
}

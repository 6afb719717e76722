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

// envsNow is when /promote envs is asked in these tests.
var envsNow = t0.Add(24 * time.Hour)

// testEnvs is what /promote envs hello shows at envsNow, idle longest
// first: one past its expiry, testView's, a tag's, and one without a URL.
func testEnvs() promote.EnvironmentsView {
	return promote.EnvironmentsView{Project: testProject(), TTL: testTTL, Environments: []promote.Environment{
		{Project: "hello", Kind: promote.KindBranch, Target: "old/thing", Name: "qa/branch-old-thing",
			URL: "https://old-thing.branch.hello.example.com", BuildID: "b-0000",
			Image: "registry.example.com/acme/hello:1.2.0", CreatedAt: t0.Add(-10 * 24 * time.Hour),
			ActiveAt: t0.Add(-72 * time.Hour), WarnedAt: t0.Add(-24 * time.Hour)},
		*testEnv(testView(promote.StateQAReady).Build),
		{Project: "hello", Kind: promote.KindTag, Target: "v1.3.3", Name: "qa/tag-v1-3-3",
			URL: "https://v1-3-3.tag.hello.example.com", BuildID: "b-0003",
			Image: "registry.example.com/acme/hello:1.3.3", CreatedAt: t0.Add(-48 * time.Hour),
			ActiveAt: t0.Add(20 * time.Hour)},
		{Project: "hello", Kind: promote.KindBranch, Target: "fix/typo", Name: "qa/branch-fix-typo",
			BuildID: "b-0004", Image: "registry.example.com/acme/hello:1.4.1-rc1",
			CreatedAt: t0.Add(23*time.Hour + 55*time.Minute), ActiveAt: t0.Add(23*time.Hour + 55*time.Minute)},
	}}
}

// with3 returns v changed by f.
func with3(v promote.EnvironmentsView, f func(*promote.EnvironmentsView)) promote.EnvironmentsView {
	f(&v)
	return v
}

// manyEnvs is a project with n environments, each field of each as long as
// long, or hostile.
func manyEnvs(n int, text string) promote.EnvironmentsView {
	v := promote.EnvironmentsView{Project: testProject(), TTL: testTTL}
	v.Project.Name = text
	for i := range n {
		v.Environments = append(v.Environments, promote.Environment{Project: text, Kind: promote.Kind(text),
			Target: text, Name: text, URL: text, BuildID: fmt.Sprint(i), Image: text, Teardown: text,
			CreatedAt: t0, ActiveAt: t0})
	}
	return v
}

// envsMessages are /promote envs answers of every kind, for the tests of
// Slack's limits.
func envsMessages() map[string]Message {
	long := strings.Repeat("<", 10000)
	longURL := "https://qa.example.com/" + strings.Repeat("a", 2900)
	return map[string]Message{
		"envs":       EnvironmentsMessage(testEnvs(), envsNow),
		"none":       EnvironmentsMessage(promote.EnvironmentsView{Project: testProject()}, envsNow),
		"no project": EnvironmentsMessage(promote.EnvironmentsView{}, envsNow),
		"one long":   EnvironmentsMessage(manyEnvs(1, long), envsNow),
		"many long":  EnvironmentsMessage(manyEnvs(200, long), envsNow),
		"many":       EnvironmentsMessage(manyEnvs(200, "qa/branch-x"), envsNow),
		"hostile":    EnvironmentsMessage(manyEnvs(3, hostile), envsNow),
		"long URLs": EnvironmentsMessage(with3(manyEnvs(60, "qa/x"), func(v *promote.EnvironmentsView) {
			for i := range v.Environments {
				v.Environments[i].URL = longURL
			}
		}), envsNow),
	}
}

func TestEnvironmentsMessage(t *testing.T) {
	lines := func(m Message) []string {
		var ls []string
		for _, b := range m.Blocks[1:] {
			if sec, ok := b.(*slack.SectionBlock); ok {
				for l := range strings.SplitSeq(sec.Text.Text, "\n") {
					if strings.HasPrefix(l, "• ") {
						ls = append(ls, l)
					}
				}
			}
		}
		return ls
	}
	const login = "• `qa/branch-feature-login` (branch `feature/login`) · `registry.example.com/acme/hello:1.4.0` · " +
		"age 24 h · last activity 22 h ago · " +
		"<https://feature-login.branch.hello.example.com|feature-login.branch.hello.example.com> · expires in 2 d"
	got := lines(EnvironmentsMessage(testEnvs(), envsNow))
	want := []string{
		"• `qa/branch-old-thing` (branch `old/thing`) · `registry.example.com/acme/hello:1.2.0` · age 11 d · " +
			"last activity 4 d ago · <https://old-thing.branch.hello.example.com|old-thing.branch.hello.example.com> · " +
			"expired, teardown due",
		login,
		"• `qa/tag-v1-3-3` (tag `v1.3.3`) · `registry.example.com/acme/hello:1.3.3` · age 3 d · last activity 4 h ago · " +
			"<https://v1-3-3.tag.hello.example.com|v1-3-3.tag.hello.example.com> · expires in 2 d",
		"• `qa/branch-fix-typo` (branch `fix/typo`) · `registry.example.com/acme/hello:1.4.1-rc1` · age 5 min · " +
			"last activity 5 min ago · expires in 2 d",
	}
	if !slices.Equal(got, want) {
		t.Errorf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := EnvironmentsMessage(testEnvs(), envsNow); m.Text != "Hello Service: 4 QA environments" {
		t.Errorf("text %q", m.Text)
	}
	noTTL := with3(testEnvs(), func(v *promote.EnvironmentsView) { v.TTL = 0 })
	if got := lines(EnvironmentsMessage(noTTL, envsNow)); len(got) != 4 ||
		got[1] != strings.TrimSuffix(login, "expires in 2 d")+"never expires" {
		t.Errorf("without a TTL: %q", got)
	}

	none := EnvironmentsMessage(promote.EnvironmentsView{Project: testProject(), TTL: testTTL}, envsNow)
	if none.Text != "No QA environments of Hello Service." || blockTexts(t, none)[1] != none.Text {
		t.Errorf("none: %q %q", none.Text, blockTexts(t, none))
	}

	// At most 40 lines, the rest counted.
	many := EnvironmentsMessage(manyEnvs(200, "qa/branch-x"), envsNow)
	if n := len(lines(many)); n != maxEnvLines {
		t.Errorf("200 environments: %d lines, want %d", n, maxEnvLines)
	}
	if all := strings.Join(blockTexts(t, many), "\n"); !strings.Contains(all, "…and 160 more") {
		t.Errorf("200 environments: the rest are not counted:\n%s", all)
	}
	// The service lists the first 40 and counts them all (Total).
	counted := manyEnvs(maxEnvLines, "qa/branch-x")
	counted.Total = 10000
	listed := EnvironmentsMessage(counted, envsNow)
	if all := strings.Join(blockTexts(t, listed), "\n"); len(lines(listed)) != maxEnvLines ||
		!strings.Contains(all, "…and 9960 more") || !strings.Contains(listed.Text, "10000 QA environments") {
		t.Errorf("40 listed of 10,000: %q\n%s", listed.Text, all)
	}
	if n := len(lines(EnvironmentsMessage(manyEnvs(maxEnvLines, "qa/branch-x"), envsNow))); n != maxEnvLines {
		t.Errorf("%d environments: %d lines", maxEnvLines, n)
	}

	// What CI sent (targets, images, URLs, names) can neither mention nor link.
	for name, m := range envsMessages() {
		assertInert(t, name, messageJSON(m))
	}
	out := string(encode(t, decode(t, EnvironmentsMessage(manyEnvs(1, hostile), envsNow).Blocks)))
	if want := "`&lt;!channel&gt; *x* &lt;https://evil|click&gt; &amp; &lt;@U0ADMIN&gt;`"; !strings.Contains(out, want) {
		t.Errorf("a hostile target is not shown as escaped code %s:\n%s", want, out)
	}
}

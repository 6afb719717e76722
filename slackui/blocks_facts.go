package slackui

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// facts is a section of the build's fields: project, image, target,
// environment, and what CI sent about the source. withQA adds the QA URL.
func facts(v promote.BuildView, withQA bool) *slack.SectionBlock {
	b := v.Build
	fields := []string{
		"*Project*\n" + escapeClip(oneLine(projectName(v)), maxInline),
		"*Image*\n" + code(b.Image),
		"*" + kindTitle(b.Kind) + "*\n" + code(b.Target),
	}
	if b.Environment != "" {
		fields = append(fields, "*Environment*\n"+code(b.Environment))
	}
	if withQA && webURL(b.URL) {
		fields = append(fields, "*QA*\n"+link(b.URL, escapeClip(urlLabel(b.URL), maxInline)))
	}
	if b.Commit != "" {
		fields = append(fields, "*Commit*\n"+sourceCommit(b.Commit))
	}
	if b.Author != "" {
		fields = append(fields, "*Author*\n"+code(b.Author))
	}
	if b.BuildURL != "" {
		ci := code(b.BuildURL)
		if webURL(b.BuildURL) {
			ci = link(b.BuildURL, onHost("build log", b.BuildURL))
		}
		fields = append(fields, "*CI*\n"+ci)
	}
	objs := make([]*slack.TextBlockObject, 0, len(fields))
	for _, f := range fields {
		objs = append(objs, md(f, maxFieldText))
	}
	return slack.NewSectionBlock(nil, objs, nil)
}

// projectName is the project's name for people, or its id.
func projectName(v promote.BuildView) string {
	switch {
	case v.Project.Name != "":
		return v.Project.Name
	case v.Project.ID != "":
		return v.Project.ID
	}
	return v.Build.Project
}

// kindTitle names a target's kind as a field title.
func kindTitle(k promote.Kind) string {
	switch k {
	case promote.KindBranch:
		return "Branch"
	case promote.KindTag:
		return "Tag"
	}
	return "Target"
}

// targetRef is "branch `feature/login`".
func targetRef(b promote.Build) string {
	return kindTarget(b.Kind, b.Target)
}

// kindTarget is a kind and a target: "branch `feature/login`".
func kindTarget(k promote.Kind, target string) string {
	return strings.ToLower(kindTitle(k)) + " " + code(target)
}

// envRef is the build's QA environment as code, or "QA" before it is known.
func envRef(b promote.Build) string {
	if b.Environment == "" {
		return "QA"
	}
	return code(b.Environment)
}

// envPlain is envRef for the fallback text.
func envPlain(b promote.Build) string {
	if b.Environment == "" {
		return "QA"
	}
	return plain(b.Environment, maxInline)
}

// sourceCommit shows the commit CI sent: a link when it is a URL, else its
// short id.
func sourceCommit(c string) string {
	if webURL(c) {
		return link(c, onHost("commit", c))
	}
	return code(shortSHA(c))
}

// onHost labels a link from CI with the host it leads to, so that people
// see where a click takes them before they click: "build log on
// ci.example.com".
func onHost(what, u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Hostname() == "" {
		return what
	}
	return what + " on " + escapeClip(p.Hostname(), maxInline)
}

// urlLabel is a URL without its scheme, for a link's text.
func urlLabel(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return u
	}
	return strings.TrimSuffix(p.Host+p.EscapedPath(), "/")
}

// tally is "Approvals: n of m", with who approved.
func tally(v promote.BuildView) string {
	var who []string
	for _, a := range v.Approvals {
		if a.Verdict == promote.Approve {
			who = append(who, a.User)
		}
	}
	s := fmt.Sprintf("Approvals: %d of %d", v.Approved(), v.Project.RequiredApprovals)
	if len(who) > 0 {
		s += " (" + mentions(who) + ")"
	}
	return s
}

// rejectedBy is "Rejected by <@U> (reason), <@V>", or "" without rejections.
func rejectedBy(v promote.BuildView) string {
	var rs []string
	for _, a := range v.Rejections() {
		r := mention(a.User)
		if reason := strings.TrimSpace(a.Reason); reason != "" {
			r += " (" + prose(reason, maxShortReason) + ")"
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return ""
	}
	return "Rejected by " + strings.Join(rs, ", ")
}

// rejectedBlocking is the owner's note on a rejected build.
func rejectedBlocking(v promote.BuildView) string {
	var rs []string
	for _, a := range v.Rejections() {
		r := mention(a.User)
		if reason := strings.TrimSpace(a.Reason); reason != "" {
			r += ": " + prose(reason, maxShortReason)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return "Rejected: deploy is blocked until a new build"
	}
	return "Rejected by " + strings.Join(rs, "; ") + " — deploy is blocked until a new build"
}

// needsMore is "Needs n more approval(s)" while the policy is not met.
func needsMore(v promote.BuildView) string {
	n := v.Project.RequiredApprovals - v.Approved()
	switch {
	case n <= 0:
		return ""
	case n == 1:
		return "Needs 1 more approval"
	}
	return fmt.Sprintf("Needs %d more approvals", n)
}

// onQA reports whether the build's QA environment is deployed and in use.
func onQA(s promote.State) bool {
	switch s {
	case promote.StateQAReady, promote.StateApproved, promote.StateRejected,
		promote.StatePromoting, promote.StatePromoteFailed:
		return true
	}
	return false
}

// productionRefs is "Pull request #n · Production commit abc1234".
func productionRefs(v promote.BuildView) string {
	return joinNonEmpty(" · ",
		labelled("Pull request", prRef(v.Build.PullRequest)),
		labelled("Production commit", commitRef(v.ProductionCommitURL, v.Build.ProductionCommit)))
}

// supersededBy names the newer build's image.
func supersededBy(v promote.BuildView) string {
	if v.SupersededByImage == "" {
		return "a newer build"
	}
	return code(v.SupersededByImage)
}

// supersededByPlain is supersededBy for the fallback text.
func supersededByPlain(v promote.BuildView) string {
	if v.SupersededByImage == "" {
		return "a newer build"
	}
	return plain(v.SupersededByImage, maxInline)
}

// openQAButton is the link button to the build's QA URL, or nil.
func openQAButton(b promote.Build) *slack.ButtonBlockElement {
	if !webURL(b.URL) {
		return nil
	}
	return slack.NewButtonBlockElement(ActionOpenQA, b.ID, pt("Open QA", maxButtonText)).WithURL(b.URL)
}

package promote

import (
	"fmt"
	"strings"
	"time"
)

// PRBody is the description of a build's promotion pull request, in
// GitHub's Markdown: the build, the QA verdicts with names and times, and
// the owner who asked. Text that came from CI is put in code spans, so it
// cannot format or mention anyone.
// diff, what the change does to the rendered manifests, goes in a collapsed
// section.
func PRBody(b Build, p Project, approved []Approval, promoter Person, diff string) string {
	var w strings.Builder
	fmt.Fprintf(&w, "Promotes **%s** to production, as asked in Slack by %s.\n\n", mdText(p.DisplayName()), who(promoter.Name, promoter.ID))
	w.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&w, "| Image | %s |\n", code(b.Image))
	fmt.Fprintf(&w, "| Source | %s %s", b.Kind, code(b.Target))
	if b.Commit != "" {
		fmt.Fprintf(&w, " @ %s", code(b.Commit))
	}
	w.WriteString(" |\n")
	if b.BuildURL != "" {
		fmt.Fprintf(&w, "| CI | %s |\n", code(b.BuildURL))
	}
	if b.Environment != "" {
		fmt.Fprintf(&w, "| Tested in | %s", code(b.Environment))
		if b.URL != "" {
			fmt.Fprintf(&w, " (%s)", code(b.URL))
		}
		w.WriteString(" |\n")
	}
	if b.QACommit != "" {
		fmt.Fprintf(&w, "| QA commit | %s |\n", code(b.QACommit))
	}
	fmt.Fprintf(&w, "| Build | %s |\n\n", code(b.ID))
	fmt.Fprintf(&w, "### QA (%d of %d required)\n\n", len(approved), p.RequiredApprovals)
	switch {
	case p.RequiredApprovals == 0 && len(approved) == 0:
		w.WriteString("No approval was required.\n")
	case len(approved) == 0:
		w.WriteString("No approval is recorded.\n")
	}
	for _, a := range approved {
		fmt.Fprintf(&w, "- approved by %s at %s\n", who(a.Name, a.User), a.At.UTC().Format(time.RFC3339))
	}
	if diff != "" {
		fence := "```"
		for strings.Contains(diff, fence) {
			fence += "`"
		}
		fmt.Fprintf(&w, "\n<details>\n<summary>Rendered production manifests, before → after</summary>\n\n%sdiff\n%s%s\n</details>\n", fence, diff, fence)
	}
	w.WriteString("\n<sub>Opened by promotebot. Merging it changes production; the merge commit records who approved and who promoted.</sub>\n")
	return w.String()
}

// who names a Slack user for GitHub: "Name (Slack U…)".
func who(name, id string) string {
	if name == "" {
		return "Slack user " + code(id)
	}
	return mdText(name) + " (Slack " + code(id) + ")"
}

// code puts text in a Markdown code span that no backtick in it can close.
func code(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	s = strings.NewReplacer("\n", " ", "|", "\\|").Replace(s) // a pipe would end a table cell
	return fence + " " + s + " " + fence
}

// mdText escapes the characters that format or mention in GitHub Markdown.
func mdText(s string) string {
	return strings.NewReplacer("\\", "\\\\", "*", "\\*", "_", "\\_", "`", "\\`", "[", "\\[", "]", "\\]",
		"<", "&lt;", ">", "&gt;", "@", "@\u200b", "#", "\\#", "|", "\\|", "\n", " ").Replace(s)
}

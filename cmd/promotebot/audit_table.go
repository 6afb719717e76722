package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/promotebot/promotebot/gitops/history"
)

// tableWidth is what the default audit table fits in: a terminal or a CI
// log shows 120 columns without wrapping; --wide and json have the rest.
const tableWidth = 120

// tableGap is the space between two columns.
const tableGap = 2

// auditColumn is a column of the changes table. A column with no room is
// never shortened (times and commit hashes are useless cut); the others
// give up width down to room first, then to their header's width.
type auditColumn struct {
	head string
	room int // the width a cell keeps while others are longer; 0: fixed
	// cut elides a cell to n runes: names keep their start, a source
	// its start and its commit.
	cut  func(s string, n int) string
	cell func(history.Change) string
}

// changeColumns are the table's columns: by default, the fields an auditor
// reads first, short; wide, every field in full and the CI link.
func changeColumns(verified, wide bool) []auditColumn {
	if wide {
		cols := []auditColumn{
			{head: "TIME", cell: func(c history.Change) string { return c.Time.Format(time.RFC3339) }},
			{head: "PROJECT", cell: func(c history.Change) string { return c.Project }},
			{head: "ENV", cell: func(c history.Change) string { return c.Environment }},
			{head: "IMAGE", cell: func(c history.Change) string { return shortImage(c.Image) }},
			{head: "SOURCE", cell: func(c history.Change) string { return sourceCell(c, true) }},
			{head: "CI", cell: func(c history.Change) string { _, link := splitSource(c.Source); return link }},
			{head: "APPROVED BY", cell: approvedBy},
			{head: "PROMOTED BY", cell: func(c history.Change) string { return promotedBy(c, true) }},
			{head: "PR", cell: func(c history.Change) string { return c.PR }},
			{head: "COMMIT", cell: func(c history.Change) string { return c.Commit[:min(12, len(c.Commit))] }},
		}
		if verified {
			cols = append(cols, auditColumn{head: "SIGNATURE", cell: func(c history.Change) string { return c.Signature }})
		}
		return cols
	}
	// The rooms add up to what 120 columns leave after the fixed columns
	// and the gaps. The QA environment's name repeats the target that
	// SOURCE shows, so it has little room; a source keeps its commit, an
	// approver list its count.
	cols := []auditColumn{
		{head: "TIME (UTC)", cell: func(c history.Change) string { return c.Time.Format("2006-01-02 15:04") }},
		{head: "PROJECT", room: 10, cut: elideEnd, cell: func(c history.Change) string { return c.Project }},
		{head: "ENV", room: 10, cut: elideEnd, cell: func(c history.Change) string { return c.Environment }},
		{head: "IMAGE", room: 10, cut: elideMiddle, cell: func(c history.Change) string { return imageVersion(c.Image) }},
		{head: "SOURCE", room: 24, cut: elideBefore(" @ "), cell: func(c history.Change) string { return sourceCell(c, false) }},
		{head: "APPROVED BY", room: 11, cut: elideBefore(" +"), cell: firstApprover},
		{head: "PROMOTED BY", room: 11, cut: elideEnd, cell: func(c history.Change) string { return promotedBy(c, false) }},
		{head: "PR", room: 5, cut: elideEnd, cell: func(c history.Change) string { return shortPR(c.PR) }},
		{head: "COMMIT", cell: func(c history.Change) string { return c.Commit[:min(7, len(c.Commit))] }},
	}
	if verified {
		cols = append(cols, auditColumn{head: "SIGNATURE", cell: func(c history.Change) string { return c.Signature }})
	}
	return cols
}

// writeChangesTable prints the changes as a table, newest first; unless
// wide, its lines fit tableWidth.
func writeChangesTable(w io.Writer, changes []history.Change, verified, wide bool) error {
	cols := changeColumns(verified, wide)
	rows := make([][]string, 0, len(changes)+1)
	head := make([]string, len(cols))
	for i, col := range cols {
		head[i] = col.head
	}
	rows = append(rows, head)
	for _, c := range changes {
		row := make([]string, len(cols))
		for i, col := range cols {
			row[i] = tableCell(col.cell(c))
		}
		rows = append(rows, row)
	}
	if !wide {
		fit(rows, cols, tableWidth)
	}
	tw := tabwriter.NewWriter(w, 0, 0, tableGap, ' ', 0)
	for _, row := range rows {
		if _, err := fmt.Fprintln(tw, strings.Join(row, "\t")); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// tableCell is v as a table shows it: "-" when empty, and never with a
// control character, which could break the table or reach the terminal
// (values come from commit messages, which anyone who can push writes).
func tableCell(v string) string {
	if v = cleanText(v); v == "" {
		return "-"
	}
	return v
}

// fit shortens the cells of rows (the first is the header) so that the
// table is at most width columns wide: first the column whose widest cell
// is furthest past its room gives up a column at a time, down to its room;
// if that is not enough, the widest column does, down to its header's width.
func fit(rows [][]string, cols []auditColumn, width int) {
	widths := make([]int, len(cols))
	for _, row := range rows {
		for i, v := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(v))
		}
	}
	total := tableGap * (len(cols) - 1)
	for _, w := range widths {
		total += w
	}
	floors := []func(auditColumn) int{
		func(col auditColumn) int { return col.room },
		func(col auditColumn) int { return utf8.RuneCountInString(col.head) },
	}
	for _, floor := range floors {
		for ; total > width; total-- {
			next := -1
			for i, col := range cols {
				if col.room == 0 || widths[i] <= max(floor(col), utf8.RuneCountInString(col.head)) {
					continue
				}
				if next < 0 || widths[i]-floor(col) > widths[next]-floor(cols[next]) {
					next = i
				}
			}
			if next < 0 {
				break // every column is down to this floor
			}
			widths[next]--
		}
	}
	for _, row := range rows[1:] {
		for i, v := range row {
			if utf8.RuneCountInString(v) > widths[i] {
				row[i] = cols[i].cut(v, widths[i])
			}
		}
	}
}

// elideEnd shortens s to n runes, ending with "…".
func elideEnd(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:max(n-1, 0)]) + "…"
}

// elideBefore returns a cut that keeps the part of s from the last sep on
// ("… @ 0123abc", "… +2") and shortens what comes before it, as far as n
// allows.
func elideBefore(sep string) func(s string, n int) string {
	return func(s string, n int) string {
		i := strings.LastIndex(s, sep)
		if i <= 0 {
			return elideEnd(s, n)
		}
		keep := utf8.RuneCountInString(s[i:])
		if keep+2 > n {
			return elideEnd(s, n)
		}
		return elideEnd(s[:i], n-keep) + s[i:]
	}
}

// elideMiddle shortens s to n runes by replacing its middle with "…".
func elideMiddle(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n < 2 {
		return elideEnd(s, n)
	}
	tail := (n - 1) / 2
	head := n - 1 - tail
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// splitSource splits a Promotebot-Source trailer, "branch feature/login @
// <commit> <CI URL>", into what was built and the CI link, when it ends
// with one.
func splitSource(source string) (built, link string) {
	i := strings.LastIndexByte(source, ' ')
	if i < 0 {
		return source, ""
	}
	last := source[i+1:]
	if strings.HasPrefix(last, "https://") || strings.HasPrefix(last, "http://") {
		return source[:i], last
	}
	return source, ""
}

// sourceCell is the SOURCE column: what was built, for a rollback
// "rollback of <build>", with its reason when wide, or for the teardown of
// a QA environment "teardown: <reason>".
func sourceCell(c history.Change, wide bool) string {
	switch {
	case c.Teardown != "":
		return "teardown: " + c.Teardown
	case c.RollbackOf != "" && wide && c.Reason != "":
		return "rollback of " + c.RollbackOf + ": " + c.Reason
	case c.RollbackOf != "":
		return "rollback of " + c.RollbackOf
	case wide:
		built, _ := splitSource(c.Source)
		return built
	}
	return shortSource(c.Source)
}

// shortSource is what was built without its kind (the environment or the
// image tells it), its CI link, or all of its commit hash:
// "feature/login @ 0123abc".
func shortSource(source string) string {
	built, _ := splitSource(source)
	ref, commit, hasCommit := strings.Cut(built, " @ ")
	if _, target, ok := strings.Cut(ref, " "); ok {
		ref = target
	}
	if !hasCommit {
		return ref
	}
	return ref + " @ " + commit[:min(7, len(commit))]
}

// shortPR is a pull request's number, "#12", for a GitHub URL
// (…/pull/12); anything else unchanged.
func shortPR(pr string) string {
	i := strings.LastIndex(pr, "/pull/")
	if i < 0 {
		return pr
	}
	return "#" + pr[i+len("/pull/"):]
}

// shortImage is the image's last path element with its tag, and the digest
// cut to 12 hex digits: "hello:1.4.0@sha256:0123456789ab".
func shortImage(ref string) string {
	name, digest, hasDigest := strings.Cut(ref, "@")
	name = name[strings.LastIndex(name, "/")+1:]
	if hasDigest {
		algo, hex, _ := strings.Cut(digest, ":")
		name += "@" + algo + ":" + hex[:min(12, len(hex))]
	}
	return name
}

// imageVersion is the image's tag, or its digest cut to 12 hex digits when
// it has none: the project names the repository.
func imageVersion(ref string) string {
	name, digest, hasDigest := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[i+1:]
	}
	if hasDigest {
		algo, hex, _ := strings.Cut(digest, ":")
		return "@" + algo + ":" + hex[:min(12, len(hex))]
	}
	return ""
}

// approvedBy names the approvers with the time of each approval.
func approvedBy(c history.Change) string {
	names := make([]string, len(c.Approvals))
	for i, a := range c.Approvals {
		names[i] = approverName(a) + " (" + a.At.Format("2006-01-02 15:04Z") + ")"
	}
	return strings.Join(names, ", ")
}

// firstApprover names the first approver and counts the others: "Ada +2".
func firstApprover(c history.Change) string {
	if len(c.Approvals) == 0 {
		return ""
	}
	if len(c.Approvals) == 1 {
		return approverName(c.Approvals[0])
	}
	return fmt.Sprintf("%s +%d", approverName(c.Approvals[0]), len(c.Approvals)-1)
}

func approverName(a history.ApprovedBy) string {
	if a.Name == "" {
		return a.SlackID
	}
	return a.Name
}

// promotedBy is who promoted the change, or for a change without trailers
// its git author, with the e-mail address when full.
func promotedBy(c history.Change, full bool) string {
	switch {
	case !c.Trailers && full:
		return "no trailers: " + c.Author
	case !c.Trailers:
		name, _, _ := strings.Cut(c.Author, " <")
		return "no trailers: " + name
	case c.PromotedBy.Name != "":
		return c.PromotedBy.Name
	}
	return c.PromotedBy.SlackID
}

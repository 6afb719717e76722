package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/promotebot/promotebot/gitops/history"
)

// checkDORA refuses what --dora does not take: the figures are
// production's, over one window, in a table or json.
func checkDORA(c *cli.Context, a *auditRun) error {
	for _, flag := range []string{"env", "check", "wide", "verify"} {
		if c.IsSet(flag) {
			return usageError("--dora takes no --%s: its figures are production's, from the trailers", flag)
		}
	}
	if a.format != "table" && a.format != "json" {
		return usageError("--dora --format %q: want table or json (--format html has the figures too)", a.format)
	}
	return nil
}

// readForDORA reads every change of the projects asked for, whatever the
// window: a rollback after it still marks a deploy in it as failed, and a
// build's QA commit may carry its times. The window runs to now when
// --until is not given.
func readForDORA(c *cli.Context, a *auditRun) ([]history.Change, history.Window, error) {
	all := a.opts
	all.Env, all.Since, all.Until = "", time.Time{}, time.Time{}
	changes, err := history.Read(c.Context, a.src, all)
	w := history.Window{Since: a.opts.Since, Until: a.opts.Until}
	if w.Until.IsZero() {
		w.Until = time.Now().UTC().Truncate(time.Second)
	}
	return changes, w, err
}

func runAuditDORA(c *cli.Context, d deps, a *auditRun) error {
	changes, w, err := readForDORA(c, a)
	if err != nil {
		return err
	}
	r := history.DORA(changes, w)
	if a.format == "json" {
		enc := json.NewEncoder(d.stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	}
	return writeDORATable(d.stdout, r, a.opts.Project)
}

// writeDORATable prints the figures for all projects, then each project's;
// with --project, that project's alone. Each figure says what it rests on.
func writeDORATable(w io.Writer, r history.DORAReport, project string) error {
	if r.Weeks == 0 {
		_, err := fmt.Fprintln(w, "DORA figures: no deploys to measure")
		return err
	}
	if _, err := fmt.Fprintf(w, "DORA figures from %s to %s UTC: %s (Monday to Sunday, UTC)\n",
		r.Since.Format("2006-01-02 15:04"), r.Until.Format("2006-01-02 15:04"), plural(r.Weeks, "calendar week")); err != nil {
		return err
	}
	blocks := append([]history.DORAFigures{r.Overall}, r.Projects...)
	if project != "" {
		blocks = []history.DORAFigures{r.Overall}
		blocks[0].Project = project
	}
	names := make([]string, len(blocks))
	lines := make([][][3]string, len(blocks))
	var width [2]int
	for i, f := range blocks {
		if names[i] = tableCell(f.Project); f.Project == "" {
			names[i] = "all projects"
		}
		lines[i] = doraLines(f)
		for _, l := range lines[i] {
			width[0], width[1] = max(width[0], utf8.RuneCountInString(l[0])), max(width[1], utf8.RuneCountInString(l[1]))
		}
	}
	var b strings.Builder
	for i, name := range names {
		fmt.Fprintf(&b, "\n%s\n", name)
		for _, l := range lines[i] {
			row := fmt.Sprintf("  %-*s   %-*s   %s", width[0], l[0], width[1], l[1], l[2])
			b.WriteString(strings.TrimRight(row, " ") + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// doraLines are a project's figures as the table and the HTML report show
// them: what, the figure, and what it rests on.
func doraLines(f history.DORAFigures) [][3]string {
	lt, cfr, ttr := f.LeadTime, f.ChangeFailureRate, f.TimeToRestore
	lines := [][3]string{
		{"deployment frequency", decimal(f.DeploysPerWeek) + " a week",
			fmt.Sprintf("%s: %s, %s", plural(f.Deploys, "deploy"), plural(f.Promotions, "promotion"), plural(f.Rollbacks, "rollback"))},
		{"lead time for changes", "-", plural(lt.Count, "promotion")},
		{"change failure rate", "-", fmt.Sprintf("%d of %s rolled back", cfr.Failed, plural(cfr.Promotions, "promotion"))},
		{"time to restore", "-", plural(ttr.Count, "failed promotion")},
	}
	if lt.Count > 0 {
		lines[1][1] = "median " + duration(*lt.MedianSeconds) + ", p90 " + duration(*lt.P90Seconds)
		lines[1][2] += fmt.Sprintf(" (%d from Built-At, %d from Received-At)", lt.FromBuilt, lt.FromReceived)
	}
	if lt.LeftOut > 0 {
		lines[1][2] += fmt.Sprintf("; %d left out: no Built-At or Received-At, or after the deploy", lt.LeftOut)
	}
	if cfr.Rate != nil {
		lines[2][1] = percent(*cfr.Rate)
	}
	if ttr.Count > 0 {
		lines[3][1] = "median " + duration(*ttr.MedianSeconds)
	}
	if ttr.LeftOut > 0 {
		lines[3][2] += fmt.Sprintf("; %d left out: the next deploy is dated before it", ttr.LeftOut)
	}
	if n := f.NotCounted; n.WithoutTrailers+n.Other > 0 {
		lines = append(lines, [3]string{"not counted", "",
			fmt.Sprintf("%s without the bot's trailers, %d with trailers but not a deploy",
				plural(n.WithoutTrailers, "production change"), n.Other)})
	}
	return lines
}

// duration is a number of seconds as a person reads it: "45s", "12m",
// "3h05m", "2d4h"; minutes and hours rounded.
func duration(seconds float64) string {
	d := time.Duration(math.Round(seconds)) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Round(time.Minute).Minutes()))
	case d < 48*time.Hour:
		m := int(d.Round(time.Minute).Minutes())
		if m%60 == 0 {
			return fmt.Sprintf("%dh", m/60)
		}
		return fmt.Sprintf("%dh%02dm", m/60, m%60)
	}
	h := int(d.Round(time.Hour).Hours())
	if h%24 == 0 {
		return fmt.Sprintf("%dd", h/24)
	}
	return fmt.Sprintf("%dd%dh", h/24, h%24)
}

// percent is a rate from 0 to 1 as a percentage with at most one decimal.
func percent(rate float64) string {
	return strconv.FormatFloat(math.Round(rate*1000)/10, 'f', -1, 64) + "%"
}

// decimal is x with at most two decimals.
func decimal(x float64) string {
	return strconv.FormatFloat(math.Round(x*100)/100, 'f', -1, 64)
}

// plural is "1 deploy", "2 deploys".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

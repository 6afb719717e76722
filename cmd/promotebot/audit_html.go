package main

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/history"
)

//go:embed audit_report.html
var reportHTML string

// reportTemplate is the HTML report: one page with no script, no style
// sheet, font or image to fetch, and a Content-Security-Policy that lets it
// load nothing, so that a value from a commit message can neither run nor
// call out. html/template escapes every value for where it lands.
var reportTemplate = template.Must(template.New("report").Parse(reportHTML))

// reportPage is what the template shows.
type reportPage struct {
	Repo, Branch string
	Filters      []string
	Window       string
	Figures      []reportFigures
	Charts       []reportChart
	Timeline     svgChart
	Rows         []reportRow
	Findings     []reportFinding
	Notes        []string
	Verified     bool
}

// reportFigures are the DORA figures of one project, or of all: doraLines
// without their names, which head the table's columns.
type reportFigures struct {
	Name       string
	Cells      [][3]string // the four figures
	NotCounted string
}

// newReportFigures lays f out for the figures table under name.
func newReportFigures(name string, f history.DORAFigures) reportFigures {
	lines := doraLines(f)
	rf := reportFigures{Name: name, Cells: lines[:4]}
	if len(lines) > 4 {
		rf.NotCounted = lines[4][2]
	}
	return rf
}

// reportChart is a DORA chart with its heading and figure.
type reportChart struct {
	Title, Figure, Basis string
	SVG                  svgChart
}

// reportRow is a row of the changes table.
type reportRow struct {
	ID, Class                                      string
	Time, Project, Env, Image, Source              string
	CILink, PR, PRLink, PRText, Commit, Short, Sig string
	Approvals                                      []string
	PromotedBy                                     string
	Findings                                       []history.Finding
	change                                         history.Change
}

// reportFinding is a finding with the row it is on.
type reportFinding struct {
	history.Finding
	Row string
}

// runAuditReport writes the HTML report: every change the filters keep,
// the DORA figures over --since/--until (from the first deploy to now by
// default) and --check's findings on their rows. With --check it also
// exits with status 1 when there is a finding.
func runAuditReport(c *cli.Context, d deps, a *auditRun) error {
	changes, w, err := readForDORA(c, a)
	if err != nil {
		return err
	}
	var listed []history.Change
	for _, ch := range changes {
		if a.opts.Matches(ch) {
			listed = append(listed, ch)
		}
	}
	opts, notes := a.checkOptions(changes)
	findings := history.Check(changes, opts)
	page := buildReport(a, listed, findings, history.DORA(changes, w))
	page.Notes = notes
	if err := reportTemplate.Execute(d.stdout, page); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if a.check && len(findings) > 0 {
		return cli.Exit(fmt.Sprintf("audit: %s", plural(len(findings), "finding")), 1)
	}
	return nil
}

// buildReport lays the page out.
func buildReport(a *auditRun, changes []history.Change, findings []history.Finding, r history.DORAReport) reportPage {
	p := reportPage{Repo: clone.RedactURL(a.src), Branch: a.opts.Branch, Verified: a.opts.KeyRing != ""}
	if p.Branch == "" {
		p.Branch = "main"
	}
	for _, f := range []struct{ name, value string }{{"project", a.opts.Project}, {"environment", a.opts.Env},
		{"since", stampOf(a.opts.Since)}, {"until", stampOf(a.opts.Until)}} {
		if f.value != "" {
			p.Filters = append(p.Filters, f.name+" "+f.value)
		}
	}
	byChange := map[string][]history.Finding{}
	for _, f := range findings {
		k := f.Commit + "\x00" + f.Project + "\x00" + f.Environment
		byChange[k] = append(byChange[k], f)
	}
	rowOf := map[string]string{}
	for i, c := range changes {
		row := newReportRow(c, i)
		k := c.Commit + "\x00" + c.Project + "\x00" + c.Environment
		row.Findings = byChange[k]
		if len(row.Findings) > 0 {
			row.Class += " finding"
			if _, ok := rowOf[k]; !ok {
				rowOf[k] = row.ID
			}
		}
		p.Rows = append(p.Rows, row)
	}
	for _, f := range findings {
		p.Findings = append(p.Findings, reportFinding{Finding: f, Row: rowOf[f.Commit+"\x00"+f.Project+"\x00"+f.Environment]})
	}
	if r.Weeks > 0 {
		p.Window = fmt.Sprintf("%s to %s UTC, %s", r.Since.Format("2006-01-02 15:04"), r.Until.Format("2006-01-02 15:04"),
			plural(r.Weeks, "calendar week"))
	}
	p.Figures = append(p.Figures, newReportFigures("all projects", r.Overall))
	if a.opts.Project == "" {
		for _, f := range r.Projects {
			p.Figures = append(p.Figures, newReportFigures(f.Project, f))
		}
	}
	p.Charts = doraCharts(r)
	p.Timeline = timeline(p.Rows, r)
	return p
}

// doraCharts are the four figures for all projects, each with its chart.
func doraCharts(r history.DORAReport) []reportChart {
	lines := doraLines(r.Overall)
	var promotions, failed []history.Deploy
	for _, d := range r.Deploys {
		if d.Kind == history.KindPromotion {
			promotions = append(promotions, d)
			if d.RolledBackBy != "" {
				failed = append(failed, d)
			}
		}
	}
	charts := []reportChart{
		{SVG: weeklyChart(r.Overall)},
		{SVG: durationChart("lead time per promotion", promotions, func(d history.Deploy) *float64 { return d.LeadTimeSeconds },
			r.Overall.LeadTime.MedianSeconds, func(history.Deploy) string { return "left out: no start time" })},
		{SVG: failureChart(r.Overall.ChangeFailureRate)},
		{SVG: durationChart("time to restore per failed promotion", failed,
			func(d history.Deploy) *float64 { return d.TimeToRestoreSeconds }, r.Overall.TimeToRestore.MedianSeconds,
			func(history.Deploy) string { return "left out: the next deploy is dated before it" })},
	}
	for i := range charts {
		charts[i].Title, charts[i].Figure, charts[i].Basis = lines[i][0], lines[i][1], lines[i][2]
	}
	return charts
}

// newReportRow is the i-th change as the table shows it.
func newReportRow(c history.Change, i int) reportRow {
	_, ci := splitSource(c.Source)
	row := reportRow{ID: fmt.Sprintf("row-%d", i+1), Time: c.Time.Format("2006-01-02 15:04"), Project: c.Project,
		Env: c.Environment, Image: c.Image, Source: sourceCell(c, true), CILink: httpLink(ci), PR: c.PR,
		PRLink: httpLink(c.PR), PRText: shortPR(c.PR), Commit: c.Commit, Short: c.Commit[:min(12, len(c.Commit))], Sig: c.Signature,
		PromotedBy: promotedBy(c, true), change: c}
	for _, a := range c.Approvals {
		row.Approvals = append(row.Approvals, approverName(a)+" "+a.At.Format("2006-01-02 15:04Z"))
	}
	switch {
	case c.Root:
		row.Class = "root"
	case !c.Trailers:
		row.Class = "untracked"
	case c.RollbackOf != "":
		row.Class = "rollback"
	case c.Teardown != "":
		row.Class = "teardown"
	case c.Environment == "production":
		row.Class = "production"
	default:
		row.Class = "qa"
	}
	return row
}

// httpLink is s when it is an absolute http(s) URL with a host, the only
// links the report makes; "" otherwise.
func httpLink(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(s, " \t\r\n") {
		return ""
	}
	return s
}

// stampOf is a filter's time in RFC 3339, "" for none.
func stampOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

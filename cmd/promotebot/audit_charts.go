package main

import (
	"fmt"
	"math"
	"time"

	"github.com/promotebot/promotebot/gitops/history"
	"github.com/promotebot/promotebot/gitops/trailer"
)

// svgChart is an SVG drawing of the HTML report, laid out here and drawn
// by the template's "chart": every value it holds is a number or text,
// escaped by html/template like the rest of the page.
type svgChart struct {
	Width, Height int
	Label         string // the drawing's accessible name
	Lines         []svgLine
	Bars          []svgBar
	Marks         []svgMark
	Texts         []svgText
}

type svgLine struct {
	X1, Y1, X2, Y2 float64
	Class          string
}

// svgBar is a rectangle with a tooltip.
type svgBar struct {
	X, Y, W, H   float64
	Class, Title string
}

// svgMark is a shape (an SVG path) with a tooltip, linking to a row of
// the changes table when Href is set ("#row-3").
type svgMark struct {
	D, Class, Title, Href string
}

type svgText struct {
	X, Y          float64
	Anchor, Class string
	Text          string
}

// Chart sizes, in CSS pixels.
const (
	chartWidth    = 300
	chartHeight   = 120
	chartBase     = 96 // the y of the bars' baseline; labels go below
	chartTop      = 16 // room above the tallest bar for its label
	chartLegend   = 64 // room at the right of a duration chart for the median's label
	timelineWidth = 1000
	timelineLabel = 130 // the project names' column
	timelineRow   = 30
)

// weeklyChart draws the deploys of each week as bars.
func weeklyChart(f history.DORAFigures) svgChart {
	c := svgChart{Width: chartWidth, Height: chartHeight, Label: "deploys per week"}
	c.Lines = append(c.Lines, svgLine{0, chartBase, chartWidth, chartBase, "axis"})
	n := len(f.Weekly)
	if n == 0 {
		return c
	}
	most := 1
	for _, w := range f.Weekly {
		most = max(most, w.Deploys)
	}
	slot := float64(chartWidth) / float64(n)
	for i, w := range f.Weekly {
		h := float64(w.Deploys) / float64(most) * (chartBase - chartTop)
		x := float64(i) * slot
		c.Bars = append(c.Bars, svgBar{X: x + slot*0.15, Y: chartBase - h, W: slot * 0.7, H: h, Class: "deploys",
			Title: fmt.Sprintf("week of %s: %s", w.Week.Format(time.DateOnly), plural(w.Deploys, "deploy"))})
		if slot >= 18 && w.Deploys > 0 {
			c.Texts = append(c.Texts, svgText{X: x + slot/2, Y: chartBase - h - 4, Anchor: "middle", Text: fmt.Sprint(w.Deploys)})
		}
	}
	c.Texts = append(c.Texts,
		svgText{X: 0, Y: chartBase + 16, Anchor: "start", Class: "small", Text: f.Weekly[0].Week.Format("Jan 2")},
		svgText{X: chartWidth, Y: chartBase + 16, Anchor: "end", Class: "small", Text: "week of " + f.Weekly[n-1].Week.Format("Jan 2")})
	return c
}

// durationChart draws one bar per deploy for the seconds value gives (nil:
// left out, drawn as a hollow mark on the baseline), oldest first, with
// the median as a dashed line.
func durationChart(label string, deploys []history.Deploy, value func(history.Deploy) *float64, median *float64,
	what func(history.Deploy) string) svgChart {
	c := svgChart{Width: chartWidth, Height: chartHeight, Label: label}
	c.Lines = append(c.Lines, svgLine{0, chartBase, chartWidth - chartLegend + 4, chartBase, "axis"})
	if len(deploys) == 0 {
		return c
	}
	most := 1.0
	for _, d := range deploys {
		if v := value(d); v != nil {
			most = math.Max(most, *v)
		}
	}
	slot := float64(chartWidth-chartLegend) / float64(len(deploys))
	// The shortest bars keep a sliver: a restore of minutes next to one of
	// days is still there.
	y := func(v float64) float64 { return math.Min(chartBase-v/most*(chartBase-chartTop), chartBase-1.5) }
	for i := range deploys {
		d := deploys[len(deploys)-1-i]
		x := float64(i) * slot
		v := value(d)
		if v == nil {
			c.Marks = append(c.Marks, svgMark{D: circle(x+slot/2, chartBase-4, 3), Class: "left-out",
				Title: fmt.Sprintf("%s %s: %s", d.Time.Format("2006-01-02 15:04"), d.Build, what(d))})
			continue
		}
		c.Bars = append(c.Bars, svgBar{X: x + slot*0.15, Y: y(*v), W: slot * 0.7, H: chartBase - y(*v), Class: "duration",
			Title: fmt.Sprintf("%s %s: %s", d.Time.Format("2006-01-02 15:04"), d.Build, duration(*v))})
	}
	if median != nil {
		c.Lines = append(c.Lines, svgLine{0, y(*median), chartWidth - chartLegend + 4, y(*median), "median"})
		c.Texts = append(c.Texts, svgText{X: chartWidth - chartLegend + 8, Y: y(*median) + 4, Anchor: "start", Class: "small",
			Text: "median " + duration(*median)})
	}
	c.Texts = append(c.Texts, svgText{X: 0, Y: chartBase + 16, Anchor: "start", Class: "small", Text: "oldest"},
		svgText{X: chartWidth - chartLegend, Y: chartBase + 16, Anchor: "end", Class: "small", Text: "newest"})
	return c
}

// failureChart draws the change failure rate as one bar split in two.
func failureChart(f history.FailureRate) svgChart {
	c := svgChart{Width: chartWidth, Height: 48, Label: "change failure rate"}
	if f.Promotions == 0 {
		return c
	}
	failed := float64(f.Failed) / float64(f.Promotions) * chartWidth
	c.Bars = []svgBar{
		{X: failed, Y: 8, W: chartWidth - failed, H: 18, Class: "ok", Title: plural(f.Promotions-f.Failed, "promotion") + " not rolled back"},
		{X: 0, Y: 8, W: failed, H: 18, Class: "failed", Title: plural(f.Failed, "promotion") + " rolled back"},
	}
	c.Texts = []svgText{{X: 0, Y: 42, Anchor: "start", Class: "small",
		Text: fmt.Sprintf("%d of %s rolled back", f.Failed, plural(f.Promotions, "promotion"))}}
	return c
}

// timeline draws the production changes of rows in the window, one line
// per project, each change a mark that links to its row: a circle for a
// promotion (filled orange when it was rolled back later), a triangle for
// a rollback, a square for a change that is not a deploy; a red ring for
// one with findings.
func timeline(rows []reportRow, r history.DORAReport) svgChart {
	var projects []string
	seen := map[string]bool{}
	for _, f := range r.Projects {
		projects, seen[f.Project] = append(projects, f.Project), true
	}
	in := func(row reportRow) bool {
		c := row.change
		return c.Environment == trailer.Production && !c.Root && !c.Time.Before(r.Since) && !c.Time.After(r.Until)
	}
	for _, row := range rows {
		if in(row) && !seen[row.change.Project] {
			projects, seen[row.change.Project] = append(projects, row.change.Project), true
		}
	}
	c := svgChart{Width: timelineWidth, Height: 36 + timelineRow*max(len(projects), 1), Label: "production changes by project"}
	span := r.Until.Sub(r.Since).Seconds()
	x := func(t time.Time) float64 {
		if span <= 0 {
			return timelineLabel + 10
		}
		return timelineLabel + 10 + t.Sub(r.Since).Seconds()/span*(timelineWidth-timelineLabel-20)
	}
	bottom := float64(c.Height - 24)
	weeks := []time.Time{}
	for i := range r.Overall.Weekly {
		if w := r.Overall.Weekly[i].Week; !w.Before(r.Since) {
			weeks = append(weeks, w)
		}
	}
	step := max(1, (len(weeks)+9)/10) // ten labels at most
	for i, w := range weeks {
		c.Lines = append(c.Lines, svgLine{x(w), 4, x(w), bottom, "grid"})
		if i%step == 0 {
			c.Texts = append(c.Texts, svgText{X: x(w), Y: bottom + 16, Anchor: "middle", Class: "small", Text: w.Format("Jan 2")})
		}
	}
	row := map[string]float64{}
	for i, p := range projects {
		y := 20 + float64(i)*timelineRow
		row[p] = y
		c.Lines = append(c.Lines, svgLine{timelineLabel, y, timelineWidth - 10, y, "lane"})
		c.Texts = append(c.Texts, svgText{X: timelineLabel - 8, Y: y + 4, Anchor: "end", Text: p})
	}
	deploys := map[string]history.Deploy{}
	for _, d := range r.Deploys {
		deploys[d.Commit+"\x00"+d.Project] = d
	}
	for i := len(rows) - 1; i >= 0; i-- {
		if in(rows[i]) {
			c.Marks = append(c.Marks, timelineMark(rows[i], deploys, x(rows[i].change.Time), row[rows[i].change.Project]))
		}
	}
	return c
}

// timelineMark is a production change's mark on the timeline.
func timelineMark(r reportRow, deploys map[string]history.Deploy, x, y float64) svgMark {
	c := r.change
	m := svgMark{Href: "#" + r.ID, D: square(x, y, 5), Class: "other",
		Title: c.Time.Format("2006-01-02 15:04") + " " + c.Project + ": " + promotedBy(c, false)}
	if d, ok := deploys[c.Commit+"\x00"+c.Project]; ok {
		switch {
		case d.Kind == history.KindRollback:
			m.D, m.Class = triangle(x, y, 7), "rollback"
			m.Title += ", rollback of " + d.Build
		case d.RolledBackBy != "":
			m.D, m.Class = circle(x, y, 6), "failed"
			m.Title += ", " + d.Build + " (rolled back)"
		default:
			m.D, m.Class = circle(x, y, 6), "promotion"
			m.Title += ", " + d.Build
		}
	}
	if len(r.Findings) > 0 {
		m.Class += " has-findings"
		m.Title += " — " + plural(len(r.Findings), "finding")
	}
	return m
}

func circle(x, y, r float64) string {
	return fmt.Sprintf("M%.1f %.1fa%.1f %.1f 0 1 0 %.1f 0a%.1f %.1f 0 1 0 %.1f 0Z", x-r, y, r, r, 2*r, r, r, -2*r)
}

func square(x, y, r float64) string {
	return fmt.Sprintf("M%.1f %.1fh%.1fv%.1fh%.1fZ", x-r, y-r, 2*r, 2*r, -2*r)
}

func triangle(x, y, r float64) string {
	return fmt.Sprintf("M%.1f %.1fL%.1f %.1fL%.1f %.1fZ", x-r, y-r*0.8, x+r, y-r*0.8, x, y+r*0.9)
}

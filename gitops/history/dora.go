package history

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/promotebot/promotebot/gitops/trailer"
)

// The kinds of Deploy.
const (
	KindPromotion = "promotion"
	KindRollback  = "rollback"
)

// Lead-time starts: where a promotion's lead time was measured from.
const (
	StartBuilt    = "built"    // the build's Promotebot-Built-At
	StartReceived = "received" // its Promotebot-Received-At
)

// week is a calendar week; weeks start on Monday, 00:00 UTC.
const week = 7 * 24 * time.Hour

// Window is the time span DORA measures, both ends included.
type Window struct {
	// Since, when zero, is the first deploy's time; Until, when zero, the
	// last deploy's.
	Since, Until time.Time
}

// Deploy is one production deploy: a promotion (a production change with
// the bot's trailers and Promotebot-Build) or a rollback that set the
// production image (Promotebot-Rollback-Of, Change.RollbackPinned). The
// JSON names are the audit command's output contract.
type Deploy struct {
	// Commit and Time are the production commit (for a pull request, the
	// merge on the branch) and its committer time, in UTC.
	Commit  string    `json:"commit"`
	Time    time.Time `json:"time"`
	Project string    `json:"project"`
	// Kind is "promotion" or "rollback".
	Kind string `json:"kind"`
	// Build is a promotion's build, or the build a rollback replaced.
	Build string `json:"build"`
	Image string `json:"image"`
	PR    string `json:"pr"`
	// Start is where a promotion's lead time starts (see LeadTime), and
	// StartFrom which trailer gave it: "built", "received", or "" when
	// the lead time is left out.
	Start     *time.Time `json:"start"`
	StartFrom string     `json:"startFrom"`
	// LeadTimeSeconds is Time - Start; null when left out.
	LeadTimeSeconds *float64 `json:"leadTimeSeconds"`
	// RolledBackBy, for a failed promotion, is the rollback that named
	// its build; RestoredBy the first deploy of the project after it (the
	// rollback, or a deploy that replaced it first), and
	// TimeToRestoreSeconds the time between the two commits.
	RolledBackBy         string   `json:"rolledBackBy"`
	RestoredBy           string   `json:"restoredBy"`
	TimeToRestoreSeconds *float64 `json:"timeToRestoreSeconds"`
}

// DORAReport is the four DORA figures over a window, for all the projects
// read and for each, with the deploys they rest on.
type DORAReport struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Weeks is how many calendar weeks (Monday to Sunday, UTC) the window
	// touches, partial ones at either end included; 0 for an empty window.
	Weeks   int         `json:"weeks"`
	Overall DORAFigures `json:"overall"`
	// Projects has the figures of each project with a production change
	// in the window, by id.
	Projects []DORAFigures `json:"projects"`
	// Deploys are the deploys in the window, newest first.
	Deploys []Deploy `json:"deploys"`
}

// DORAFigures are the DORA figures of one project, or of all ("" project).
type DORAFigures struct {
	Project string `json:"project"`
	// Deploys counts promotions and rollbacks.
	Deploys    int `json:"deploys"`
	Promotions int `json:"promotions"`
	Rollbacks  int `json:"rollbacks"`
	// DeploysPerWeek is Deploys / DORAReport.Weeks.
	DeploysPerWeek float64 `json:"deploysPerWeek"`
	// Weekly counts the deploys of each week of the window, oldest first.
	Weekly            []WeekCount `json:"weekly"`
	LeadTime          LeadTime    `json:"leadTime"`
	ChangeFailureRate FailureRate `json:"changeFailureRate"`
	TimeToRestore     Restore     `json:"timeToRestore"`
	NotCounted        NotCounted  `json:"notCounted"`
}

// WeekCount is the number of deploys of the week starting Week.
type WeekCount struct {
	Week    time.Time `json:"week"`
	Deploys int       `json:"deploys"`
}

// LeadTime is the lead time for changes: for each promotion, from its
// build's Promotebot-Built-At (else its Promotebot-Received-At) to its
// production commit.
type LeadTime struct {
	// Count is how many promotions the figures rest on: FromBuilt of them
	// started at Built-At, FromReceived at Received-At.
	Count        int `json:"count"`
	FromBuilt    int `json:"fromBuilt"`
	FromReceived int `json:"fromReceived"`
	// LeftOut counts the promotions without either time, or with one after
	// the production commit.
	LeftOut int `json:"leftOut"`
	// MedianSeconds and P90Seconds are null when Count is 0.
	MedianSeconds *float64 `json:"medianSeconds"`
	P90Seconds    *float64 `json:"p90Seconds"`
}

// FailureRate is the change failure rate: the promotions followed by a
// rollback of their build, of all promotions.
type FailureRate struct {
	Failed     int `json:"failed"`
	Promotions int `json:"promotions"`
	// Rate is Failed / Promotions, from 0 to 1; null without promotions.
	Rate *float64 `json:"rate"`
}

// Restore is the time to restore: for each failed promotion, from its
// production commit to the first deploy of the project after it.
type Restore struct {
	// Count is how many failed promotions the median rests on; LeftOut
	// those whose next deploy's commit is dated before them.
	Count         int      `json:"count"`
	LeftOut       int      `json:"leftOut"`
	MedianSeconds *float64 `json:"medianSeconds"`
}

// NotCounted are the production changes in the window that are not
// deploys.
type NotCounted struct {
	// WithoutTrailers are the changes without the bot's production
	// trailers for the project (a person's edit, an evil merge).
	WithoutTrailers int `json:"withoutTrailers"`
	// Other have them but are neither a promotion nor a rollback that set
	// the production image: a rollback that changed more (rollbackPinned
	// false), trailers without Promotebot-Build.
	Other int `json:"other"`
}

// DORA computes the DORA figures of changes (Read's, newest first,
// unfiltered by time or environment: a rollback after the window still
// marks a promotion in it as failed, and a build's QA commits may carry
// its times) over the window w.
func DORA(changes []Change, w Window) DORAReport {
	all := deploysOf(changes)
	if len(all) > 0 {
		first, last := all[0].Time, all[0].Time
		for _, d := range all {
			first, last = minTime(first, d.Time), maxTime(last, d.Time)
		}
		if w.Since.IsZero() {
			w.Since = first
		}
		if w.Until.IsZero() {
			w.Until = last
		}
	}
	r := DORAReport{Since: w.Since.UTC(), Until: w.Until.UTC(), Weeks: weeksOf(w), Deploys: []Deploy{}}
	in := func(t time.Time) bool { return !t.Before(w.Since) && !t.After(w.Until) }
	var figures []*DORAFigures
	byProject := map[string]*DORAFigures{}
	figuresOf := func(project string) *DORAFigures {
		f := byProject[project]
		if f == nil {
			f = &DORAFigures{Project: project}
			byProject[project] = f
			figures = append(figures, f)
		}
		return f
	}
	for _, c := range changes {
		if c.Environment != trailer.Production || c.Root || !in(c.Time) {
			continue
		}
		if kind := deployKind(c); kind == "" {
			f := figuresOf(c.Project)
			if c.Trailers {
				f.NotCounted.Other++
			} else {
				f.NotCounted.WithoutTrailers++
			}
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		if d := all[i]; in(d.Time) {
			r.Deploys = append(r.Deploys, d)
			figuresOf(d.Project)
		}
	}
	r.Overall = figuresFor("", r.Deploys, w, r.Weeks)
	for _, f := range figures {
		r.Overall.NotCounted.WithoutTrailers += f.NotCounted.WithoutTrailers
		r.Overall.NotCounted.Other += f.NotCounted.Other
	}
	slices.SortFunc(figures, func(a, b *DORAFigures) int { return strings.Compare(a.Project, b.Project) })
	r.Projects = make([]DORAFigures, 0, len(figures))
	for _, f := range figures {
		var mine []Deploy
		for _, d := range r.Deploys {
			if d.Project == f.Project {
				mine = append(mine, d)
			}
		}
		pf := figuresFor(f.Project, mine, w, r.Weeks)
		pf.NotCounted = f.NotCounted
		r.Projects = append(r.Projects, pf)
	}
	return r
}

// deployKind tells whether a production change is a deploy, and which:
// "" when it is not one.
func deployKind(c Change) string {
	switch {
	case !c.Trailers || c.Root || c.Environment != trailer.Production || c.Teardown != "":
		return ""
	case c.RollbackOf != "" && c.RollbackPinned:
		return KindRollback
	case c.RollbackOf == "" && c.Build != "":
		return KindPromotion
	}
	return ""
}

// deploysOf returns every deploy of the history, oldest first, with its
// lead time, and for the failed promotions their rollback and restore.
func deploysOf(changes []Change) []Deploy {
	starts := buildStarts(changes)
	var out []Deploy
	last := map[string]int{} // project + build → index in out of its latest promotion
	for i := len(changes) - 1; i >= 0; i-- {
		c := changes[i]
		kind := deployKind(c)
		if kind == "" {
			continue
		}
		d := Deploy{Commit: c.Commit, Time: c.Time, Project: c.Project, Kind: kind, Build: c.Build, Image: c.Image, PR: c.PR}
		if kind == KindRollback {
			d.Build = c.RollbackOf
			if j, ok := last[c.Project+"\x00"+c.RollbackOf]; ok && out[j].RolledBackBy == "" {
				out[j].RolledBackBy = c.Commit
			}
		} else {
			d.leadTime(starts, c)
			last[c.Project+"\x00"+c.Build] = len(out)
		}
		out = append(out, d)
	}
	// The first deploy of the project after a failed one restored it.
	for j := range out {
		if out[j].RolledBackBy == "" {
			continue
		}
		for k := j + 1; k < len(out); k++ {
			if out[k].Project == out[j].Project {
				out[j].RestoredBy = out[k].Commit
				if d := out[k].Time.Sub(out[j].Time); d >= 0 {
					out[j].TimeToRestoreSeconds = seconds(d)
				}
				break
			}
		}
	}
	return out
}

// buildStart is where the lead time of a build starts.
type buildStart struct {
	at   time.Time
	from string
}

// buildStarts finds each build's start in the changes: its Built-At, else
// its Received-At, from its oldest commit that has one (its QA deployment,
// usually), by project and build.
func buildStarts(changes []Change) map[string]buildStart {
	starts := map[string]buildStart{}
	for i := len(changes) - 1; i >= 0; i-- {
		c := changes[i]
		if !c.Trailers || c.Build == "" {
			continue
		}
		s, ok := startOf(c)
		if !ok {
			continue
		}
		key := c.Project + "\x00" + c.Build
		if old, known := starts[key]; !known || old.from == StartReceived && s.from == StartBuilt {
			starts[key] = s
		}
	}
	return starts
}

// startOf is a commit's own start: its Built-At, else its Received-At.
func startOf(c Change) (buildStart, bool) {
	switch {
	case c.BuiltAt != nil:
		return buildStart{*c.BuiltAt, StartBuilt}, true
	case c.ReceivedAt != nil:
		return buildStart{*c.ReceivedAt, StartReceived}, true
	}
	return buildStart{}, false
}

// leadTime sets a promotion's start and lead time: its own commit's start
// first, else its build's.
func (d *Deploy) leadTime(starts map[string]buildStart, c Change) {
	s, ok := startOf(c)
	if other, known := starts[c.Project+"\x00"+c.Build]; known && (!ok || s.from == StartReceived && other.from == StartBuilt) {
		s, ok = other, true
	}
	if !ok || s.at.After(c.Time) {
		return
	}
	at := s.at
	d.Start, d.StartFrom, d.LeadTimeSeconds = &at, s.from, seconds(c.Time.Sub(s.at))
}

// figuresFor computes the figures of deploys (newest first) over w.
func figuresFor(project string, deploys []Deploy, w Window, weeks int) DORAFigures {
	f := DORAFigures{Project: project, Weekly: []WeekCount{}}
	for start := weekStart(w.Since); weeks > 0 && !start.After(w.Until); start = start.Add(week) {
		f.Weekly = append(f.Weekly, WeekCount{Week: start})
	}
	var leads, restores []float64
	for _, d := range deploys {
		f.Deploys++
		if n := int(d.Time.Sub(weekStart(w.Since)) / week); n >= 0 && n < len(f.Weekly) {
			f.Weekly[n].Deploys++
		}
		if d.Kind == KindRollback {
			f.Rollbacks++
			continue
		}
		f.Promotions++
		switch d.StartFrom {
		case StartBuilt:
			f.LeadTime.FromBuilt++
		case StartReceived:
			f.LeadTime.FromReceived++
		default:
			f.LeadTime.LeftOut++
		}
		if d.LeadTimeSeconds != nil {
			leads = append(leads, *d.LeadTimeSeconds)
		}
		if d.RolledBackBy == "" {
			continue
		}
		f.ChangeFailureRate.Failed++
		if d.TimeToRestoreSeconds != nil {
			restores = append(restores, *d.TimeToRestoreSeconds)
		} else {
			f.TimeToRestore.LeftOut++
		}
	}
	if weeks > 0 {
		f.DeploysPerWeek = float64(f.Deploys) / float64(weeks)
	}
	f.LeadTime.Count = len(leads)
	f.LeadTime.MedianSeconds, f.LeadTime.P90Seconds = median(leads), percentile(leads, 90)
	f.ChangeFailureRate.Promotions = f.Promotions
	if f.Promotions > 0 {
		rate := float64(f.ChangeFailureRate.Failed) / float64(f.Promotions)
		f.ChangeFailureRate.Rate = &rate
	}
	f.TimeToRestore.Count = len(restores)
	f.TimeToRestore.MedianSeconds = median(restores)
	return f
}

// weekStart is the Monday, 00:00 UTC, that starts t's week.
func weekStart(t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
}

// weeksOf counts the calendar weeks the window touches.
func weeksOf(w Window) int {
	if w.Since.IsZero() || w.Until.Before(w.Since) {
		return 0
	}
	return int(weekStart(w.Until).Sub(weekStart(w.Since))/week) + 1
}

// median is the middle value of xs, the mean of the two middle ones for an
// even count; nil for none.
func median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Sorted(slices.Values(xs))
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + m) / 2
	}
	return &m
}

// percentile is the nearest-rank p-th percentile of xs: the smallest value
// that at least p% of them do not exceed; nil for none.
func percentile(xs []float64, p float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Sorted(slices.Values(xs))
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	v := s[max(rank, 1)-1]
	return &v
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func seconds(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

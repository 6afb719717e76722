package slackui

import (
	"strings"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// What Argo CD or Flux said of a failing rollout comes from the cluster and
// can hold anything, of any length: it is cut to these many characters.
const (
	maxRolloutMessage       = 300 // in a message about the build
	maxStatusRolloutMessage = 100 // on an environment's line of /promote status
)

// rolloutReport is what a message tells of a build's rollout in one
// environment.
type rolloutReport struct {
	// line is the status, one mrkdwn line under the headline; "" when
	// there is nothing to tell or the alerts tell it.
	line string
	// alerts need attention (a failing rollout, no healthy signal): mrkdwn
	// lines shown in a section of their own.
	alerts []string
	// plain are the alerts for the fallback text.
	plain []string
}

func (r *rolloutReport) alert(line, plainText string) {
	r.alerts = append(r.alerts, line)
	r.plain = append(r.plain, plainText)
}

// qaRollout tells of the build's QA rollout, once its QA overlay is
// committed, for the channel and the owners.
func qaRollout(v promote.BuildView) rolloutReport {
	var rep rolloutReport
	if !showsQARollout(v.Build) {
		return rep
	}
	if !v.Feedback {
		rep.line = "QA: committed; no cluster feedback configured"
		return rep
	}
	r := v.Build.Rollout.QA
	switch rolloutStatus(r) {
	case promote.RolloutSynced:
		rep.line = ":hourglass_flowing_sand: QA: " + synced(r) + ", waiting for it to be healthy"
	case promote.RolloutHealthy:
		rep.line = ":large_green_circle: Live in QA (" + synced(r) + ", healthy)"
	case promote.RolloutDegraded:
		rep.qaFailing(r)
	default:
		rep.line = ":hourglass_flowing_sand: QA: committed, waiting for Argo CD/Flux"
	}
	if timedOut(r) {
		s := "no healthy signal from Argo CD/Flux " + after(v.RolloutTimeout)
		rep.alert(":warning: QA: "+s, "QA: "+s)
	}
	return rep
}

// qaFailing adds the alert of a failing QA rollout, with the controller's
// message: the channel, owners and QA see the same one.
func (r *rolloutReport) qaFailing(ro *promote.Rollout) {
	r.alert(":warning: *QA rollout failing:* "+controllerMessage(ro.Message, maxRolloutMessage),
		"QA rollout failing: "+controllerMessagePlain(ro.Message))
}

// qaWarnings is what a QA member must know before testing: that the QA
// rollout fails, or that nothing reported it healthy in time and the
// environment may still serve the previous version.
func qaWarnings(v promote.BuildView) rolloutReport {
	var rep rolloutReport
	if !showsQARollout(v.Build) || !v.Feedback {
		return rep
	}
	r := v.Build.Rollout.QA
	if rolloutStatus(r) == promote.RolloutDegraded {
		rep.qaFailing(r)
	}
	if timedOut(r) {
		s := "The QA environment was not reported healthy " + after(v.RolloutTimeout) +
			": it may still serve the previous version"
		rep.alert(":warning: "+s, s)
	}
	return rep
}

// productionRollout tells of the build's production rollout, once its
// promotion is committed.
func productionRollout(v promote.BuildView) rolloutReport {
	var rep rolloutReport
	if v.Build.State != promote.StatePromoted {
		return rep
	}
	if !v.Feedback {
		rep.line = "Production: committed; no cluster feedback configured"
		return rep
	}
	r := v.Build.Rollout.Production
	switch rolloutStatus(r) {
	case promote.RolloutSynced:
		rep.line = ":hourglass_flowing_sand: Production: rolling out (" + synced(r) + ", waiting for it to be healthy)"
	case promote.RolloutHealthy:
		rep.line = ":large_green_circle: Live in production (" + synced(r) + ", healthy)"
	case promote.RolloutDegraded:
		rep.alert(":rotating_light: *Production degraded:* "+controllerMessage(r.Message, maxRolloutMessage),
			"Production degraded: "+controllerMessagePlain(r.Message))
	default:
		rep.line = ":hourglass_flowing_sand: Production: rolling out (committed, waiting for Argo CD/Flux)"
	}
	if timedOut(r) {
		s := "No healthy signal from production " + after(v.RolloutTimeout)
		rep.alert(":warning: "+s, s)
	}
	return rep
}

// rolloutWord is a rollout in a word or two, for /promote status.
func rolloutWord(r *promote.Rollout, feedback bool, timeout time.Duration) string {
	if !feedback {
		return "no feedback"
	}
	switch rolloutStatus(r) {
	case promote.RolloutHealthy:
		return ":large_green_circle: live"
	case promote.RolloutDegraded:
		return ":warning: failing: " + controllerMessage(r.Message, maxStatusRolloutMessage)
	}
	if timedOut(r) {
		return ":warning: no healthy signal " + after(timeout)
	}
	return ":hourglass_flowing_sand: rolling out"
}

// showsQARollout reports whether messages tell of the build's QA rollout:
// once its QA overlay is committed, until it is in production (or was) or
// gone.
func showsQARollout(b promote.Build) bool {
	if b.QACommit == "" {
		return false
	}
	switch b.State {
	case promote.StatePromoted, promote.StateRolledBack, promote.StateClosed, promote.StateSuperseded:
		return false
	}
	return true
}

// rolloutStatus is r's status; no record yet is pending.
func rolloutStatus(r *promote.Rollout) promote.RolloutStatus {
	if r == nil {
		return promote.RolloutPending
	}
	return r.Status
}

// timedOut reports whether r went past rollout.timeout and is still not
// healthy.
func timedOut(r *promote.Rollout) bool {
	return r != nil && r.TimedOut && r.Status != promote.RolloutHealthy
}

// synced is "synced `abc1234`", the revision a controller applied.
func synced(r *promote.Rollout) string {
	if r == nil || r.Revision == "" {
		return "synced"
	}
	return "synced " + code(shortSHA(r.Revision))
}

// controllerMessage shows what a controller said, as inline code so that
// it reads as typed: it can neither mention, link nor format.
func controllerMessage(s string, n int) string {
	s = squash(s)
	if s == "" {
		return "_no reason given_"
	}
	return codeSpan(s, n)
}

// controllerMessagePlain is controllerMessage for the fallback text.
func controllerMessagePlain(s string) string {
	s = squash(s)
	if s == "" {
		return "no reason given"
	}
	return plain(s, maxRolloutMessage)
}

// squash puts s on one line with single spaces: a controller's message
// often spans lines.
func squash(s string) string {
	return strings.Join(strings.Fields(oneLine(s)), " ")
}

// after is "after 10m", or "in time" when the timeout is unknown.
func after(d time.Duration) string {
	if d <= 0 {
		return "in time"
	}
	s := d.Round(time.Second).String() // "10m0s", "1h0m0s", "1m30s"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return "after " + s
}

// promotedAt is when the build's promotion was committed: the start of its
// production rollout when recorded, since a later report may change
// UpdatedAt.
func promotedAt(b promote.Build) time.Time {
	if r := b.Rollout.Production; r != nil && !r.Since.IsZero() {
		return r.Since
	}
	return b.UpdatedAt
}

// lineAfter is "\n"+line, or "" without a line.
func lineAfter(line string) string {
	if line == "" {
		return ""
	}
	return "\n" + line
}

// withAlerts appends the reports' alerts to a fallback text.
func withAlerts(text string, reports ...rolloutReport) string {
	for _, r := range reports {
		for _, p := range r.plain {
			text += ". " + p
		}
	}
	return text
}

// alerts adds the report's alerts as a section of their own, if any.
func (d *draft) alerts(r rolloutReport) {
	if len(r.alerts) > 0 {
		d.section(strings.Join(r.alerts, "\n"))
	}
}

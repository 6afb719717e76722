package history

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/gitops/trailer"
)

// Rules that Check applies: malformed-trailer and the signature rules
// to every change, the others to production changes.
const (
	RuleNotByBot         = "not-by-bot"        // production changed without the bot's trailers for it, or no Promotebot-Build
	RuleWrongTrailers    = "wrong-trailers"    // production changed by a commit whose trailers say QA or another project
	RuleTooFewApprovals  = "too-few-approvals" // fewer distinct Approved-by than required
	RulePromoterApproved = "promoter-approved" // the promoter is among the approvers
	RuleAuthorApproved   = "author-approved"   // an approver is the build's author (Promotebot-Author)
	RuleNeverInQA        = "never-in-qa"       // no earlier qa/* commit of the project pinned the image in its QA overlay
	RuleNoPromoter       = "no-promoter"       // no readable Promoted-by
	RuleMalformedTrailer = "malformed-trailer" // a trailer that could not be read
	RuleUnsigned         = "unsigned"          // no signature (with a key ring)
	RuleBadSignature     = "bad-signature"     // a signature the key ring does not verify

	// RuleRollbackUnknownImage: a rollback (Promotebot-Rollback-Of) to an
	// image no earlier production change pinned, or one that changed more
	// than the production overlay's image entry.
	RuleRollbackUnknownImage = "rollback-to-unknown-image"
	// RuleTeardownBeyondFolder: a teardown (Promotebot-Teardown) that did
	// not only remove the one QA folder its trailers name (any
	// environment; one that also changed production is reported with
	// not-by-bot for that change as well).
	RuleTeardownBeyondFolder = "teardown-beyond-folder"
)

// Finding is one broken rule.
type Finding struct {
	Commit      string    `json:"commit"`
	Time        time.Time `json:"time"`
	Project     string    `json:"project"`
	Environment string    `json:"environment"`
	Rule        string    `json:"rule"`
	Detail      string    `json:"detail"`
}

// CheckOptions sets the rules of Check.
type CheckOptions struct {
	// RequiredApprovals gives a project's required approvals by id, from
	// the configuration; nil when there is none. A production change needs
	// the stricter of this and what its commit recorded
	// (Promotebot-Required-Approvals): a commit cannot lower its own bar.
	RequiredApprovals map[string]int
	// DefaultApprovals stands for the configuration of a project missing
	// from RequiredApprovals, and for the policy of a commit that recorded
	// none when there is no configuration (0 is taken as 1).
	DefaultApprovals int
	// Only, when set, picks the changes that are checked; all of them
	// still serve as history (an earlier QA deployment of an image).
	Only func(Change) bool
}

// Check checks changes (Read's, newest first, unfiltered by
// time or environment so that earlier QA deployments are known) and returns
// the findings, newest first. Production changes are checked against every
// rule (a rollback, which needs no approvals, against the promoter and
// rollback rules); every change, whatever its environment, against the
// trailer and teardown rules and, when it was verified, the signature
// rules. The
// repository's first commit is where its history starts and is not
// checked; what production ran from it on counts all the same.
func Check(changes []Change, o CheckOptions) []Finding {
	if o.DefaultApprovals <= 0 {
		o.DefaultApprovals = 1
	}
	inQA := map[string]bool{}   // project + "\x00" + image, and + digest
	inProd := map[string]bool{} // the same, of the images production ran
	var findings []Finding
	for i := len(changes) - 1; i >= 0; i-- {
		c := changes[i]
		if strings.HasPrefix(c.Environment, "qa/") && c.Image != "" && c.QAPinned {
			for _, k := range imageKeys(c.Project, c.Image) {
				inQA[k] = true
			}
		}
		var found []Finding
		if !c.Root && (o.Only == nil || o.Only(c)) {
			found = signatureFindings(c)
			for _, m := range c.Malformed {
				found = append(found, Finding{Rule: RuleMalformedTrailer, Detail: strconv.Quote(m)})
			}
			if c.Teardown != "" && !c.TeardownRemoved {
				found = append(found, Finding{Rule: RuleTeardownBeyondFolder, Detail: fmt.Sprintf("a teardown (%s) "+
					"that does not only remove the folder of %s of %s: it changed more, or removed nothing",
					c.Teardown, c.Environment, c.Project)})
			}
			if c.Environment == trailer.Production {
				found = append(found, productionFindings(c, o, inQA, inProd)...)
			}
		}
		// Only once it was judged does a change count as history.
		for _, image := range ranInProduction(c) {
			for _, k := range imageKeys(c.Project, image) {
				inProd[k] = true
			}
		}
		for j := len(found) - 1; j >= 0; j-- {
			f := found[j]
			f.Commit, f.Time, f.Project, f.Environment = c.Commit, c.Time, c.Project, c.Environment
			findings = append(findings, f)
		}
	}
	slices.Reverse(findings)
	return findings
}

func signatureFindings(c Change) []Finding {
	switch {
	case c.Signature == "none":
		return []Finding{{Rule: RuleUnsigned, Detail: "the commit is not signed"}}
	case c.Signature == "bad":
		return []Finding{{Rule: RuleBadSignature, Detail: "the signature does not verify with the key ring"}}
	}
	return nil
}

func productionFindings(c Change, o CheckOptions, inQA, inProd map[string]bool) []Finding {
	var f []Finding
	add := func(rule, format string, args ...any) {
		f = append(f, Finding{Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}
	if !c.Trailers {
		return changeFindings(c)
	}
	if c.RollbackOf != "" {
		return rollbackFindings(c, inProd)
	}
	if c.Teardown != "" {
		// The bot tears down QA environments, never production.
		return []Finding{{Rule: RuleNotByBot, Detail: fmt.Sprintf("promotebot's teardown trailers (%s) on production, "+
			"committed by %s", c.Teardown, c.Committer)}}
	}
	if !c.BotMade {
		add(RuleNotByBot, "promotebot's trailers without Promotebot-Build, committed by %s", c.Committer)
	}
	required := o.required(c)
	approvers := map[string]bool{}
	for _, a := range c.Approvals {
		approvers[a.SlackID] = true
	}
	if len(approvers) < required {
		add(RuleTooFewApprovals, "%d approval(s), %d required", len(approvers), required)
	}
	if c.PromotedBy.SlackID == "" && c.PromotedBy.Name != "" {
		add(RuleNoPromoter, "Promoted-by names no Slack user: %s", c.PromotedBy.Name)
	} else if c.PromotedBy.SlackID == "" {
		add(RuleNoPromoter, "no Promoted-by trailer")
	} else if approvers[c.PromotedBy.SlackID] {
		add(RulePromoterApproved, "%s approved the build and promoted it", c.PromotedBy)
	}
	for _, a := range c.Approvals {
		if authorIs(c.BuildAuthor, a) {
			add(RuleAuthorApproved, "%s approved a build they wrote (%s)", SlackUser{Name: a.Name, SlackID: a.SlackID}, c.BuildAuthor)
		}
	}
	if c.Image != "" && !slices.ContainsFunc(imageKeys(c.Project, c.Image), func(k string) bool { return inQA[k] }) {
		add(RuleNeverInQA, "%s never ran in a QA environment of %s before", c.Image, c.Project)
	}
	return f
}

// rollbackFindings judges a rollback: it needs no approvals, but it must
// put back an image production ran before (an earlier production change
// pinned it), and do nothing else (Change.RollbackPinned), whatever else
// its message says.
func rollbackFindings(c Change, inProd map[string]bool) []Finding {
	var f []Finding
	if c.PromotedBy.Name == "" && c.PromotedBy.SlackID == "" {
		f = append(f, Finding{Rule: RuleNoPromoter, Detail: "no Promoted-by trailer"})
	}
	switch {
	case !c.RollbackPinned:
		f = append(f, Finding{Rule: RuleRollbackUnknownImage, Detail: fmt.Sprintf("a rollback of %s that does not only set "+
			"the production image of %s to %s: it changed more, or pins another image", c.RollbackOf, c.Project, c.Image)})
	case !slices.ContainsFunc(imageKeys(c.Project, normalized(c.Image)), func(k string) bool { return inProd[k] }):
		f = append(f, Finding{Rule: RuleRollbackUnknownImage, Detail: fmt.Sprintf("a rollback of %s to %s, "+
			"which no earlier production change of %s pinned", c.RollbackOf, c.Image, c.Project)})
	}
	return f
}

// ranInProduction lists the images production ran from change c on: a
// production change's Image (a rollback's when it did only that), or what
// the production overlay pins after a change without trailers.
func ranInProduction(c Change) []string {
	switch {
	case c.Environment != trailer.Production:
		return nil
	case !c.Trailers:
		return c.pins
	case c.Image != "" && (c.RollbackOf == "" || c.RollbackPinned):
		return []string{normalized(c.Image)}
	}
	return nil
}

// normalized is an image reference as the bot writes it, so that two
// spellings of one image compare equal; as it is when it does not parse.
func normalized(image string) string {
	if n, err := overlay.NormalizeImage(image); err == nil {
		return n
	}
	return image
}

// changeFindings judges a production change that no trailers cover.
func changeFindings(c Change) []Finding {
	paths := strings.Join(c.Paths, ", ")
	detail := fmt.Sprintf("%s changed by %s without promotebot's trailers", paths, c.Author)
	if c.BeyondMerged != "" {
		detail = fmt.Sprintf("%s changed by a merge committed by %s beyond the branch it merged (%s), "+
			"whose promotebot trailers cover only what that branch brought", paths, c.Committer, c.BeyondMerged)
	}
	f := []Finding{{Rule: RuleNotByBot, Detail: detail}}
	if c.Claims != "" {
		f = append(f, Finding{Rule: RuleWrongTrailers,
			Detail: fmt.Sprintf("production of %s changed (%s), but the trailers say %s", c.Project, paths, c.Claims)})
	}
	return f
}

// required returns the approvals a production change needs: the stricter of
// what its commit recorded and the configuration.
func (o CheckOptions) required(c Change) int {
	configured, ok := o.RequiredApprovals[c.Project]
	if !ok && o.RequiredApprovals != nil {
		configured, ok = o.DefaultApprovals, true
	}
	switch {
	case ok && c.RequiredApprovals >= 0:
		return max(configured, c.RequiredApprovals)
	case ok:
		return configured
	case c.RequiredApprovals >= 0:
		return c.RequiredApprovals
	}
	return o.DefaultApprovals
}

// imageKeys are the keys under which an image counts as having run in QA:
// the reference as written, and repository plus digest when it has one, so
// that "repo:1.4@sha256:x" and "repo@sha256:x" are the same image.
func imageKeys(project, image string) []string {
	keys := []string{project + "\x00" + image}
	if name, digest, ok := strings.Cut(image, "@"); ok {
		repo := name
		if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
			repo = name[:i]
		}
		keys = append(keys, project+"\x00"+repo+"@"+digest)
	}
	return keys
}

// authorIs tells whether a build's author, as CI reported it (a Slack id, a
// name, or git's "Name <email>"), is the approver, by Slack id or name. An
// author given only as an e-mail cannot be matched from trailers: the bot
// refused such self-approvals when they were made, with Slack's profile.
func authorIs(author string, a ApprovedBy) bool {
	author = strings.TrimSpace(author)
	if author == "" {
		return false
	}
	parts := []string{author}
	if name, _, ok := strings.Cut(author, "<"); ok {
		parts = append(parts, strings.TrimSpace(name))
	}
	for _, p := range parts {
		for _, c := range []string{a.SlackID, a.Name} {
			if p != "" && c != "" && strings.EqualFold(p, c) {
				return true
			}
		}
	}
	return false
}

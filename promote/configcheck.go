package promote

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
)

var (
	projectIDRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	slackIDRe    = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)
	dnsLabelRe   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	dnsNameRe    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`)
	ghRepoRe     = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	branchRe     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/-]*$`)
	lowerIDChars = regexp.MustCompile(`^[a-z0-9-]*$`)
)

// checker collects problems, each placed on the line of its field.
type checker struct {
	idx      *nodeIndex
	problems []Problem
}

func (c *checker) add(field, format string, args ...any) {
	c.problems = append(c.problems, Problem{Line: c.idx.line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// validate checks a decoded configuration with defaults applied. It
// normalizes each project's image name in place.
func validate(cfg *Config, idx *nodeIndex) []Problem {
	c := &checker{idx: idx}
	c.checkServer(cfg)
	c.checkGitOps(cfg.GitOps)
	c.checkGitHub(cfg.GitHub)
	c.httpURL("slack.apiURL", cfg.Slack.APIURL)
	c.checkFeedback(cfg)
	for i, h := range cfg.CI.AllowedHosts {
		if !dnsNameRe.MatchString(strings.TrimPrefix(h, "*.")) {
			c.add(fmt.Sprintf("ci.allowedHosts[%d]", i), "%q must be a lower-case host name, or *. and one", h)
		}
	}
	if len(cfg.Projects) == 0 {
		c.add("projects", "at least one project is required")
	}
	for i := range cfg.Projects {
		c.checkProject(i, &cfg.Projects[i])
	}
	c.checkUnique(cfg.Projects)
	return c.problems
}

// checkFeedback checks the rollout and argocd keys.
func (c *checker) checkFeedback(cfg *Config) {
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"rollout.timeout", cfg.Rollout.Timeout},
		{"rollout.degradedFor", cfg.Rollout.DegradedFor},
		{"argocd.pollInterval", cfg.ArgoCD.PollInterval},
	} {
		if d.v < time.Second {
			c.add(d.field, "must be a duration of a second or more, such as 30s or 10m")
		}
	}
	if cfg.ArgoCD.APIURL != "" {
		c.httpURL("argocd.apiURL", cfg.ArgoCD.APIURL)
	}
}

func (c *checker) checkServer(cfg *Config) {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil || strings.ContainsAny(host, " /") || !validPort(port, 0) {
		c.add("listen", "%q must be host:port, such as 127.0.0.1:8080 or :8080", cfg.Listen)
	}
	db := cfg.Database
	// The value is not echoed: a database URL may carry a password.
	if db != "" && !strings.HasPrefix(db, "postgres://") && !strings.HasPrefix(db, "postgresql://") {
		c.add("database", "must be empty (embedded SQLite in dataDir) or a postgres:// or postgresql:// URL")
	}
}

func (c *checker) checkGitOps(g GitOpsConfig) {
	switch {
	case g.Repo == "":
		c.add("gitops.repo", "required")
	case strings.Contains(g.Repo, "://"):
		// The value is not echoed: the URL may carry credentials.
		u, err := url.Parse(g.Repo)
		switch {
		case err != nil:
			c.add("gitops.repo", "is not a valid URL")
		case !slices.Contains([]string{"https", "http", "ssh", "git", "file"}, u.Scheme):
			c.add("gitops.repo", "scheme %q is not one of https, http, ssh, git, file", u.Scheme)
		case u.User != nil && hasPassword(u.User):
			c.add("gitops.repo", "must not contain a password; set PROMOTEBOT_GIT_PASSWORD instead")
		}
	}
	b := g.Branch
	if !branchRe.MatchString(b) || strings.Contains(b, "..") || strings.Contains(b, "//") ||
		strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".") || strings.HasSuffix(b, ".lock") {
		c.add("gitops.branch", "%q is not a valid branch name", b)
	}
	if a, err := mail.ParseAddress(g.AuthorEmail); err != nil || a.Address != g.AuthorEmail {
		c.add("gitops.authorEmail", "%q is not an e-mail address", g.AuthorEmail)
	}
}

func hasPassword(u *url.Userinfo) bool {
	_, set := u.Password()
	return set
}

func (c *checker) checkGitHub(g GitHubConfig) {
	if g.Repository == "" {
		if n := c.idx.value("github"); n != nil && len(n.Content) > 0 {
			c.add("github.repository", "required when the github section is present (remove the section for direct mode)")
		}
	} else if !ghRepoRe.MatchString(g.Repository) {
		c.add("github.repository", "%q must be owner/name", g.Repository)
	}
	c.httpURL("github.apiURL", g.APIURL)
	if !slices.Contains([]MergeMethod{MergeMethodMerge, MergeMethodSquash, MergeMethodRebase}, g.MergeMethod) {
		c.add("github.mergeMethod", "%q must be merge, squash or rebase", g.MergeMethod)
	}
	app := g.AppID != 0 || g.InstallationID != 0 || g.PrivateKeyFile != ""
	switch {
	case !app:
	case g.AppID <= 0:
		c.add("github.appID", "must be the GitHub App's id (a positive number) when installationID or privateKeyFile is set")
	case g.InstallationID <= 0:
		c.add("github.installationID", "must be the App installation's id (a positive number) when appID is set")
	case g.PrivateKeyFile == "":
		c.add("github.privateKeyFile", "required when appID is set: the App's private key (PEM)")
	}
}

// httpURL checks that s is an absolute http(s) URL with a host and without
// credentials, and returns it parsed, or nil after adding a problem.
func (c *checker) httpURL(field, s string) *url.URL {
	u, err := url.Parse(s)
	switch {
	case s == "":
		c.add(field, "required")
	case err != nil:
		c.add(field, "is not a valid URL")
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		c.add(field, "%q must be an absolute http:// or https:// URL", u.Redacted())
	case u.User != nil:
		c.add(field, "must not contain credentials")
	default:
		return u
	}
	return nil
}

func (c *checker) checkProject(i int, p *Project) {
	f := func(key string) string { return fmt.Sprintf("projects[%d].%s", i, key) }
	if err := CheckProjectID(p.ID); err != nil {
		c.add(f("id"), "%s", err)
	}
	if u := c.httpURL(f("url"), p.URL); u != nil {
		c.checkProductionURL(f("url"), u)
	}
	if p.Channel == "" {
		c.add(f("channel"), "required")
	}
	c.slackIDs(f("qa"), p.QA)
	c.slackIDs(f("owners"), p.Owners)
	if len(p.Owners) == 0 {
		c.add(f("owners"), "at least one owner is required")
	}
	c.checkApprovals(f("requiredApprovals"), p)
	c.checkImage(f("image"), p)
	if msg := pathProblem(p.Path); msg != "" {
		c.add(f("path"), "%s", msg)
	}
	if p.SourceRepository != "" && !ghRepoRe.MatchString(p.SourceRepository) {
		c.add(f("sourceRepository"), "%q must be owner/name", p.SourceRepository)
	}
	if p.QATTL != 0 && p.QATTL < time.Minute {
		c.add(f("qaTTL"), "must be a duration of a minute or more, such as 72h (or left out: environments do not expire)")
	}
	if p.MaxQAEnvironments < 0 {
		c.add(f("maxQAEnvironments"), "must be 0 (no limit) or more")
	}
	if p.Service != "" {
		name, port, ok := strings.Cut(p.Service, ":")
		if !ok || !dnsLabelRe.MatchString(name) || !validPort(port, 1) {
			c.add(f("service"), "%q must be name:port, a DNS-1123 label and a port 1-65535", p.Service)
		}
	}
}

// CheckProjectID tells why id cannot name a project, or returns nil: an id
// is 1–40 of [a-z0-9-], a letter or digit at both ends, so that it is a DNS
// label with room for the QA namespace "<id>-<env>".
func CheckProjectID(id string) error {
	switch {
	case projectIDRe.MatchString(id):
		return nil
	case id == "":
		return errors.New("required")
	case !lowerIDChars.MatchString(id):
		return fmt.Errorf("%q must be lower-case letters, digits and \"-\"", id)
	case len(id) > 40:
		return fmt.Errorf("%q is longer than 40 characters", id)
	}
	return fmt.Errorf("%q must start and end with a letter or digit", id)
}

// checkProductionURL checks what QA hosts are derived from: QA hosts are
// <slug>.<kind>.<host>, so the URL must be a bare DNS host.
func (c *checker) checkProductionURL(field string, u *url.URL) {
	switch {
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		c.add(field, "%q must have no path, query or fragment", u.String())
	default:
		if _, err := netip.ParseAddr(u.Hostname()); err == nil {
			c.add(field, "host %q must be a DNS name: QA hosts are <env>.<kind>.<host>", u.Hostname())
		}
	}
}

func (c *checker) slackIDs(field string, ids []string) {
	seen := map[string]int{}
	for j, id := range ids {
		entry := fmt.Sprintf("%s[%d]", field, j)
		if first, dup := seen[id]; dup {
			c.add(entry, "%q is listed twice (also %s[%d])", id, field, first)
			continue
		}
		seen[id] = j
		if !slackIDRe.MatchString(id) {
			c.add(entry, "%q is not a Slack user id (U…, W…) or user-group id (S…)", id)
		}
	}
}

func (c *checker) checkApprovals(field string, p *Project) {
	if p.RequiredApprovals < 0 {
		c.add(field, "%d must be 0 or more", p.RequiredApprovals)
		return
	}
	for _, id := range p.QA {
		if strings.HasPrefix(id, "S") {
			return // a user group may hold any number of people
		}
	}
	if p.RequiredApprovals > len(p.QA) {
		c.add(field, "%d required, but qa lists %d users; add QA users or lower requiredApprovals (0 is allowed)",
			p.RequiredApprovals, len(p.QA))
	}
}

func (c *checker) checkImage(field string, p *Project) {
	if p.Image == "" {
		c.add(field, "required")
		return
	}
	name, err := NormalizeImageName(p.Image)
	if err != nil {
		c.add(field, "%v", err)
		return
	}
	p.Image = name
}

// NormalizeImageName returns the normalized repository of an image name
// without tag or digest ("docker.io/library/nginx" for "nginx"): the form
// builds' images are compared with.
func NormalizeImageName(name string) (string, error) {
	named, err := reference.ParseNormalizedNamed(name)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not an image repository: %v", name, err)
	case !reference.IsNameOnly(named):
		return "", fmt.Errorf("%q must be a repository without tag or digest (the build supplies those)", name)
	}
	return named.Name(), nil
}

func pathProblem(p string) string {
	switch {
	case p == "":
		return "required"
	case strings.Contains(p, `\`):
		return fmt.Sprintf("%q must use / as separator", p)
	case path.IsAbs(p):
		return fmt.Sprintf("%q must be relative to the repository root", p)
	case slices.Contains(strings.Split(p, "/"), ".."):
		return fmt.Sprintf("%q must not contain ..", p)
	case path.Clean(p) != p:
		return fmt.Sprintf("%q must be clean (%q)", p, path.Clean(p))
	}
	return ""
}

// checkUnique reports ids used twice and paths that are the same or nested.
// Each problem names the later project and points back at the earlier one.
// The folders a path nests with are found by lookup (its parents) and in a
// sorted list (what lies below it), not by comparing every pair: 5,000
// projects took 50 ms that way.
func (c *checker) checkUnique(projects []Project) {
	ids := map[string]int{}
	valid := make([]bool, len(projects))
	byPath := map[string][]int{} // valid path → its projects, ascending
	var sorted []pathAt          // valid paths, sorted
	for i, p := range projects {
		if valid[i] = pathProblem(p.Path) == ""; valid[i] {
			byPath[p.Path] = append(byPath[p.Path], i)
			sorted = append(sorted, pathAt{p.Path, i})
		}
	}
	slices.SortFunc(sorted, func(a, b pathAt) int { return strings.Compare(a.path, b.path) })
	for i, p := range projects {
		if first, dup := ids[p.ID]; dup {
			c.add(fmt.Sprintf("projects[%d].id", i), "%q is already the id of projects[%d] (line %d)",
				p.ID, first, c.idx.line(fmt.Sprintf("projects[%d].id", first)))
		} else if p.ID != "" {
			ids[p.ID] = i
		}
		if !valid[i] {
			continue
		}
		for _, j := range nestedBefore(p.Path, i, byPath, sorted) {
			q := projects[j].Path
			earlier := fmt.Sprintf("projects[%d].path", j)
			if p.Path == q {
				c.add(fmt.Sprintf("projects[%d].path", i), "%q is also %s (line %d)", p.Path, earlier, c.idx.line(earlier))
			} else {
				c.add(fmt.Sprintf("projects[%d].path", i), "%q and %s %q (line %d) nest; project folders must be disjoint",
					p.Path, earlier, q, c.idx.line(earlier))
			}
		}
	}
}

type pathAt struct {
	path string
	i    int
}

// nestedBefore returns, ascending, the projects before i whose path is p,
// a folder above p or a folder below p.
func nestedBefore(p string, i int, byPath map[string][]int, sorted []pathAt) []int {
	var js []int
	before := func(j int) {
		if j < i {
			js = append(js, j)
		}
	}
	for dir := p; ; dir = path.Dir(dir) { // p itself, then its parents up to "."
		for _, j := range byPath[dir] {
			before(j)
		}
		if dir == "." || path.Dir(dir) == dir {
			break
		}
	}
	below := p + "/"
	if p == "." {
		below = ""
	}
	k, _ := slices.BinarySearchFunc(sorted, below, func(e pathAt, t string) int { return strings.Compare(e.path, t) })
	for ; k < len(sorted) && strings.HasPrefix(sorted[k].path, below); k++ {
		if sorted[k].path != p {
			before(sorted[k].i)
		}
	}
	slices.Sort(js)
	return js
}

func validPort(s string, lowest int) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= lowest && n <= 65535 && strconv.Itoa(n) == s
}

package promote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults applied by ParseConfig to keys that are absent or empty.
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultDataDir           = "./data"
	DefaultBranch            = "main"
	DefaultAuthorName        = "promotebot"
	DefaultAuthorEmail       = "promotebot@localhost"
	DefaultGitHubAPIURL      = "https://api.github.com/"
	DefaultSlackAPIURL       = "https://slack.com/api/"
	DefaultRequiredApprovals = 1
	DefaultMaxQAEnvironments = 20
	DefaultRolloutTimeout    = 10 * time.Minute
	DefaultDegradedFor       = 5 * time.Minute
	DefaultArgoCDPoll        = 30 * time.Second
)

// MergeMethod is how a promotion pull request is merged on GitHub.
type MergeMethod string

// The merge methods GitHub accepts.
const (
	MergeMethodMerge  MergeMethod = "merge"
	MergeMethodSquash MergeMethod = "squash"
	MergeMethodRebase MergeMethod = "rebase"
)

// Config is promotebot's configuration, loaded and validated once at start-up.
// Its YAML keys are part of the product's contract (see README.md).
type Config struct {
	// Listen is the HTTP server's host:port.
	Listen string `yaml:"listen"`
	// DataDir holds the embedded store and the config repository clone.
	DataDir string `yaml:"dataDir"`
	// Database is empty for the embedded SQLite store in DataDir, or a
	// postgres:// URL when several replicas share one store.
	Database string `yaml:"database"`
	// GitOps describes the config repository the bot writes to.
	GitOps GitOpsConfig `yaml:"gitops"`
	// GitHub enables pull-request promotion; see GitHubConfig.Enabled.
	GitHub GitHubConfig `yaml:"github"`
	// Slack points the bot at Slack's Web API.
	Slack SlackConfig `yaml:"slack"`
	// CI limits what CI may link to from a build.
	CI CIConfig `yaml:"ci"`
	// Rollout says how the bot waits on what Argo CD or Flux report.
	Rollout RolloutConfig `yaml:"rollout"`
	// ArgoCD, when APIURL is set, makes the bot ask Argo CD's API about
	// pending rollouts (for setups whose Argo CD cannot send webhooks).
	ArgoCD ArgoCDConfig `yaml:"argocd"`
	// Projects are the services the bot may deploy, each with its own
	// channel, people and image.
	Projects []Project `yaml:"projects"`
}

// GitOpsConfig describes the config repository and how the bot commits to it.
type GitOpsConfig struct {
	// Repo is the remote: an https, ssh, file:// URL or a local path.
	Repo string `yaml:"repo"`
	// Branch is the branch the overlays live on.
	Branch string `yaml:"branch"`
	// AuthorName and AuthorEmail sign the bot's commits as author.
	AuthorName  string `yaml:"authorName"`
	AuthorEmail string `yaml:"authorEmail"`
	// SigningKeyFile is an optional armored OpenPGP private key that signs
	// commits; its passphrase is Secrets.GitSigningPassphrase.
	SigningKeyFile string `yaml:"signingKeyFile"`
	// SSHKeyFile is an optional private key for ssh remotes; its passphrase is
	// Secrets.GitSSHPassphrase.
	SSHKeyFile string `yaml:"sshKeyFile"`
	// KnownHostsFile is an optional known_hosts file for ssh remotes.
	KnownHostsFile string `yaml:"knownHostsFile"`
}

// GitHubConfig describes the GitHub repository that promotion pull requests
// are opened on. Without a Repository the bot runs in direct mode.
type GitHubConfig struct {
	// Repository is "owner/name" of the config repository on GitHub.
	Repository string `yaml:"repository"`
	// APIURL is the REST API root, ending in "/".
	APIURL string `yaml:"apiURL"`
	// MergeMethod is how promotion pull requests are merged.
	MergeMethod MergeMethod `yaml:"mergeMethod"`
	// AppID, InstallationID and PrivateKeyFile authenticate as a GitHub App
	// (all three, or none for a token).
	AppID          int64  `yaml:"appID"`
	InstallationID int64  `yaml:"installationID"`
	PrivateKeyFile string `yaml:"privateKeyFile"`
}

// App reports whether the bot authenticates to GitHub as an App.
func (g GitHubConfig) App() bool { return g.AppID != 0 }

// Enabled reports whether promotion goes through GitHub pull requests; when it
// is false the bot commits to the config branch directly.
func (g GitHubConfig) Enabled() bool {
	return g.Repository != ""
}

// CIConfig limits what CI may link to from a build.
type CIConfig struct {
	// AllowedHosts, when not empty, are the only hosts a build's buildURL
	// (and commit, when it is a link) may point at: "ci.example.com", or
	// "*.example.com" for its subdomains.
	AllowedHosts []string `yaml:"allowedHosts"`
}

// AllowsHost tells whether a link to host may be shown: always when no
// AllowedHosts are set.
func (c CIConfig) AllowsHost(host string) bool {
	if len(c.AllowedHosts) == 0 {
		return true
	}
	host = strings.ToLower(host)
	for _, h := range c.AllowedHosts {
		if h == host || strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) {
			return true
		}
	}
	return false
}

// RolloutConfig says how the bot waits on cluster feedback.
type RolloutConfig struct {
	// WaitForHealthy asks QA and owners about a build only once its QA
	// environment is reported healthy (or Timeout passed).
	WaitForHealthy bool `yaml:"waitForHealthy"`
	// Timeout is how long a rollout may go without a healthy signal before
	// the channel and owners are told (default 10m).
	Timeout time.Duration `yaml:"timeout"`
	// DegradedFor is how long production must stay degraded before
	// projects[].autoRollback acts (default 5m).
	DegradedFor time.Duration `yaml:"degradedFor"`
}

// ArgoCDConfig points the bot at Argo CD's REST API; the token is
// Secrets.ArgoCDToken.
type ArgoCDConfig struct {
	// APIURL is Argo CD's server URL ("https://argocd.example.com"); empty
	// turns polling off.
	APIURL string `yaml:"apiURL"`
	// PollInterval is how often pending rollouts are looked up (default 30s;
	// failures back off up to 5m).
	PollInterval time.Duration `yaml:"pollInterval"`
}

// SlackConfig points the bot at Slack's Web API.
type SlackConfig struct {
	// APIURL is the Web API root, ending in "/".
	APIURL string `yaml:"apiURL"`
}

// Project is one deployable service.
type Project struct {
	// ID names the project in the webhook, in git and in paths.
	ID string `yaml:"id"`
	// Name is shown to people; it defaults to ID.
	Name string `yaml:"name"`
	// URL is the production URL; QA hosts are derived from its host.
	URL string `yaml:"url"`
	// Channel is the Slack channel id that build announcements go to.
	Channel string `yaml:"channel"`
	// QA are the Slack user or user-group ids asked to approve builds.
	QA []string `yaml:"qa"`
	// Owners are the Slack user or user-group ids who may deploy or close.
	Owners []string `yaml:"owners"`
	// Image is the only image repository this project may deploy, normalized
	// (docker.io/library/nginx for "nginx").
	Image string `yaml:"image"`
	// Path is the project's folder in the config repository.
	Path string `yaml:"path"`
	// RequiredApprovals is how many QA approvals production needs.
	RequiredApprovals int `yaml:"requiredApprovals"`
	// Service is "name:port" of the Kubernetes Service QA traffic goes to;
	// empty means it is discovered from the base.
	Service string `yaml:"service"`
	// AllowSelfApproval lets the author of a build (as CI reported it)
	// approve it; by default they cannot.
	AllowSelfApproval bool `yaml:"allowSelfApproval"`
	// AllowUnicodeTargets accepts branch and tag names with characters
	// outside ASCII; by default they are refused, since letters of other
	// scripts can pass for ASCII ones. Invisible characters are refused
	// either way.
	AllowUnicodeTargets bool `yaml:"allowUnicodeTargets"`
	// SourceRepository is "owner/name" of the project's source repository
	// on GitHub: its branch and tag deletions tear QA environments down,
	// and builds show there as deployments (Service.Deployments).
	SourceRepository string `yaml:"sourceRepository"`
	// QATTL, when set, tears down a QA environment idle that long (no new
	// build, no click, no Keep); owners and QA are warned first.
	QATTL time.Duration `yaml:"qaTTL"`
	// MaxQAEnvironments bounds the project's live QA environments (default
	// 20; 0 means no limit): a build for a new target past it is refused.
	MaxQAEnvironments int `yaml:"maxQAEnvironments"`
	// AutoRollback rolls production back to the image before by itself
	// when cluster feedback reports it degraded for rollout.degradedFor.
	AutoRollback bool `yaml:"autoRollback"`
}

// DisplayName is the name shown to people: Name, or else ID.
func (p Project) DisplayName() string {
	if p.Name != "" {
		return p.Name
	}
	return p.ID
}

// Host returns the production URL's host name, lower-cased, without a port.
func (p Project) Host() string {
	u, err := url.Parse(p.URL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// Project returns the project with the given id.
func (c *Config) Project(id string) (Project, bool) {
	for _, p := range c.Projects {
		if p.ID == id {
			return p, true
		}
	}
	return Project{}, false
}

// LoadConfig reads, parses and validates the configuration file at path. It
// also checks that the key files the configuration names exist. A
// configuration that is not valid yields a *ConfigError listing every problem.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, idx, err := parseConfig(path, data)
	if err != nil {
		return nil, err
	}
	if problems := checkFiles(cfg, idx); len(problems) > 0 {
		return nil, newConfigError(path, problems)
	}
	return cfg, nil
}

// ParseConfig parses and validates a configuration; name is used in error
// messages only. Unknown keys are errors. A configuration that is not valid
// yields a *ConfigError listing every problem with its line.
func ParseConfig(name string, data []byte) (*Config, error) {
	cfg, _, err := parseConfig(name, data)
	return cfg, err
}

// parseConfig is ParseConfig that also returns the document's node index, so
// that later checks can name lines.
func parseConfig(name string, data []byte) (*Config, *nodeIndex, error) {
	idx, problems := parseTree(data)
	if len(problems) > 0 {
		return nil, nil, newConfigError(name, problems)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&cfg)
	if err != nil && !errors.Is(err, io.EOF) {
		var complete bool
		problems, complete = decodeProblems(err, idx)
		if !complete {
			// A value of the wrong shape leaves the rest half-decoded; more
			// checks would only report follow-on noise.
			return nil, nil, newConfigError(name, problems)
		}
	}
	applyDefaults(&cfg, idx)
	problems = append(problems, validate(&cfg, idx)...)
	if len(problems) > 0 {
		return nil, nil, newConfigError(name, problems)
	}
	return &cfg, idx, nil
}

// applyDefaults fills keys that are absent or empty. requiredApprovals is
// defaulted only when absent, so that an explicit 0 is kept.
func applyDefaults(c *Config, idx *nodeIndex) {
	setDefault(&c.Listen, DefaultListen)
	setDefault(&c.DataDir, DefaultDataDir)
	setDefault(&c.GitOps.Branch, DefaultBranch)
	setDefault(&c.GitOps.AuthorName, DefaultAuthorName)
	setDefault(&c.GitOps.AuthorEmail, DefaultAuthorEmail)
	setDefault(&c.GitHub.APIURL, DefaultGitHubAPIURL)
	if c.GitHub.MergeMethod == "" {
		c.GitHub.MergeMethod = MergeMethodMerge
	}
	setDefault(&c.Slack.APIURL, DefaultSlackAPIURL)
	if c.Rollout.Timeout == 0 {
		c.Rollout.Timeout = DefaultRolloutTimeout
	}
	if c.Rollout.DegradedFor == 0 {
		c.Rollout.DegradedFor = DefaultDegradedFor
	}
	if c.ArgoCD.PollInterval == 0 {
		c.ArgoCD.PollInterval = DefaultArgoCDPoll
	}
	c.GitHub.APIURL = withTrailingSlash(c.GitHub.APIURL)
	c.Slack.APIURL = withTrailingSlash(c.Slack.APIURL)
	for i := range c.Projects {
		p := &c.Projects[i]
		setDefault(&p.Name, p.ID)
		if !idx.hasValue(fmt.Sprintf("projects[%d].requiredApprovals", i)) {
			p.RequiredApprovals = DefaultRequiredApprovals
		}
		if !idx.hasValue(fmt.Sprintf("projects[%d].maxQAEnvironments", i)) {
			p.MaxQAEnvironments = DefaultMaxQAEnvironments
		}
	}
}

func setDefault(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

// withTrailingSlash makes an API root usable as a base URL: both go-github
// and slack-go append method paths to it.
func withTrailingSlash(s string) string {
	if s == "" || strings.HasSuffix(s, "/") {
		return s
	}
	return s + "/"
}

// checkFiles reports key files that the configuration names but that are not
// regular files. Relative paths are relative to the working directory.
func checkFiles(c *Config, idx *nodeIndex) []Problem {
	files := []struct{ field, path string }{
		{"gitops.signingKeyFile", c.GitOps.SigningKeyFile},
		{"gitops.sshKeyFile", c.GitOps.SSHKeyFile},
		{"gitops.knownHostsFile", c.GitOps.KnownHostsFile},
		{"github.privateKeyFile", c.GitHub.PrivateKeyFile},
	}
	var problems []Problem
	for _, f := range files {
		if f.path == "" {
			continue
		}
		st, err := os.Stat(f.path)
		var msg string
		switch {
		case err != nil:
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			msg = fmt.Sprintf("%q: %v", f.path, err)
		case !st.Mode().IsRegular():
			msg = fmt.Sprintf("%q is not a regular file", f.path)
		default:
			continue
		}
		problems = append(problems, Problem{Line: idx.line(f.field), Field: f.field, Msg: msg})
	}
	return problems
}

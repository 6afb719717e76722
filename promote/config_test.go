package promote

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// header is a valid configuration up to its project list; the project a
// test adds is on line 4.
const header = `gitops:
  repo: https://git.example.com/acme/deploy-config.git
projects:
`

// flowProject returns a valid project as a one-line flow mapping; kv pairs
// replace fields (an empty value removes the field) or add new ones.
func flowProject(kv ...string) string {
	keys := []string{"id", "url", "channel", "qa", "owners", "image", "path"}
	vals := map[string]string{
		"id": "hello", "url": "https://hello.example.com", "channel": "C0HELLO",
		"qa": "[UQA1, UQA2]", "owners": "[UOWN1]", "image": "registry.example.com/acme/hello", "path": "apps/hello",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := vals[kv[i]]; !ok {
			keys = append(keys, kv[i])
		}
		vals[kv[i]] = kv[i+1]
	}
	var parts []string
	for _, k := range keys {
		if vals[k] != "" {
			parts = append(parts, k+": "+vals[k])
		}
	}
	return "- {" + strings.Join(parts, ", ") + "}\n"
}

func problemsOf(t *testing.T, doc string) []Problem {
	t.Helper()
	cfg, err := ParseConfig("config.yaml", []byte(doc))
	if err == nil {
		t.Fatalf("ParseConfig succeeded, want problems; got %+v", cfg)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
	}
	return ce.Problems
}

// wantOne asserts exactly one problem on line, at field, whose message holds msg.
func wantOne(t *testing.T, problems []Problem, line int, field, msg string) {
	t.Helper()
	if len(problems) != 1 {
		t.Fatalf("got %d problems %+v, want 1", len(problems), problems)
	}
	p := problems[0]
	if p.Line != line || p.Field != field || !strings.Contains(p.Msg, msg) {
		t.Errorf("got %d %s %q, want %d %s containing %q", p.Line, p.Field, p.Msg, line, field, msg)
	}
}

func TestProjectRules(t *testing.T) {
	tests := []struct {
		name  string
		kv    []string
		field string
		msg   string
	}{
		{"id upper-case", []string{"id", "Hello"}, "id", `"Hello" must be lower-case letters, digits and "-"`},
		{"id missing", []string{"id", ""}, "id", "required"},
		{"id leading dash", []string{"id", "-hello"}, "id", "must start and end with a letter or digit"},
		{"id too long", []string{"id", strings.Repeat("a", 41)}, "id", "longer than 40"},
		{"url missing", []string{"url", ""}, "url", "required"},
		{"url not http", []string{"url", "ftp://hello.example.com"}, "url", "absolute http:// or https://"},
		{"url relative", []string{"url", "hello.example.com"}, "url", "absolute http:// or https://"},
		{"url with path", []string{"url", "https://example.com/hello"}, "url", "no path"},
		{"url with query", []string{"url", `"https://hello.example.com/?a=b"`}, "url", "no path, query"},
		{"url with ip", []string{"url", "http://10.0.0.1"}, "url", "must be a DNS name"},
		{"url with credentials", []string{"url", "https://u:p@hello.example.com"}, "url", "credentials"},
		{"channel missing", []string{"channel", ""}, "channel", "required"},
		{"qa entry", []string{"qa", "[UQA1, bob]"}, "qa[1]", `"bob" is not a Slack user id`},
		{"qa duplicate", []string{"qa", "[UQA1, UQA1]"}, "qa[1]", "listed twice"},
		{"owners entry", []string{"owners", "[C0HELLO]"}, "owners[0]", "not a Slack user id"},
		{"owners missing", []string{"owners", ""}, "owners", "at least one owner"},
		{"owners empty", []string{"owners", "[]"}, "owners", "at least one owner"},
		{"image missing", []string{"image", ""}, "image", "required"},
		{"image tagged", []string{"image", "registry.example.com/acme/hello:1.0"}, "image", "without tag or digest"},
		{"image digest", []string{"image", "registry.example.com/acme/hello@sha256:" + strings.Repeat("a", 64)}, "image", "without tag or digest"},
		{"image invalid", []string{"image", "Registry.example.com/Acme"}, "image", "not an image repository"},
		{"source repository", []string{"sourceRepository", "acme"}, "sourceRepository", "owner/name"},
		{"qa ttl short", []string{"qaTTL", "30s"}, "qaTTL", "a minute or more"},
		{"max qa environments", []string{"maxQAEnvironments", "-1"}, "maxQAEnvironments", "0 (no limit) or more"},
		{"path missing", []string{"path", ""}, "path", "required"},
		{"path absolute", []string{"path", "/apps/hello"}, "path", "relative"},
		{"path dotdot", []string{"path", "apps/../../etc"}, "path", "must not contain .."},
		{"path unclean", []string{"path", "apps//hello/"}, "path", `must be clean ("apps/hello")`},
		{"path backslash", []string{"path", `'apps\hello'`}, "path", "separator"},
		{"approvals negative", []string{"requiredApprovals", "-1"}, "requiredApprovals", "0 or more"},
		{"approvals unreachable", []string{"requiredApprovals", "3"}, "requiredApprovals", "3 required, but qa lists 2 users"},
		{"approvals default without qa", []string{"qa", "[]"}, "requiredApprovals", "1 required, but qa lists 0 users"},
		{"service without port", []string{"service", "hello"}, "service", "must be name:port"},
		{"service bad name", []string{"service", "Hello_1:80"}, "service", "must be name:port"},
		{"service port zero", []string{"service", "hello:0"}, "service", "port 1-65535"},
		{"service port high", []string{"service", "hello:65536"}, "service", "port 1-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := problemsOf(t, header+flowProject(tt.kv...))
			wantOne(t, problems, 4, "projects[0]."+tt.field, tt.msg)
		})
	}
}

func TestProjectRulesAccept(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
	}{
		{"short id", []string{"id", "a"}},
		{"id with dashes", []string{"id", "hello-world-2"}},
		{"id of 40", []string{"id", strings.Repeat("a", 40)}},
		{"url with slash and port", []string{"url", "http://hello.example.com:8443/"}},
		{"workspace users and groups", []string{"qa", "[W012AB, S0QA]", "owners", "[U1AB, S0OWN]"}},
		{"no qa with zero approvals", []string{"qa", "[]", "requiredApprovals", "0"}},
		{"group qa with many approvals", []string{"qa", "[S0QA]", "requiredApprovals", "5"}},
		{"service", []string{"service", "hello-svc:8080"}},
		{"root path", []string{"path", "."}},
		{"nested path", []string{"path", "apps/team/hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseConfig("config.yaml", []byte(header+flowProject(tt.kv...))); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTopLevelRules(t *testing.T) {
	project := "projects:\n" + flowProject()
	tests := []struct {
		name  string
		doc   string
		line  int
		field string
		msg   string
	}{
		{"listen without port", "listen: localhost\ngitops: {repo: /srv/config.git}\n" + project, 1, "listen", "host:port"},
		{"listen bad port", "listen: :http\ngitops: {repo: /srv/config.git}\n" + project, 1, "listen", "host:port"},
		{"database mysql", "database: mysql://u:secret@db/x\ngitops: {repo: /srv/config.git}\n" + project, 1, "database", "postgres://"},
		{"repo missing", "gitops: {branch: main}\n" + project, 1, "gitops.repo", "required"},
		{"repo missing, no section", project, 0, "gitops.repo", "required"},
		{"repo scheme", "gitops: {repo: 'ftp://example.com/x.git'}\n" + project, 1, "gitops.repo", `scheme "ftp"`},
		{"repo password", "gitops: {repo: 'https://u:secret@example.com/x.git'}\n" + project, 1, "gitops.repo", "PROMOTEBOT_GIT_PASSWORD"},
		{"branch", "gitops: {repo: /srv/config.git, branch: 'a..b'}\n" + project, 1, "gitops.branch", "not a valid branch"},
		{"author email", "gitops: {repo: /srv/config.git, authorEmail: bot}\n" + project, 1, "gitops.authorEmail", "not an e-mail"},
		{"github without repository", "gitops: {repo: /srv/config.git}\ngithub:\n  mergeMethod: squash\n" + project, 2, "github.repository", "required when"},
		{"github repository", "gitops: {repo: /srv/config.git}\ngithub: {repository: deploy-config}\n" + project, 2, "github.repository", "owner/name"},
		{"github merge method", "gitops: {repo: /srv/config.git}\ngithub: {repository: a/b, mergeMethod: ff}\n" + project, 2, "github.mergeMethod", `"ff" must be merge, squash or rebase`},
		{"github api url", "gitops: {repo: /srv/config.git}\ngithub: {repository: a/b, apiURL: api.github.com}\n" + project, 2, "github.apiURL", "absolute"},
		{"github app without installation", "gitops: {repo: /srv/config.git}\ngithub: {repository: a/b, appID: 12}\n" + project, 2, "github.installationID", "installation"},
		{"github app without key", "gitops: {repo: /srv/config.git}\ngithub: {repository: a/b, appID: 12, installationID: 34}\n" + project, 2, "github.privateKeyFile", "required when appID"},
		{"github app key without id", "gitops: {repo: /srv/config.git}\ngithub: {repository: a/b, installationID: 34}\n" + project, 2, "github.appID", "positive"},
		{"slack api url", "gitops: {repo: /srv/config.git}\nslack:\n  apiURL: /api\n" + project, 3, "slack.apiURL", "absolute"},
		{"ci allowed host url", "gitops: {repo: /srv/config.git}\nci:\n  allowedHosts: [ci.example.com, 'https://ci.example.com']\n" + project, 3, "ci.allowedHosts[1]", "host name"},
		{"ci allowed host upper case", "gitops: {repo: /srv/config.git}\nci:\n  allowedHosts: ['*.Example.com']\n" + project, 3, "ci.allowedHosts[0]", "lower-case"},
		{"rollout timeout negative", "gitops: {repo: /srv/config.git}\nrollout: {timeout: -1m}\n" + project, 2, "rollout.timeout", "a second or more"},
		{"rollout timeout number", "gitops: {repo: /srv/config.git}\nrollout: {timeout: 300}\n" + project, 2, "rollout.timeout", `not "300"`},
		{"rollout timeout word", "gitops: {repo: /srv/config.git}\nrollout: {timeout: soon}\n" + project, 2, "rollout.timeout", "soon"},
		{"argocd api url", "gitops: {repo: /srv/config.git}\nargocd: {apiURL: argocd.example.com}\n" + project, 2, "argocd.apiURL", "absolute"},
		{"argocd poll", "gitops: {repo: /srv/config.git}\nargocd: {apiURL: 'https://argocd.example.com', pollInterval: 10ms}\n" + project, 2, "argocd.pollInterval", "a second or more"},
		{"no projects", "gitops: {repo: /srv/config.git}\n", 0, "projects", "at least one project"},
		{"empty projects", "gitops: {repo: /srv/config.git}\nprojects: []\n", 2, "projects", "at least one project"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOne(t, problemsOf(t, tt.doc), tt.line, tt.field, tt.msg)
		})
	}
}

func TestSecretsAreNotEchoed(t *testing.T) {
	doc := "database: mysql://u:hunter2@db/x\ngitops: {repo: 'https://u:hunter2@example.com/x.git'}\nprojects:\n" + flowProject()
	_, err := ParseConfig("config.yaml", []byte(doc))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v, want problems that do not repeat the password", err)
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		line  int
		field string
		msg   string
	}{
		{"top level", header + flowProject() + "listn: :8080\n", 5, "listn", "known keys here: listen, dataDir,"},
		{"gitops", "gitops:\n  repo: /srv/config.git\n  brnch: main\nprojects:\n" + flowProject(), 3, "gitops.brnch", "known keys here: repo, branch,"},
		{"github", "gitops: {repo: /srv/config.git}\ngithub:\n  repository: a/b\n  mergemethod: squash\nprojects:\n" + flowProject(), 4, "github.mergemethod", "known keys here: repository, apiURL, mergeMethod"},
		{"project", header + flowProject() + flowProject("id", "world", "path", "apps/world", "owner", "[UOWN1]"), 5, "projects[1].owner", "known keys here: id, name,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOne(t, problemsOf(t, tt.doc), tt.line, tt.field, "unknown key ("+tt.msg)
		})
	}
}

// TestProblemsListedByLine checks the whole message of a file with problems
// of every kind, in block style as people write it.
func TestProblemsListedByLine(t *testing.T) {
	doc := `listen: 127.0.0.1:8080
gitops:
  branch: main
projects:
- id: hello
  url: https://hello.example.com
  channel: C0HELLO
  qa: [UQA1]
  owners: [UOWN1]
  image: registry.example.com/acme/hello
  path: apps/hello
- id: Hello
  url: https://hello2.example.com
  channel: C0HELLO
  qa:
  - UQA1
  - qa-team
  owners: [UOWN1]
  image: registry.example.com/acme/hello:2
  path: apps/hello/api
  servce: hello:80
- id: hello
  url: https://hello3.example.com
  owners: [UOWN1]
  image: registry.example.com/acme/hello
  path: apps/hello
  requiredApprovals: 0
`
	want := `config.yaml:2: gitops.repo: required
config.yaml:12: projects[1].id: "Hello" must be lower-case letters, digits and "-"
config.yaml:17: projects[1].qa[1]: "qa-team" is not a Slack user id (U…, W…) or user-group id (S…)
config.yaml:19: projects[1].image: "registry.example.com/acme/hello:2" must be a repository without tag or digest (the build supplies those)
config.yaml:20: projects[1].path: "apps/hello/api" and projects[0].path "apps/hello" (line 11) nest; project folders must be disjoint
config.yaml:21: projects[1].servce: unknown key (known keys here: id, name, url, channel, qa, owners, image, path, requiredApprovals, service, allowSelfApproval, allowUnicodeTargets, sourceRepository, qaTTL, maxQAEnvironments, autoRollback)
config.yaml:22: projects[2].channel: required
config.yaml:22: projects[2].id: "hello" is already the id of projects[0] (line 5)
config.yaml:26: projects[2].path: "apps/hello" is also projects[0].path (line 11)
config.yaml:26: projects[2].path: "apps/hello" and projects[1].path "apps/hello/api" (line 20) nest; project folders must be disjoint`
	_, err := ParseConfig("config.yaml", []byte(doc))
	if err == nil {
		t.Fatal("ParseConfig succeeded, want problems")
	}
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}

func TestMalformedDocuments(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		line  int
		field string
		msg   string
	}{
		{"unclosed list", "gitops:\n  repo: [a\nprojects: x\n", 2, "", "invalid YAML at or below this line: did not find expected ',' or ']'"},
		{"bad indentation", "gitops:\n  repo: a\n    branch: b\n", 3, "", "invalid YAML: mapping values are not allowed"},
		{"unknown anchor", "gitops: *x\n", 0, "", "invalid YAML: unknown anchor 'x' referenced"},
		{"two documents", header + flowProject() + "---\nlisten: :1\n", 5, "", "only one YAML document"},
		{"top level list", "- a\n- b\n", 1, "", "must be a mapping, not a list"},
		{"string for int", header + flowProject("requiredApprovals", "two"), 4, "projects[0].requiredApprovals", `must be an integer, not "two"`},
		{"string for list", header + "- id: hello\n  qa: UQA1\n", 5, "projects[0].qa", `must be a list of strings, not "UQA1"`},
		{"list for string", "gitops:\n  repo: [a, b]\n", 2, "gitops.repo", "must be a string, not a list"},
		{"mapping for projects", "gitops: {repo: x}\nprojects:\n  id: hello\n", 3, "projects", "must be a list of projects, not a mapping"},
		{"long string for int", header + flowProject("requiredApprovals", "twenty-three"), 4, "projects[0].requiredApprovals", `must be an integer, not "twenty-three"`},
		{"duplicate key", "gitops:\n  repo: a\n  repo: b\n", 3, "gitops.repo", "duplicate key, first defined on line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOne(t, problemsOf(t, tt.doc), tt.line, tt.field, tt.msg)
		})
	}
}

func TestEmptyDocument(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n"} {
		problems := problemsOf(t, doc)
		got := map[string]bool{}
		for _, p := range problems {
			if p.Line != 0 {
				t.Errorf("problem %+v has a line in an empty document", p)
			}
			got[p.Field] = true
		}
		if !got["gitops.repo"] || !got["projects"] || len(problems) != 2 {
			t.Errorf("got %+v, want gitops.repo and projects required", problems)
		}
	}
}

func TestDefaults(t *testing.T) {
	doc := header + flowProject("image", "nginx") + flowProject("id", "zero", "path", "apps/zero", "requiredApprovals", "0") +
		flowProject("id", "nothing", "path", "apps/nothing", "requiredApprovals", "~", "name", "Nothing Service")
	cfg, err := ParseConfig("config.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"listen", cfg.Listen, "127.0.0.1:8080"},
		{"dataDir", cfg.DataDir, "./data"},
		{"database", cfg.Database, ""},
		{"gitops.branch", cfg.GitOps.Branch, "main"},
		{"gitops.authorName", cfg.GitOps.AuthorName, "promotebot"},
		{"gitops.authorEmail", cfg.GitOps.AuthorEmail, "promotebot@localhost"},
		{"github.repository", cfg.GitHub.Repository, ""},
		{"github.apiURL", cfg.GitHub.APIURL, "https://api.github.com/"},
		{"github.mergeMethod", string(cfg.GitHub.MergeMethod), "merge"},
		{"slack.apiURL", cfg.Slack.APIURL, "https://slack.com/api/"},
		{"projects[0].name", cfg.Projects[0].Name, "hello"},
		{"projects[0].image", cfg.Projects[0].Image, "docker.io/library/nginx"},
		{"projects[2].name", cfg.Projects[2].Name, "Nothing Service"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if cfg.GitHub.Enabled() {
		t.Error("GitHub.Enabled() = true without a repository, want direct mode")
	}
	if r := cfg.Rollout; r.WaitForHealthy || r.Timeout != 10*time.Minute {
		t.Errorf("rollout = %+v, want waitForHealthy false, timeout 10m", r)
	}
	if a := cfg.ArgoCD; a.APIURL != "" || a.PollInterval != 30*time.Second {
		t.Errorf("argocd = %+v, want no apiURL and pollInterval 30s", a)
	}
	if p := cfg.Projects[0]; p.MaxQAEnvironments != 20 || p.QATTL != 0 || p.SourceRepository != "" || p.AutoRollback {
		t.Errorf("projects[0] = maxQAEnvironments %d, qaTTL %s, sourceRepository %q, autoRollback %t; want 20, 0, \"\", false",
			p.MaxQAEnvironments, p.QATTL, p.SourceRepository, p.AutoRollback)
	}
	for i, want := range []int{1, 0, 1} {
		if got := cfg.Projects[i].RequiredApprovals; got != want {
			t.Errorf("projects[%d].requiredApprovals = %d, want %d", i, got, want)
		}
	}
}

func TestAPIURLGetsTrailingSlash(t *testing.T) {
	doc := "gitops: {repo: /srv/config.git}\ngithub: {repository: a/b, apiURL: 'https://ghe.example.com/api/v3'}\n" +
		"slack: {apiURL: 'http://127.0.0.1:9999/api'}\nprojects:\n" + flowProject()
	cfg, err := ParseConfig("config.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GitHub.APIURL != "https://ghe.example.com/api/v3/" || cfg.Slack.APIURL != "http://127.0.0.1:9999/api/" {
		t.Errorf("got %q and %q, want both ending in /", cfg.GitHub.APIURL, cfg.Slack.APIURL)
	}
}

func TestExampleConfig(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("..", "examples", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := cfg.Project("hello")
	if !ok {
		t.Fatal(`Project("hello") not found`)
	}
	if p.Name != "Hello Service" || p.Host() != "hello.example.com" || p.Image != "registry.example.com/acme/hello" ||
		p.Path != "apps/hello" || p.RequiredApprovals != 1 || len(p.QA) != 2 || len(p.Owners) != 1 {
		t.Errorf("unexpected project %+v", p)
	}
	if !cfg.GitHub.Enabled() || cfg.GitHub.Repository != "acme/deploy-config" || cfg.GitOps.AuthorEmail != "promotebot@example.com" {
		t.Errorf("unexpected gitops/github %+v %+v", cfg.GitOps, cfg.GitHub)
	}
	if _, ok := cfg.Project("nope"); ok {
		t.Error(`Project("nope") found`)
	}
}

func TestHost(t *testing.T) {
	for url, want := range map[string]string{
		"https://hello.example.com":        "hello.example.com",
		"https://Hello.Example.COM:8443/":  "hello.example.com",
		"http://hello.example.com/":        "hello.example.com",
		"https://hello.example.com:443":    "hello.example.com",
		"https://hello.example.com./":      "hello.example.com.",
		"https://xn--bcher-kva.example.ch": "xn--bcher-kva.example.ch",
	} {
		if got := (Project{URL: url}).Host(); got != want {
			t.Errorf("Host(%q) = %q, want %q", url, got, want)
		}
	}
}

func TestLoadConfigFiles(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.asc")
	if err := os.WriteFile(key, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := "gitops:\n  repo: /srv/config.git\n  signingKeyFile: " + key + "\n  sshKeyFile: " + filepath.Join(dir, "missing") +
		"\n  knownHostsFile: " + dir + "\nprojects:\n" + flowProject()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("got %v, want problems for sshKeyFile and knownHostsFile", err)
	}
	wantOne(t, ce.Problems[:1], 4, "gitops.sshKeyFile", "no such file")
	wantOne(t, ce.Problems[1:], 5, "gitops.knownHostsFile", "not a regular file")
	if !strings.HasPrefix(err.Error(), path+":4: gitops.sshKeyFile: ") {
		t.Errorf("error %q does not start with the file name and line", err)
	}
}

func TestLoadConfigMissing(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want fs.ErrNotExist", err)
	}
}

// TestNestedBefore checks the lookup of nested project folders against
// comparing every pair, on folders that share prefixes without nesting
// ("apps/a", "apps/a-b", "apps/ab"), repeat, and include the root.
func TestNestedBefore(t *testing.T) {
	paths := []string{"apps/a", "apps/ab", "apps/a/b", "apps/a-b", "apps/a", "apps", "apps/a/b/c", "other/a", ".", "apps/a-b/c", "apps/a/b"}
	byPath := map[string][]int{}
	var sorted []pathAt
	for i, p := range paths {
		byPath[p] = append(byPath[p], i)
		sorted = append(sorted, pathAt{p, i})
	}
	slices.SortFunc(sorted, func(a, b pathAt) int { return strings.Compare(a.path, b.path) })
	nests := func(p, q string) bool {
		below := func(p, dir string) bool { return dir == "." || strings.HasPrefix(p, dir+"/") }
		return p == q || below(p, q) || below(q, p)
	}
	for i, p := range paths {
		var want []int
		for j := range i {
			if nests(p, paths[j]) {
				want = append(want, j)
			}
		}
		if got := nestedBefore(p, i, byPath, sorted); !slices.Equal(got, want) {
			t.Errorf("nestedBefore(%q, %d) = %v, want %v", p, i, got, want)
		}
	}
}

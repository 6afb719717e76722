package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/urfave/cli/v2"

	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/history"
	"github.com/promotebot/promotebot/promote"
)

// auditFixture is a config repository written by the real bot code: a QA
// deployment and two promotions on 2026-01-10, signed, after the sample
// repo's root commit (made now).
type auditFixture struct {
	bare, config, keyring, keyID string
	qa, prod1, prod2             string // commit hashes
}

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	f := &auditFixture{bare: gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))}
	dir := t.TempDir()
	var entity *openpgp.Entity
	entity, f.keyring = newKeyring(t, dir)
	f.keyID = entity.PrimaryKey.KeyIdString()
	at := time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)
	repo, err := clone.Open(context.Background(), clone.Options{
		URL: f.bare, Dir: filepath.Join(dir, "clone"),
		Author:  clone.Signature{Name: "promotebot", Email: "bot@example.com"},
		SignKey: entity,
		Now: func() time.Time {
			at = at.Add(time.Hour)
			return at
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	cr := gitops.NewConfigRepo(repo)
	hello := promote.Project{ID: "hello", URL: "https://hello.example.com", Image: "registry.example.com/acme/hello", Path: "apps/hello",
		RequiredApprovals: 2} // recorded in each production commit
	b1 := promote.Build{ID: "b1", Project: "hello", Image: "registry.example.com/acme/hello:1.4.0", Kind: promote.KindBranch,
		Target: "feature/login", Commit: "0123abc", BuildURL: "https://ci.example.com/7"}
	ctx := context.Background()
	qa, err := cr.DeployQA(ctx, hello, b1)
	if err != nil {
		t.Fatal(err)
	}
	f.qa = qa.Commit
	olga := promote.Person{ID: "UOWN1", Name: "Olga"}
	f.prod1, err = cr.Promote(ctx, hello, b1, []promote.Approval{{User: "UQA1", Name: "Ada", Verdict: promote.Approve,
		At: time.Date(2026, 1, 10, 10, 30, 0, 0, time.UTC)}}, olga)
	if err != nil {
		t.Fatal(err)
	}
	b2 := promote.Build{ID: "b2", Project: "hello", Image: "registry.example.com/acme/hello:1.5.0", Kind: promote.KindTag, Target: "v1.5.0"}
	f.prod2, err = cr.Promote(ctx, hello, b2, []promote.Approval{{User: "UOWN1", Name: "Olga", Verdict: promote.Approve,
		At: time.Date(2026, 1, 10, 11, 45, 0, 0, time.UTC)}}, olga)
	if err != nil {
		t.Fatal(err)
	}

	f.config = filepath.Join(dir, "config.yaml")
	yaml := "gitops:\n  repo: " + f.bare + "\n  signingKeyFile: /nonexistent/on/the/auditor's/machine.asc\n" +
		"projects:\n- id: hello\n  url: https://hello.example.com\n  channel: C0HELLO\n  qa: [UQA1, UQA2]\n" +
		"  owners: [UOWN1]\n  image: registry.example.com/acme/hello\n  path: apps/hello\n  requiredApprovals: 2\n"
	if err := os.WriteFile(f.config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// newKeyring makes a signing key and writes its armored public key to a
// file in dir.
func newKeyring(t *testing.T, dir string) (*openpgp.Entity, string) {
	t.Helper()
	entity, err := openpgp.NewEntity("promotebot", "", "bot@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	keyring := filepath.Join(dir, "pub.asc")
	gittest.WriteArmoredKey(t, keyring, openpgp.PublicKeyType, entity, false)
	return entity, keyring
}

func exitCode(err error) int {
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return -1
}

func TestAuditTable(t *testing.T) {
	f := newAuditFixture(t)
	stdout, _, err := runWith(t, nil, "audit", "--repo", f.bare, "--until", "2026-01-31")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(""+
		"TIME (UTC)        PROJECT  ENV                     IMAGE  SOURCE                   APPROVED BY  PROMOTED BY  PR  COMMIT\n"+
		"2026-01-10 12:00  hello    production              1.5.0  v1.5.0                   Olga         Olga         -   %s\n"+
		"2026-01-10 11:00  hello    production              1.4.0  feature/login @ 0123abc  Ada          Olga         -   %s\n"+
		"2026-01-10 10:00  hello    qa/branch-feature-log…  1.4.0  feature/login @ 0123abc  -            -            -   %s\n",
		f.prod2[:7], f.prod1[:7], f.qa[:7])
	if stdout != want {
		t.Fatalf("stdout\n%s\nwant\n%s", stdout, want)
	}

	// --wide: every field in full, and the CI link in a column of its own.
	for _, wide := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--wide"}, nil},
		{nil, map[string]string{"PROMOTEBOT_WIDE": "true"}},
	} {
		stdout, _, err = runWith(t, wide.env, append([]string{"audit", "--repo", f.bare, "--until", "2026-01-31"}, wide.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		want = fmt.Sprintf(""+
			"TIME                  PROJECT  ENV                      IMAGE        SOURCE                          CI                        APPROVED BY               PROMOTED BY  PR  COMMIT\n"+
			"2026-01-10T12:00:00Z  hello    production               hello:1.5.0  tag v1.5.0                      -                         Olga (2026-01-10 11:45Z)  Olga         -   %s\n"+
			"2026-01-10T11:00:00Z  hello    production               hello:1.4.0  branch feature/login @ 0123abc  https://ci.example.com/7  Ada (2026-01-10 10:30Z)   Olga         -   %s\n"+
			"2026-01-10T10:00:00Z  hello    qa/branch-feature-login  hello:1.4.0  branch feature/login @ 0123abc  https://ci.example.com/7  -                         -            -   %s\n",
			f.prod2[:12], f.prod1[:12], f.qa[:12])
		if stdout != want {
			t.Fatalf("%v %v: stdout\n%s\nwant\n%s", wide.args, wide.env, stdout, want)
		}
	}

	// Filters, and the repository from the environment.
	stdout, _, err = runWith(t, map[string]string{"PROMOTEBOT_REPO": f.bare, "PROMOTEBOT_ENV": "qa"}, "audit")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[1], f.qa[:7]) {
		t.Fatalf("--env qa:\n%s", stdout)
	}
	stdout, _, err = runWith(t, nil, "audit", "--repo", f.bare, "--since", "2026-01-10T10:30:00Z", "--until", "2026-01-10T11:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[1], f.prod1[:7]) {
		t.Fatalf("--since --until:\n%s", stdout)
	}
}

func TestAuditJSON(t *testing.T) {
	f := newAuditFixture(t)
	stdout, _, err := runWith(t, nil, "audit", "--repo", f.bare, "--format", "json", "--project", "hello", "--env", "production")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 objects (two promotions, the root commit):\n%s", stdout)
	}
	want := `{"commit":"` + f.prod1 + `","time":"2026-01-10T11:00:00Z","author":"promotebot <bot@example.com>",` +
		`"committer":"promotebot <bot@example.com>","subject":"Promote hello 1.4.0 to production","project":"hello",` +
		`"environment":"production","image":"registry.example.com/acme/hello:1.4.0","build":"b1",` +
		`"source":"branch feature/login @ 0123abc https://ci.example.com/7",` +
		`"approvals":[{"name":"Ada","slackId":"UQA1","at":"2026-01-10T10:30:00Z"}],` +
		`"promotedBy":{"name":"Olga","slackId":"UOWN1"},"buildAuthor":"","builtAt":null,"receivedAt":null,"requiredApprovals":2,"pr":"","signed":true,"signature":"","trailers":true,` +
		`"botMade":true,"root":false,"paths":[],"claims":"","beyondMerged":"","qaPinned":false,"malformed":[],` +
		`"rollbackOf":"","reason":"","rollbackPinned":false,"teardown":"","teardownRemoved":false}`
	if lines[1] != want {
		t.Fatalf("line 2\n%s\nwant\n%s", lines[1], want)
	}
	var root map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &root); err != nil {
		t.Fatal(err)
	}
	if root["root"] != true || root["trailers"] != false || root["botMade"] != false ||
		fmt.Sprint(root["paths"]) != "[apps/hello/base/configmap.yaml apps/hello/base/deployment.yaml apps/hello/base/kustomization.yaml "+
			"apps/hello/base/service.yaml apps/hello/overlays/production/kustomization.yaml]" || fmt.Sprint(root["approvals"]) != "[]" {
		t.Fatalf("root commit %v", root)
	}
}

func TestAuditCSV(t *testing.T) {
	f := newAuditFixture(t)
	stdout, _, err := runWith(t, nil, "audit", "--repo", f.bare, "--format", "csv", "--until", "2026-01-10")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || strings.Join(recs[0], ",") != "commit,time,project,environment,image,build,source,approvals,"+
		"promotedBy,pr,author,committer,subject,signed,signature,trailers,botMade,paths,malformed,claims,beyondMerged,qaPinned,"+
		"rollbackOf,reason,rollbackPinned,teardown,teardownRemoved,builtAt,receivedAt" {
		t.Fatalf("csv:\n%s", stdout)
	}
	want := []string{f.prod2, "2026-01-10T12:00:00Z", "hello", "production", "registry.example.com/acme/hello:1.5.0", "b2",
		"tag v1.5.0", "Olga <slack:UOWN1> 2026-01-10T11:45:00Z", "Olga <slack:UOWN1>", "", "promotebot <bot@example.com>",
		"promotebot <bot@example.com>", "Promote hello 1.5.0 to production", "true", "", "true", "true", "", "", "", "", "false",
		"", "", "false", "", "false", "", ""}
	if strings.Join(recs[1], "|") != strings.Join(want, "|") {
		t.Fatalf("row\n%q\nwant\n%q", recs[1], want)
	}
}

func TestAuditCheck(t *testing.T) {
	f := newAuditFixture(t)
	work := gittest.Clone(t, f.bare)
	kust, _ := gittest.ReadFile(t, f.bare, "main", "apps/hello/overlays/production/kustomization.yaml")
	hotfix := gittest.CommitFiles(t, work, map[string]string{
		"apps/hello/overlays/production/kustomization.yaml": strings.Replace(kust, "count: 3", "count: 5", 1),
	}, "Scale up\n\nApproved-by: Ada <slack:UQA1> 2026-01-10T10:30:00Z\n")
	gittest.Push(t, work)

	// --config alone: the repository comes from gitops.repo; required
	// approvals from the project (2), said on stderr.
	stdout, stderr, err := runWith(t, nil, "audit", "--config", f.config, "--check", "--format", "csv")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "5 finding(s) in 3 production change(s) checked") {
		t.Fatalf("err %v (exit %d)\nstdout:\n%s", err, exitCode(err), stdout)
	}
	got := findingLines(t, stdout)
	want := []string{
		hotfix[:7] + " not-by-bot: apps/hello/overlays/production/kustomization.yaml changed by " +
			gittest.AuthorName + " <" + gittest.AuthorEmail + "> without promotebot's trailers",
		f.prod2[:7] + " too-few-approvals: 1 approval(s), 2 required",
		f.prod2[:7] + " promoter-approved: Olga <slack:UOWN1> approved the build and promoted it",
		f.prod2[:7] + " never-in-qa: registry.example.com/acme/hello:1.5.0 never ran in a QA environment of hello before",
		f.prod1[:7] + " too-few-approvals: 1 approval(s), 2 required",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, note := range []string{"note: required approvals: the stricter of what each commit recorded (Promotebot-Required-Approvals) " +
		"and the project's requiredApprovals in " + f.config,
		"note: an approver who wrote the build is found by Promotebot-Author"} {
		if !strings.Contains(stderr, note) {
			t.Errorf("stderr lacks %q:\n%s", note, stderr)
		}
	}

	// Without --config: the policy each commit recorded (2) still counts.
	// The image of the first promotion ran in QA although --env leaves QA
	// out of the listing, so that is the only finding.
	stdout, stderr, err = runWith(t, nil, "audit", "--repo", f.bare, "--check", "--env", "production",
		"--since", "2026-01-10T11:00:00Z", "--until", "2026-01-10T11:00:00Z")
	if exitCode(err) != 1 || !strings.Contains(stdout, "too-few-approvals") || strings.Contains(stdout, "never-in-qa") ||
		!strings.Contains(stderr, "no --config: 1 required approval(s) assumed where a commit does not record its policy") {
		t.Fatalf("err %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}

	// The table.
	stdout, _, err = runWith(t, nil, "audit", "--repo", f.bare, "--check", "--project", "hello", "--since", "2026-01-10T12:00:00Z",
		"--until", "2026-01-31")
	want2 := fmt.Sprintf(""+
		"TIME                  PROJECT  ENV         COMMIT        RULE               DETAIL\n"+
		"2026-01-10T12:00:00Z  hello    production  %[1]s  too-few-approvals  1 approval(s), 2 required\n"+
		"2026-01-10T12:00:00Z  hello    production  %[1]s  promoter-approved  Olga <slack:UOWN1> approved the build and promoted it\n"+
		"2026-01-10T12:00:00Z  hello    production  %[1]s  never-in-qa        registry.example.com/acme/hello:1.5.0 never ran in a QA environment of hello before\n",
		f.prod2[:12])
	if exitCode(err) != 1 || stdout != want2 {
		t.Fatalf("err %v\nstdout:\n%s\nwant:\n%s", err, stdout, want2)
	}
}

// TestAuditCheckJudgesChanges: --check judges a commit by what it changes,
// not by its message (issue 13 item 1).
func TestAuditCheckJudgesChanges(t *testing.T) {
	f := newAuditFixture(t)
	work := gittest.Clone(t, f.bare)
	configmap, _ := gittest.ReadFile(t, f.bare, "main", "apps/hello/base/configmap.yaml")
	kust, _ := gittest.ReadFile(t, f.bare, "main", "apps/hello/overlays/production/kustomization.yaml")
	sneaky := gittest.CommitFiles(t, work, map[string]string{"apps/hello/base/configmap.yaml": configmap + "  EXTRA: \"1\"\n"},
		"Deploy hello 1.4.0 to qa/x\n\nPromotebot-Build: b9\nPromotebot-Project: hello\nPromotebot-Environment: qa/x\n"+
			"Promotebot-Image: registry.example.com/acme/hello:1.4.0\n")
	lowBar := gittest.CommitFiles(t, work, map[string]string{
		"apps/hello/overlays/production/kustomization.yaml": strings.Replace(kust, "1.5.0", "1.4.0", 1),
	}, "Promote hello 1.4.0 to production\n\nPromotebot-Build: b10\nPromotebot-Project: hello\n"+
		"Promotebot-Environment: production\nPromotebot-Image: registry.example.com/acme/hello:1.4.0\n"+
		"Promotebot-Required-Approvals: 0\nApproved-by: Ada <slack:UQA1> 2026-01-10T10:30:00Z\nPromoted-by: Olga <slack:UOWN1>\n")
	gittest.Push(t, work)

	stdout, _, err := runWith(t, nil, "audit", "--config", f.config, "--check", "--format", "csv", "--since", "2026-01-11")
	if exitCode(err) != 1 {
		t.Fatalf("err %v (exit %d)\nstdout:\n%s", err, exitCode(err), stdout)
	}
	got := findingLines(t, stdout)
	want := []string{
		lowBar[:7] + " too-few-approvals: 1 approval(s), 2 required",
		sneaky[:7] + " not-by-bot: apps/hello/base/configmap.yaml changed by " +
			gittest.AuthorName + " <" + gittest.AuthorEmail + "> without promotebot's trailers",
		sneaky[:7] + " wrong-trailers: production of hello changed (apps/hello/base/configmap.yaml), but the trailers say qa/x of hello",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAuditVerify(t *testing.T) {
	f := newAuditFixture(t)
	stdout, stderr, err := runWith(t, nil, "audit", "--repo", f.bare, "--verify", "--keyring", f.keyring, "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var sigs []string
	for _, r := range recs[1:] {
		sigs = append(sigs, r[14])
	}
	good := "good " + f.keyID
	if strings.Join(sigs, ",") != strings.Join([]string{good, good, good, "none"}, ",") ||
		!strings.Contains(stderr, "signatures: 3 good, 1 unsigned, 0 bad") {
		t.Fatalf("signatures %q\nstderr %s", sigs, stderr)
	}
	// The table gets a column; --check reports the unsigned commit (not
	// the root: history starts there).
	stdout, _, err = runWith(t, nil, "audit", "--repo", f.bare, "--verify", "--keyring", f.keyring, "--env", "qa")
	if err != nil || !strings.HasSuffix(strings.Split(stdout, "\n")[0], "COMMIT   SIGNATURE") ||
		!strings.HasSuffix(strings.TrimSpace(stdout), f.qa[:7]+"  "+good) {
		t.Fatalf("err %v\n%s", err, stdout)
	}

	other, err := openpgp.NewEntity("someone", "", "x@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	otherRing := filepath.Join(t.TempDir(), "other.asc")
	gittest.WriteArmoredKey(t, otherRing, openpgp.PublicKeyType, other, false)
	stdout, _, err = runWith(t, nil, "audit", "--repo", f.bare, "--verify", "--keyring", otherRing, "--check", "--format", "json",
		"--env", "qa")
	if exitCode(err) != 1 {
		t.Fatalf("err %v", err)
	}
	var finding history.Finding
	if jerr := json.Unmarshal([]byte(stdout), &finding); jerr != nil || finding.Rule != history.RuleBadSignature || finding.Commit != f.qa {
		t.Fatalf("finding %+v (%v) from\n%s", finding, jerr, stdout)
	}
}

func TestAuditCredentialsFromEnv(t *testing.T) {
	f := newAuditFixture(t)
	srv := gittest.NewServer(t, filepath.Dir(f.bare), "auditor", "s3cret-pass")
	config := filepath.Join(t.TempDir(), "config.yaml")
	data, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(string(data), "repo: "+f.bare, "repo: "+srv.RepoURL(f.bare), 1)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PROMOTEBOT_CONFIG": config, "PROMOTEBOT_GIT_USERNAME": "auditor", "PROMOTEBOT_GIT_PASSWORD": "s3cret-pass"}
	stdout, _, err := runWith(t, env, "audit", "--env", "production", "--until", "2026-01-31")
	if err != nil || strings.Count(stdout, "\n") != 3 {
		t.Fatalf("err %v\n%s", err, stdout)
	}
	env["PROMOTEBOT_GIT_PASSWORD"] = "wrong-pass"
	if _, _, err := runWith(t, env, "audit"); err == nil || strings.Contains(err.Error(), "wrong-pass") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestAuditUsageErrors(t *testing.T) {
	f := newAuditFixture(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "yesterday"}, `--since: "yesterday" is neither RFC 3339`},
		{[]string{"--until", "2026-13-01"}, "--until: "},
		{[]string{"--since", "2026-02-01", "--until", "2026-01-01"}, "is before --since"},
		{[]string{"--format", "xml"}, `--format "xml": want table, json, csv or html`},
		{[]string{"--env", "staging"}, `--env "staging"`},
		{[]string{"--verify"}, "--verify and --keyring FILE go together"},
		{[]string{"--keyring", f.keyring}, "--verify and --keyring FILE go together"},
	} {
		_, _, err := runWith(t, nil, append([]string{"audit", "--repo", f.bare}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 2 {
			t.Errorf("%v: err %v (exit %d), want %q and exit 2", tc.args, err, exitCode(err), tc.want)
		}
	}
	if _, _, err := runWith(t, nil, "audit"); err == nil || !strings.Contains(err.Error(), "give --repo PATH_OR_URL or --config FILE") {
		t.Errorf("no repo: %v", err)
	}
}

func TestAuditCleansWhatCommitsSay(t *testing.T) {
	bare := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	work := gittest.Clone(t, bare)
	gittest.CommitFiles(t, work, map[string]string{"apps/hello/notes.txt": "x\n"},
		"Deploy\n\nPromotebot-Build: b1\nPromotebot-Project: hello\nPromotebot-Environment: qa/x\n"+
			"Promotebot-Source: \x1b[2J\x1b]8;;https://evil.example.com\x07click\tme\u202e\n"+
			"Promoted-by: =HYPERLINK(\"https://evil.example.com\") <slack:UEVE>\n")
	gittest.Push(t, work)
	// Wide, so that no cell is elided; the default table cleans the same way.
	stdout, _, err := runWith(t, nil, "audit", "--repo", bare, "--env", "qa", "--wide")
	if err != nil {
		t.Fatal(err)
	}
	if row := strings.Split(stdout, "\n")[1]; !strings.Contains(row, "  ?[2J?]8;;https://evil.example.com?click?me?  ") {
		t.Fatalf("table row %q", row)
	}
	stdout, _, err = runWith(t, nil, "audit", "--repo", bare, "--env", "qa")
	if err != nil {
		t.Fatal(err)
	}
	if row := strings.Split(stdout, "\n")[1]; !strings.Contains(row, "  ?[2J?]8;;") || strings.ContainsFunc(row, unicode.IsControl) {
		t.Fatalf("table row %q", row)
	}
	stdout, _, err = runWith(t, nil, "audit", "--repo", bare, "--env", "qa", "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if recs[1][8] != `'=HYPERLINK("https://evil.example.com") <slack:UEVE>` || strings.ContainsRune(recs[1][6], '\x1b') {
		t.Fatalf("csv row %q", recs[1])
	}
}

// realisticHistory is a config repository as a busy team's bot leaves it,
// written by the real bot code: long branch names, full commit hashes, CI
// links, images pinned by digest, several approvers with full names, a
// promotion merged through a pull request, and a person's edit of
// production. It returns the bare repository and the CI and PR links.
func realisticHistory(t *testing.T) (bare, ciLink, prLink string) {
	t.Helper()
	bare = gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	repo, err := clone.Open(context.Background(), clone.Options{
		URL: bare, Dir: filepath.Join(t.TempDir(), "clone"),
		Author: clone.Signature{Name: "promotebot", Email: "promotebot@example.com"},
		Now: func() time.Time {
			at = at.Add(17 * time.Minute)
			return at
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	cr := gitops.NewConfigRepo(repo)
	p := promote.Project{ID: "hello-service", URL: "https://hello.example.com",
		Image: "registry.example.com/acme/hello", Path: "apps/hello", RequiredApprovals: 2}
	ciLink = "https://github.com/acme/hello-service/actions/runs/12345678901/job/34567890123"
	people := []promote.Approval{
		{User: "U01ADALOVELACE", Name: "Ada Lovelace", Verdict: promote.Approve},
		{User: "U02GRACEHOPPER", Name: "Grace Hopper", Verdict: promote.Approve},
		{User: "U03MHAMILTON", Name: "Margaret Hamilton", Verdict: promote.Approve},
	}
	promoter := promote.Person{ID: "U04OLGA", Name: "Olga Ladyzhenskaya"}
	ctx := context.Background()
	var last promote.Build
	for i, target := range []string{
		"feature/JIRA-1234-remember-me-on-login",
		"bugfix/JIRA-2345-session-cookie-expiry",
		"release/2026.03",
	} {
		b := promote.Build{ID: fmt.Sprintf("01JNZ4Q8W3K5V7X9B%d", i), Project: p.ID, Kind: promote.KindBranch, Target: target,
			Image:  fmt.Sprintf("registry.example.com/acme/hello:2026.03.%d-rc.1@sha256:%s", i, strings.Repeat(fmt.Sprint(i), 64)),
			Commit: strings.Repeat(fmt.Sprintf("%x", 10+i), 40), BuildURL: ciLink, Author: "U05DEV"}
		if _, err := cr.DeployQA(ctx, p, b); err != nil {
			t.Fatal(err)
		}
		approvals := append([]promote.Approval(nil), people...)
		for j := range approvals {
			approvals[j].At = at.Add(time.Duration(j) * time.Minute)
		}
		if _, err := cr.Promote(ctx, p, b, approvals, promoter); err != nil {
			t.Fatal(err)
		}
		last = b
	}

	// A promotion merged through a pull request, as GitHub merges it with
	// the bot's message.
	last.ID, last.Image = "01JNZ4Q8W3K5V7X9BPR", "registry.example.com/acme/hello:2026.03.9"
	branch := "promotebot/" + p.ID + "/" + last.ID
	approvals := append([]promote.Approval(nil), people...)
	for j := range approvals {
		approvals[j].At = at.Add(time.Duration(j) * time.Minute)
	}
	pc, err := cr.PromoteBranch(ctx, p, last, approvals, promoter, branch)
	if err != nil {
		t.Fatal(err)
	}
	prLink = "https://github.com/acme/deploy-config/pull/1234"
	work := gittest.Clone(t, bare)
	gittest.Git(t, work, "fetch", "-q", "origin", branch)
	gittest.Git(t, work, "merge", "-q", "--no-ff", "-m", "Merge pull request #1234 from acme/"+branch+"\n\nMerges "+prLink+".\n\n"+pc.Trailers, "FETCH_HEAD")

	// A person's edit of production, without trailers.
	gittest.CommitFiles(t, work, map[string]string{"apps/hello/overlays/production/notes.txt": "hotfix\n"},
		"Hotfix the production overlay by hand during the incident")
	gittest.Push(t, work)
	return bare, ciLink, prLink
}

// TestAuditTableFits120Columns: on a realistic history the default table
// fits 120 columns, one line per change, while --wide shows every field in
// full, the CI link and the pull request's URL among them, and json keeps
// the link too.
func TestAuditTableFits120Columns(t *testing.T) {
	bare, ciLink, prLink := realisticHistory(t)
	for _, verify := range []bool{false, true} {
		args := []string{"audit", "--repo", bare}
		if verify {
			// A keyring that signed none of them: the column is there all the same.
			_, keyring := newKeyring(t, t.TempDir())
			args = append(args, "--verify", "--keyring", keyring)
		}
		table, _, err := runWith(t, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		wide, _, err := runWith(t, nil, append(args, "--wide")...)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
		wideLines := strings.Split(strings.TrimSuffix(wide, "\n"), "\n")
		// The sample repository's root, three QA deployments, three direct
		// promotions, a merged pull request and a person's edit; and headers.
		if len(lines) != 10 || len(wideLines) != 10 {
			t.Fatalf("verify %v: %d lines, %d wide, want 10:\n%s\n%s", verify, len(lines), len(wideLines), table, wide)
		}
		widest := 0
		for _, l := range wideLines {
			widest = max(widest, utf8.RuneCountInString(l))
		}
		if widest <= tableWidth {
			t.Fatalf("verify %v: the history is not wide enough to test fitting (%d columns):\n%s", verify, widest, wide)
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > tableWidth {
				t.Errorf("verify %v: line of %d columns:\n%s", verify, n, l)
			}
		}
		if strings.Contains(table, ciLink) || strings.Contains(table, prLink) || !strings.Contains(table, "#1234") {
			t.Errorf("verify %v: default table has a link, or no PR number:\n%s", verify, table)
		}
		if !strings.Contains(wide, "  "+ciLink+"  ") || !strings.Contains(wide, "  "+prLink+"  ") ||
			!strings.Contains(wide, "Grace Hopper (2026-03-02") {
			t.Errorf("verify %v: --wide lacks the CI link, the PR or an approval in full:\n%s", verify, wide)
		}
	}
	js, _, err := runWith(t, nil, "audit", "--repo", bare, "--format", "json", "--env", "production")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js, ciLink) || !strings.Contains(js, prLink) {
		t.Errorf("json lacks the CI link or the PR:\n%s", js)
	}
}

func TestAuditCells(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
	}{
		{"end", elideEnd("Olga Ladyzhenskaya", 10), "Olga Lady…"},
		{"end fits", elideEnd("Olga", 4), "Olga"},
		{"middle", elideMiddle("2026.03.2-rc.1", 10), "2026.…rc.1"},
		{"source keeps its commit", elideBefore(" @ ")("feature/JIRA-1234 @ 0123abc", 16), "featu… @ 0123abc"},
		{"source too narrow for its commit", elideBefore(" @ ")("feature/JIRA-1234 @ 0123abc", 8), "feature…"},
		{"approvers keep their count", elideBefore(" +")("Ada Lovelace +2", 10), "Ada Lo… +2"},
		{"source: kind, link and long commit go", shortSource("branch feature/login @ 0123456789abcdef https://ci.example.com/7"), "feature/login @ 0123456"},
		{"source of a tag without commit", shortSource("tag v1.5.0"), "v1.5.0"},
		{"split source", strings.Join(func() []string { a, b := splitSource("tag v1 https://ci/1"); return []string{a, b} }(), "|"), "tag v1|https://ci/1"},
		{"source without link", strings.Join(func() []string { a, b := splitSource("tag v1 @ abc"); return []string{a, b} }(), "|"), "tag v1 @ abc|"},
		{"tag", imageVersion("registry.example.com:5000/acme/hello:1.4.0@sha256:0123456789abcdef"), "1.4.0"},
		{"digest only", imageVersion("registry.example.com:5000/acme/hello@sha256:0123456789abcdef"), "@sha256:0123456789ab"},
		{"github pr", shortPR("https://github.com/acme/deploy-config/pull/1234"), "#1234"},
		{"pr number", shortPR("#12"), "#12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// findingLines reads --check --format csv, after checking its header:
// "<short commit> <rule>: <detail>" per finding.
func findingLines(t *testing.T, out string) []string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "commit,time,project,environment,rule,detail" {
		t.Fatalf("findings without their header:\n%s", out)
	}
	var got []string
	for _, r := range recs[1:] {
		got = append(got, r[0][:7]+" "+r[4]+": "+r[5])
	}
	return got
}

// TestAuditRollback: a rollback the bot made is listed as one (table, wide
// table, json) and --check accepts it without approvals, since its image
// was in production before; a rollback to an image production never ran is
// flagged.
func TestAuditRollback(t *testing.T) {
	f := newAuditFixture(t)
	repo, err := clone.Open(context.Background(), clone.Options{
		URL: f.bare, Dir: filepath.Join(t.TempDir(), "clone"),
		Author: clone.Signature{Name: "promotebot", Email: "bot@example.com"},
		Now:    func() time.Time { return time.Date(2026, 1, 10, 13, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	hello := promote.Project{ID: "hello", URL: "https://hello.example.com", Image: "registry.example.com/acme/hello", Path: "apps/hello"}
	b2 := promote.Build{ID: "b2", Project: "hello", Image: "registry.example.com/acme/hello:1.5.0"}
	rollback, err := gitops.NewConfigRepo(repo).Rollback(context.Background(), hello, promote.RollbackChange{Of: b2,
		Image: "registry.example.com/acme/hello:1.4.0", By: promote.Person{ID: "UOWN1", Name: "Olga"},
		Reason: "5xx after the deploy", At: time.Date(2026, 1, 10, 12, 55, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	only := []string{"--since", "2026-01-10T13:00:00Z", "--until", "2026-01-10T13:00:00Z"}

	stdout, _, err := runWith(t, nil, append([]string{"audit", "--repo", f.bare}, only...)...)
	want := "" +
		"TIME (UTC)        PROJECT  ENV         IMAGE  SOURCE          APPROVED BY  PROMOTED BY  PR  COMMIT\n" +
		"2026-01-10 13:00  hello    production  1.4.0  rollback of b2  -            Olga         -   " + rollback[:7] + "\n"
	if err != nil || stdout != want {
		t.Fatalf("err %v\nstdout\n%s\nwant\n%s", err, stdout, want)
	}
	stdout, _, err = runWith(t, nil, append([]string{"audit", "--repo", f.bare, "--wide"}, only...)...)
	if err != nil || !strings.Contains(stdout, "  rollback of b2: 5xx after the deploy  ") {
		t.Fatalf("err %v\n--wide:\n%s", err, stdout)
	}
	stdout, _, err = runWith(t, nil, append([]string{"audit", "--repo", f.bare, "--format", "json"}, only...)...)
	var got history.Change
	if err != nil || json.Unmarshal([]byte(stdout), &got) != nil || got.Commit != rollback || got.RollbackOf != "b2" ||
		got.Reason != "5xx after the deploy" || !got.RollbackPinned || got.Build != "" || !got.BotMade ||
		got.Image != "registry.example.com/acme/hello:1.4.0" || got.PromotedBy.SlackID != "UOWN1" {
		t.Fatalf("err %v\njson:\n%s", err, stdout)
	}
	if !strings.Contains(stdout, `"rollbackOf":"b2","reason":"5xx after the deploy","rollbackPinned":true,`) {
		t.Fatalf("json fields:\n%s", stdout)
	}

	// --check: no approvals needed, 1.4.0 ran in production before.
	_, stderr, err := runWith(t, nil, append([]string{"audit", "--config", f.config, "--check"}, only...)...)
	if err != nil || !strings.Contains(stderr, "audit: no findings in 1 production change(s) checked") {
		t.Fatalf("err %v\nstderr:\n%s", err, stderr)
	}

	// A rollback to an image production never ran, with forged approvals.
	work := gittest.Clone(t, f.bare)
	kust, _ := gittest.ReadFile(t, f.bare, "main", "apps/hello/overlays/production/kustomization.yaml")
	unknown := gittest.CommitFiles(t, work, map[string]string{
		"apps/hello/overlays/production/kustomization.yaml": strings.Replace(kust, `"1.4.0"`, `"1.9.0"`, 1),
	}, "Roll back hello to 1.9.0\n\nPromotebot-Rollback-Of: b2\nPromotebot-Project: hello\nPromotebot-Environment: production\n"+
		"Promotebot-Image: registry.example.com/acme/hello:1.9.0\nPromoted-by: Olga <slack:UOWN1>\n"+
		"Approved-by: Ada <slack:UQA1> 2026-01-10T10:30:00Z\nApproved-by: Bea <slack:UQA2> 2026-01-10T10:31:00Z\n")
	gittest.Push(t, work)
	stdout, _, err = runWith(t, nil, "audit", "--config", f.config, "--check", "--format", "csv", "--since", "2026-01-10T13:00:00Z")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "1 finding(s) in 2 production change(s) checked") {
		t.Fatalf("err %v (exit %d)\nstdout:\n%s", err, exitCode(err), stdout)
	}
	wantFinding := unknown[:7] + " rollback-to-unknown-image: a rollback of b2 to registry.example.com/acme/hello:1.9.0, " +
		"which no earlier production change of hello pinned"
	if got := findingLines(t, stdout); len(got) != 1 || got[0] != wantFinding {
		t.Fatalf("findings %q\nwant %q", got, wantFinding)
	}
}

// TestAuditTeardown: the bot's teardown of a QA environment is listed as
// one (table, json, csv) and passes --check; a commit with teardown
// trailers that also changes production is flagged.
func TestAuditTeardown(t *testing.T) {
	f := newAuditFixture(t)
	repo, err := clone.Open(context.Background(), clone.Options{
		URL: f.bare, Dir: filepath.Join(t.TempDir(), "clone"),
		Author: clone.Signature{Name: "promotebot", Email: "bot@example.com"},
		Now:    func() time.Time { return time.Date(2026, 1, 10, 13, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	hello := promote.Project{ID: "hello", URL: "https://hello.example.com", Image: "registry.example.com/acme/hello", Path: "apps/hello"}
	env := promote.Environment{Project: "hello", Kind: promote.KindBranch, Target: "feature/login", Name: "qa/branch-feature-login",
		BuildID: "b1"}
	teardown, err := gitops.NewConfigRepo(repo).TearDownQA(context.Background(), hello, env, "branch-deleted",
		time.Date(2026, 1, 10, 12, 59, 0, 0, time.UTC))
	if err != nil || teardown == "" {
		t.Fatalf("TearDownQA = %q, %v", teardown, err)
	}
	only := []string{"--since", "2026-01-10T13:00:00Z", "--until", "2026-01-10T13:00:00Z"}

	stdout, _, err := runWith(t, nil, append([]string{"audit", "--repo", f.bare}, only...)...)
	want := "" +
		"TIME (UTC)        PROJECT  ENV                    IMAGE  SOURCE                    APPROVED BY  PROMOTED BY  PR  COMMIT\n" +
		"2026-01-10 13:00  hello    qa/branch-feature-lo…  -      teardown: branch-deleted  -            -            -   " +
		teardown[:7] + "\n"
	if err != nil || stdout != want {
		t.Fatalf("err %v\nstdout\n%s\nwant\n%s", err, stdout, want)
	}
	stdout, _, err = runWith(t, nil, append([]string{"audit", "--repo", f.bare, "--format", "json"}, only...)...)
	var got history.Change
	if err != nil || json.Unmarshal([]byte(stdout), &got) != nil || got.Commit != teardown || got.Teardown != "branch-deleted" ||
		!got.TeardownRemoved || !got.BotMade || got.Build != "" || got.Environment != "qa/branch-feature-login" ||
		got.Subject != "Tear down qa/branch-feature-login of hello" {
		t.Fatalf("err %v\njson:\n%s", err, stdout)
	}
	if !strings.HasSuffix(stdout, `"teardown":"branch-deleted","teardownRemoved":true}`+"\n") {
		t.Fatalf("json fields:\n%s", stdout)
	}
	stdout, _, err = runWith(t, nil, append([]string{"audit", "--repo", f.bare, "--format", "csv"}, only...)...)
	recs, cerr := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil || cerr != nil || len(recs) != 2 || strings.Join(recs[1][len(recs[1])-4:], ",") != "branch-deleted,true,," {
		t.Fatalf("err %v %v\ncsv:\n%s", err, cerr, stdout)
	}
	_, stderr, err := runWith(t, nil, append([]string{"audit", "--config", f.config, "--check"}, only...)...)
	if err != nil || !strings.Contains(stderr, "audit: no findings") {
		t.Fatalf("err %v\nstderr:\n%s", err, stderr)
	}

	// A person's commit with teardown trailers that edits production.
	work := gittest.Clone(t, f.bare)
	kust, _ := gittest.ReadFile(t, f.bare, "main", "apps/hello/overlays/production/kustomization.yaml")
	forged := gittest.CommitFiles(t, work, map[string]string{
		"apps/hello/overlays/production/kustomization.yaml": strings.Replace(kust, "count: 3", "count: 5", 1),
	}, "Tear down qa/branch-feature-login of hello\n\nPromotebot-Project: hello\n"+
		"Promotebot-Environment: qa/branch-feature-login\nPromotebot-Teardown: expired\n")
	gittest.Push(t, work)
	stdout, _, err = runWith(t, nil, "audit", "--config", f.config, "--check", "--format", "csv", "--since", "2026-01-10T13:00:00Z")
	if exitCode(err) != 1 {
		t.Fatalf("err %v (exit %d)\nstdout:\n%s", err, exitCode(err), stdout)
	}
	wantFindings := []string{
		forged[:7] + " teardown-beyond-folder: a teardown (expired) that does not only remove the folder of " +
			"qa/branch-feature-login of hello: it changed more, or removed nothing",
		forged[:7] + " not-by-bot: apps/hello/overlays/production/kustomization.yaml changed by " +
			gittest.AuthorName + " <" + gittest.AuthorEmail + "> without promotebot's trailers",
		forged[:7] + " wrong-trailers: production of hello changed (apps/hello/overlays/production/kustomization.yaml), " +
			"but the trailers say qa/branch-feature-login of hello",
	}
	if got := findingLines(t, stdout); strings.Join(got, "\n") != strings.Join(wantFindings, "\n") {
		t.Fatalf("findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantFindings, "\n"))
	}
}

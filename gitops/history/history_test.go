package history_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/history"
	"github.com/promotebot/promotebot/promote"
)

const prodKustomization = "apps/hello/overlays/production/kustomization.yaml"

// histClock gives the bot's commits fixed times, one hour apart from t0.
type histClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *histClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Hour)
	return c.t
}

// histRepo is a config repository with a history an auditor cares about.
type histRepo struct {
	bare    string
	keyring string            // armored public key of the bot's signing key
	commits map[string]string // name → hash
	times   map[string]time.Time
}

var histT0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// newHistRepo builds, on the sample config repo (its root commit has the
// production overlay):
//
//	qa        bot, signed: build b1 (1.4.0) to qa/branch-feature-login      10:00
//	prod      bot, signed: b1 to production, approved by Ada, by Olga       11:00
//	hotfix    a person changes the production overlay, no trailers
//	base      a person changes only the base: not listed
//	pr-merge  the bot's PR merge (merge method): "Merges <url>." and trailers,
//	          b2 (1.5.0, never in QA), approved and promoted by Olga
//	gh-merge  a person merges PR #9 on GitHub: trailers only on the branch
//	hostile   forged trailers that do not parse
//	qa-wide   trailers claiming a QA environment twice, production second
//	prod2     bot, signed: b1 again with a hostile Slack name               12:00
func newHistRepo(t *testing.T) *histRepo {
	t.Helper()
	h := &histRepo{bare: gittest.NewRemote(t, seed), commits: map[string]string{}, times: map[string]time.Time{}}
	entity, err := openpgp.NewEntity("promotebot", "test", "bot@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gittest.WriteArmoredKey(t, filepath.Join(dir, "key.asc"), openpgp.PrivateKeyType, entity, true)
	gittest.WriteArmoredKey(t, filepath.Join(dir, "pub.asc"), openpgp.PublicKeyType, entity, false)
	key, err := clone.LoadSigningKey(filepath.Join(dir, "key.asc"), "")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "pub.asc"))
	if err != nil {
		t.Fatal(err)
	}
	h.keyring = string(pub)
	clock := &histClock{t: histT0}
	bot := gitops.NewConfigRepo(openClone(t, h.bare, key, clock.now))
	ctx := context.Background()
	b1 := promote.Build{ID: "b1", Project: "hello", Image: "registry.example.com/acme/hello:1.4.0", Kind: promote.KindBranch,
		Target: "feature/login", Commit: "0123abc", BuildURL: "https://ci.example.com/7"}
	qa, err := bot.DeployQA(ctx, helloConfig, b1)
	if err != nil {
		t.Fatal(err)
	}
	h.add("qa", qa.Commit, histT0.Add(time.Hour))
	approvedAt := time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)
	prod, err := bot.Promote(ctx, helloConfig, b1,
		[]promote.Approval{{User: "UQA1", Name: "Ada", Verdict: promote.Approve, At: approvedAt}},
		promote.Person{ID: "UOWN1", Name: "Olga"})
	if err != nil {
		t.Fatal(err)
	}
	h.add("prod", prod, histT0.Add(2*time.Hour))

	work := gittest.Clone(t, h.bare)
	kust, _ := gittest.ReadFile(t, h.bare, "main", prodKustomization)
	h.add("hotfix", gittest.CommitFiles(t, work, map[string]string{
		prodKustomization: strings.Replace(kust, "count: 3", "count: 5", 1),
	}, "Scale hello up\n\nApproved-by: Ada <slack:UQA1> 2025-03-01T10:30:00Z\n\nSigned-off-by: Mallory <m@example.com>\n"), time.Time{})
	h.add("base", gittest.CommitFiles(t, work, map[string]string{"apps/hello/base/extra.txt": "x\n"},
		"Touch the base only"), time.Time{})

	gittest.Git(t, work, "checkout", "-q", "-b", "promotebot/hello/b2")
	trailers2 := "Promotebot-Build: b2\nPromotebot-Project: hello\nPromotebot-Environment: production\n" +
		"Promotebot-Image: registry.example.com/acme/hello:1.5.0\nPromotebot-Source: tag v1.5.0\n" +
		"Approved-by: Olga <slack:UOWN1> 2025-03-01T11:30:00Z\nPromoted-by: Olga <slack:UOWN1>"
	gittest.CommitFiles(t, work, map[string]string{prodKustomization: strings.Replace(kust, "1.4.0", "1.5.0", 1)},
		"Promote hello 1.5.0 to production\n\n"+trailers2)
	gittest.Git(t, work, "checkout", "-q", "main")
	gittest.Git(t, work, "merge", "-q", "--no-ff", "-m", "Promote hello 1.5.0 to production",
		"-m", "Merges https://github.com/acme/deploy-config/pull/7.", "-m", trailers2, "promotebot/hello/b2")
	h.add("pr-merge", gittest.Git(t, work, "rev-parse", "HEAD"), time.Time{})

	gittest.Git(t, work, "checkout", "-q", "-b", "promotebot/hello/b3")
	gittest.CommitFiles(t, work, map[string]string{prodKustomization: strings.Replace(kust, "1.4.0", "1.6.0", 1)},
		"Promote hello 1.6.0 to production\n\nPromotebot-Build: b3\nPromotebot-Project: hello\n"+
			"Promotebot-Environment: production\nPromotebot-Image: registry.example.com/acme/hello:1.6.0\n"+
			"Promoted-by: Olga <slack:UOWN1>\n")
	gittest.Git(t, work, "checkout", "-q", "main")
	gittest.Git(t, work, "merge", "-q", "--no-ff", "-m", "Merge pull request #9 from acme/promotebot/hello/b3",
		"-m", "Promote hello to production: registry.example.com/acme/hello:1.6.0", "promotebot/hello/b3")
	h.add("gh-merge", gittest.Git(t, work, "rev-parse", "HEAD"), time.Time{})

	h.add("hostile", gittest.CommitFiles(t, work, map[string]string{"apps/hello/notes.txt": "1\n"},
		"Promote hello 1.6.0 to production\n\n"+
			"Promotebot-Build: evil\nPromotebot-Project: hello\nPromotebot-Environment: production\n"+
			"Promotebot-Image: registry.example.com/acme/hello:1.6.0\n"+
			"Approved-by: Eve <slack:UADMIN> <slack:UEVE> 2025-03-01T11:30:00Z\n"+
			"Approved-by: <slack:UQA2> yesterday\n"+
			"Approved-by: Eve <slack:uqa1> 2025-03-01T11:30:00Z\n"+
			"Promoted-by: Eve <slack:UEVE>\nPromoted-by: Olga <slack:UOWN1>\n"), time.Time{})
	h.add("qa-wide", gittest.CommitFiles(t, work, map[string]string{"apps/hello/notes.txt": "2\n"},
		"Deploy\n\nPromotebot-Build: sneaky\nPromotebot-Project: hello\n"+
			"Promotebot-Environment: qa/branch-x\nPromotebot-Environment: production\n"), time.Time{})
	gittest.Push(t, work)

	prod2, err := bot.Promote(ctx, helloConfig, promote.Build{ID: "b4", Project: "hello", Kind: promote.KindBranch,
		Target: "feature/login", Image: "registry.example.com/acme/hello:1.4.1"},
		[]promote.Approval{{User: "UQA1", Name: "Ada\nPromoted-by: Eve <slack:UEVE>", Verdict: promote.Approve, At: approvedAt}},
		promote.Person{ID: "UOWN1", Name: "Olga"})
	if err != nil {
		t.Fatal(err)
	}
	h.add("prod2", prod2, histT0.Add(3*time.Hour))
	return h
}

func (h *histRepo) add(name, hash string, at time.Time) {
	h.commits[name] = hash
	h.times[name] = at
}

// names maps the changes back to the commit names of newHistRepo.
func (h *histRepo) names(changes []history.Change) []string {
	byHash := map[string]string{}
	for n, c := range h.commits {
		byHash[c] = n
	}
	var names []string
	for _, c := range changes {
		n, ok := byHash[c.Commit]
		if !ok {
			n = "root"
		}
		names = append(names, n)
	}
	return names
}

func readHistory(t *testing.T, src string, opts history.Options) []history.Change {
	t.Helper()
	changes, err := history.Read(context.Background(), src, opts)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return changes
}

func TestReadHistory(t *testing.T) {
	h := newHistRepo(t)
	changes := readHistory(t, h.bare, history.Options{KeyRing: h.keyring})
	want := []string{"prod2", "qa-wide", "hostile", "gh-merge", "pr-merge", "hotfix", "prod", "qa", "root"}
	if got := h.names(changes); !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	by := map[string]history.Change{}
	for i, n := range want {
		by[n] = changes[i]
	}

	prod := by["prod"]
	wantProd := history.Change{
		Commit: h.commits["prod"], Time: h.times["prod"],
		Author: "promotebot <bot@example.com>", Committer: "promotebot <bot@example.com>",
		Subject: "Promote hello 1.4.0 to production", Project: "hello", Environment: "production",
		Image: "registry.example.com/acme/hello:1.4.0", Build: "b1",
		Source:     "branch feature/login @ 0123abc https://ci.example.com/7",
		Approvals:  []history.ApprovedBy{{Name: "Ada", SlackID: "UQA1", At: time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)}},
		PromotedBy: history.SlackUser{Name: "Olga", SlackID: "UOWN1"},
		Signed:     true, Trailers: true, BotMade: true,
	}
	sig := prod.Signature
	prod.Signature = ""
	if !reflect.DeepEqual(prod, wantProd) {
		t.Errorf("prod\n got %+v\nwant %+v", prod, wantProd)
	}
	if !strings.HasPrefix(sig, "good ") || len(sig) != len("good ")+16 {
		t.Errorf("prod signature %q, want good <key id>", sig)
	}
	other, err := openpgp.NewEntity("someone", "", "x@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	otherPub := filepath.Join(t.TempDir(), "other.asc")
	gittest.WriteArmoredKey(t, otherPub, openpgp.PublicKeyType, other, false)
	otherRing, err := os.ReadFile(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range readHistory(t, h.bare, history.Options{KeyRing: string(otherRing), Env: "production"}) {
		if want := map[bool]string{true: "bad", false: "none"}[c.Signed]; c.Signature != want {
			t.Errorf("%s signed %t: signature %q with another key ring, want %q", c.Commit, c.Signed, c.Signature, want)
		}
	}
	if qa := by["qa"]; qa.Environment != "qa/branch-feature-login" || qa.Image != "registry.example.com/acme/hello:1.4.0" ||
		!qa.BotMade || !qa.QAPinned || qa.Time != h.times["qa"] || qa.Signature != sig {
		t.Errorf("qa %+v", qa)
	}

	// A person's commit changing production, trailer look-alikes in its body
	// and all: listed, with the file, as not the bot's.
	hotfix := by["hotfix"]
	if hotfix.Trailers || hotfix.BotMade || hotfix.Project != "hello" || hotfix.Environment != "production" ||
		!slices.Equal(hotfix.Paths, []string{prodKustomization}) || len(hotfix.Approvals) != 0 ||
		hotfix.Author != gittest.AuthorName+" <"+gittest.AuthorEmail+">" || hotfix.Signature != "none" || hotfix.Signed {
		t.Errorf("hotfix %+v", hotfix)
	}
	rootPaths := []string{"apps/hello/base/configmap.yaml", "apps/hello/base/deployment.yaml", "apps/hello/base/kustomization.yaml",
		"apps/hello/base/service.yaml", prodKustomization}
	if root := by["root"]; !root.Root || root.Trailers || !slices.Equal(root.Paths, rootPaths) {
		t.Errorf("root %+v", root)
	}

	pr := by["pr-merge"]
	if pr.PR != "https://github.com/acme/deploy-config/pull/7" || !pr.BotMade || pr.Build != "b2" ||
		pr.PromotedBy.SlackID != "UOWN1" || len(pr.Approvals) != 1 || pr.Subject != "Promote hello 1.5.0 to production" {
		t.Errorf("pr-merge %+v", pr)
	}
	gh := by["gh-merge"]
	if gh.PR != "#9" || gh.Build != "b3" || gh.Environment != "production" || gh.Image != "registry.example.com/acme/hello:1.6.0" ||
		gh.Commit != h.commits["gh-merge"] {
		t.Errorf("gh-merge %+v", gh)
	}

	hostile := by["hostile"]
	if len(hostile.Approvals) != 0 || hostile.PromotedBy != (history.SlackUser{Name: "Eve", SlackID: "UEVE"}) ||
		len(hostile.Malformed) != 4 {
		t.Errorf("hostile: approvals %+v, promoted by %+v, malformed %q", hostile.Approvals, hostile.PromotedBy, hostile.Malformed)
	}
	if wide := by["qa-wide"]; wide.Environment != "qa/branch-x" ||
		!slices.Equal(wide.Malformed, []string{"Promotebot-Environment: production (repeated)"}) {
		t.Errorf("qa-wide %+v", wide)
	}
	// The bot flattens a Slack name that tries to add a trailer.
	if p2 := by["prod2"]; len(p2.Approvals) != 1 || p2.Approvals[0].Name != "AdaPromoted-by: Eve slack:UEVE" ||
		p2.Approvals[0].SlackID != "UQA1" || p2.PromotedBy.SlackID != "UOWN1" || len(p2.Malformed) != 0 {
		t.Errorf("prod2 %+v", p2)
	}
}

func TestReadHistoryFilters(t *testing.T) {
	h := newHistRepo(t)
	for _, tc := range []struct {
		name string
		opts history.Options
		want []string
	}{
		{"production", history.Options{Env: "production"},
			[]string{"prod2", "hostile", "gh-merge", "pr-merge", "hotfix", "prod", "root"}},
		{"qa prefix", history.Options{Env: "qa/"}, []string{"qa-wide", "qa"}},
		{"qa", history.Options{Env: "qa"}, []string{"qa-wide", "qa"}},
		{"one qa env", history.Options{Env: "qa/branch-feature-login"}, []string{"qa"}},
		{"other project", history.Options{Project: "other"}, nil},
		// The bot's commits name hello, which this configuration does not
		// put in apps/hello: their production changes of web are not covered.
		{"project by path", history.Options{Project: "web", Env: "production",
			ProjectPaths: map[string]string{"apps/hello": "web"}}, []string{"prod2", "gh-merge", "pr-merge", "hotfix", "prod", "root"}},
		{"since until", history.Options{Since: h.times["prod"], Until: h.times["prod2"]}, []string{"prod2", "prod"}},
		{"until", history.Options{Until: h.times["qa"]}, []string{"qa"}},
		{"empty range", history.Options{Since: h.times["qa"].Add(time.Minute), Until: h.times["prod"].Add(-time.Minute)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.names(readHistory(t, h.bare, tc.opts)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadHistorySources(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	work := gittest.Clone(t, bare)
	gittest.CommitFiles(t, work, map[string]string{"apps/hello/overlays/qa/x/kustomization.yaml": "resources: []\n"},
		"Deploy\n\nPromotebot-Build: b1\nPromotebot-Project: hello\nPromotebot-Environment: qa/x\n")
	gittest.Push(t, work)
	srv := gittest.NewServer(t, filepath.Dir(bare), "auditor", "s3cret-pass")
	for name, src := range map[string]string{
		"bare": bare, "work tree": work, "file url": "file://" + bare, "http": srv.RepoURL(bare),
	} {
		t.Run(name, func(t *testing.T) {
			changes := readHistory(t, src, history.Options{Auth: clone.Auth{Username: "auditor", Password: "s3cret-pass"}})
			if len(changes) != 2 || changes[0].Environment != "qa/x" || !changes[1].Root {
				t.Fatalf("changes %+v", changes)
			}
		})
	}
	_, err := history.Read(context.Background(), srv.RepoURL(bare), history.Options{
		Auth: clone.Auth{Username: "auditor", Password: "wrong-password"}})
	if err == nil || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := history.Read(context.Background(), bare, history.Options{Branch: "nope"}); err == nil {
		t.Fatal("a missing branch is an error")
	}
	if _, err := history.Read(context.Background(), bare, history.Options{KeyRing: "not a key"}); err == nil {
		t.Fatal("a bad key ring is an error")
	}
}

func TestCheckHistory(t *testing.T) {
	h := newHistRepo(t)
	changes := readHistory(t, h.bare, history.Options{KeyRing: h.keyring})
	findings := history.Check(changes, history.CheckOptions{RequiredApprovals: map[string]int{"hello": 1}})
	var got []string
	for _, f := range findings {
		got = append(got, h.names([]history.Change{{Commit: f.Commit}})[0]+" "+f.Rule)
	}
	want := []string{
		"prod2 never-in-qa",
		"qa-wide unsigned",
		"qa-wide malformed-trailer",
		"hostile unsigned",
		"hostile malformed-trailer", "hostile malformed-trailer", "hostile malformed-trailer", "hostile malformed-trailer",
		"hostile too-few-approvals",
		"hostile never-in-qa",
		"gh-merge unsigned",
		"gh-merge too-few-approvals",
		"gh-merge never-in-qa",
		"pr-merge unsigned",
		"pr-merge promoter-approved",
		"pr-merge never-in-qa",
		"hotfix unsigned",
		"hotfix not-by-bot",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f := findings[len(findings)-1]; f.Detail != prodKustomization+" changed by "+gittest.AuthorName+" <"+gittest.AuthorEmail+
		"> without promotebot's trailers" || f.Project != "hello" || f.Environment != "production" {
		t.Errorf("hotfix finding %+v", f)
	}

	// Two approvals required; only what Only picks is checked, but all of
	// the history counts as the QA record.
	// The policy the commit recorded (Promotebot-Required-Approvals: 0, the
	// test project's) wins over the configuration of today.
	only := history.Options{Since: h.times["prod"], Until: h.times["prod"]}
	if findings := history.Check(changes, history.CheckOptions{DefaultApprovals: 2, Only: only.Matches}); len(findings) != 0 {
		t.Fatalf("findings with the recorded policy of 1: %+v", findings)
	}
	for i := range changes {
		if changes[i].Commit == h.commits["prod"] {
			if changes[i].RequiredApprovals != 0 {
				t.Fatalf("prod commit's recorded policy = %d, want 0", changes[i].RequiredApprovals)
			}
			changes[i].RequiredApprovals = -1 // an older commit, without the trailer
		}
	}
	findings = history.Check(changes, history.CheckOptions{DefaultApprovals: 2, Only: only.Matches})
	if len(findings) != 1 || findings[0].Rule != history.RuleTooFewApprovals || findings[0].Detail != "1 approval(s), 2 required" ||
		findings[0].Commit != h.commits["prod"] || !findings[0].Time.Equal(h.times["prod"]) {
		t.Fatalf("findings %+v", findings)
	}
}

func TestCheckHistoryImageByDigest(t *testing.T) {
	const digest = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	changes := []history.Change{ // newest first
		{Commit: "p", Project: "hello", Environment: "production", Image: "r.example.com/a/hello@" + digest, Trailers: true, BotMade: true,
			Approvals: []history.ApprovedBy{{SlackID: "UQA1"}}, PromotedBy: history.SlackUser{SlackID: "UOWN1"}},
		{Commit: "q", Project: "hello", Environment: "qa/x", Image: "r.example.com/a/hello:1.0@" + digest, Trailers: true, BotMade: true,
			QAPinned: true},
	}
	if f := history.Check(changes, history.CheckOptions{}); len(f) != 0 {
		t.Fatalf("findings %+v", f)
	}
	// A QA change whose commit did not pin the image proves nothing.
	changes[1].QAPinned = false
	if f := history.Check(changes, history.CheckOptions{}); len(f) != 1 || f[0].Rule != history.RuleNeverInQA {
		t.Fatalf("not pinned: findings %+v", f)
	}
	changes[1].QAPinned, changes[1].Project = true, "other"
	if f := history.Check(changes, history.CheckOptions{}); len(f) != 1 || f[0].Rule != history.RuleNeverInQA {
		t.Fatalf("findings %+v", f)
	}
}

// TestCheckHistoryAuthorApproved: an approver who wrote the build, by the
// Promotebot-Author trailer (a Slack id, a name or "Name <email>").
func TestCheckHistoryAuthorApproved(t *testing.T) {
	for author, want := range map[string]bool{
		"UQA1": true, "ada": true, "Ada <ada@example.com>": true, "bob@example.com": false, "": false,
	} {
		changes := []history.Change{ // newest first
			{Commit: "p", Project: "hello", Environment: "production", Image: "r.example.com/a/hello:1", Trailers: true, BotMade: true,
				BuildAuthor: author, RequiredApprovals: 1, Approvals: []history.ApprovedBy{{Name: "Ada", SlackID: "UQA1"}},
				PromotedBy: history.SlackUser{SlackID: "UOWN1"}},
			{Commit: "q", Project: "hello", Environment: "qa/x", Image: "r.example.com/a/hello:1", Trailers: true, BotMade: true,
				QAPinned: true},
		}
		findings := history.Check(changes, history.CheckOptions{DefaultApprovals: 1})
		got := len(findings) == 1 && findings[0].Rule == history.RuleAuthorApproved
		if got != want || (!want && len(findings) != 0) {
			t.Errorf("author %q: findings %+v, want author-approved %v", author, findings, want)
		}
	}
}

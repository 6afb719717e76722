package history_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/history"
)

const (
	helloBase      = "apps/hello/base/"
	helloComponent = "apps/hello/components/debug/kustomization.yaml"
	helloQA        = "apps/hello/overlays/qa/x/kustomization.yaml"
	helloImage     = "registry.example.com/acme/hello"
)

// prodTrailers are a production promotion's trailers as the bot writes
// them, approved by Ada and promoted by Olga.
func prodTrailers(project, tag string, required int) string {
	return fmt.Sprintf("Promotebot-Build: b-%[1]s-%[2]s\nPromotebot-Project: %[1]s\nPromotebot-Environment: production\n"+
		"Promotebot-Image: registry.example.com/acme/%[1]s:%[2]s\nPromotebot-Required-Approvals: %[3]d\n"+
		"Approved-by: Ada <slack:UQA1> 2025-03-01T10:30:00Z\nPromoted-by: Olga <slack:UOWN1>\n", project, tag, required)
}

// qaTrailers are a QA deployment's trailers as the bot writes them.
func qaTrailers(tag string) string {
	return "Promotebot-Build: q-" + tag + "\nPromotebot-Project: hello\nPromotebot-Environment: qa/x\n" +
		"Promotebot-Image: " + helloImage + ":" + tag + "\n"
}

// qaKustomization pins tag in hello's QA overlay x.
func qaKustomization(tag string) string {
	return "resources:\n- ../../../base\nimages:\n- name: " + helloImage + "\n  newTag: \"" + tag + "\"\n"
}

// mergeBranch commits files with msg on a new branch and merges it into
// main with GitHub's merge message; extra, when not empty, is changed in
// the merge itself (an "evil merge").
func mergeBranch(t *testing.T, work, branch string, files map[string]string, msg string, extra map[string]string) string {
	t.Helper()
	gittest.Git(t, work, "checkout", "-q", "-b", branch)
	gittest.CommitFiles(t, work, files, msg)
	gittest.Git(t, work, "checkout", "-q", "main")
	gittest.Git(t, work, "merge", "-q", "--no-ff", "--no-commit", branch)
	return gittest.CommitFiles(t, work, extra, "Merge pull request #11 from acme/"+branch+"\n\n"+subjectOf(msg))
}

func subjectOf(msg string) string { line, _, _ := strings.Cut(msg, "\n"); return line }

// TestCheckJudgesWhatCommitsChange: every production change counts,
// whatever its path and whatever its message claims (issue 13 item 1).
func TestCheckJudgesWhatCommitsChange(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	work := gittest.Clone(t, bare)
	read := func(p string) string {
		s, ok := gittest.ReadFile(t, work, "HEAD", p)
		if !ok {
			t.Fatalf("no %s", p)
		}
		return s
	}
	prod := read(prodKustomization)
	setup, err := gittest.AppFiles("web")
	if err != nil {
		t.Fatal(err)
	}
	setup[helloComponent] = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonAnnotations:\n  debug: \"off\"\n"
	setup[prodKustomization] = prod + "components:\n  - ../../components/debug\n"
	setup[helloQA] = qaKustomization("1.0.0")
	gittest.CommitFiles(t, work, setup, "Set up web, a component and a QA overlay")
	withTag := func(tag string) string {
		return strings.Replace(read(prodKustomization), "newTag: \""+tagOf(read(prodKustomization))+"\"", "newTag: \""+tag+"\"", 1)
	}
	configmap := read(helloBase + "configmap.yaml")
	baseKust := read(helloBase + "kustomization.yaml")

	steps := []struct {
		name string
		do   func() string
		want []string // "<project> <rule>", sorted
	}{
		{"base", func() string {
			return gittest.CommitFiles(t, work, map[string]string{helloBase + "configmap.yaml": configmap + "  EXTRA: \"1\"\n"}, "Tune the base")
		}, []string{"hello not-by-bot"}},
		{"component", func() string {
			return gittest.CommitFiles(t, work, map[string]string{helloComponent: strings.Replace(read(helloComponent), "off", "on", 1)},
				"Debug on")
		}, []string{"hello not-by-bot"}},
		{"unread file", func() string {
			return gittest.CommitFiles(t, work, map[string]string{"apps/hello/README.md": "hello\n"}, "Document hello")
		}, nil},
		{"qa by a person", func() string {
			return gittest.CommitFiles(t, work, map[string]string{helloQA: qaKustomization("1.0.1")}, "Try 1.0.1 in QA")
		}, nil},
		{"qa trailers on a base change", func() string {
			return gittest.CommitFiles(t, work, map[string]string{helloBase + "configmap.yaml": configmap + "  EXTRA: \"2\"\n"},
				"Deploy hello 1.0.2 to qa/x\n\n"+qaTrailers("1.0.2"))
		}, []string{"hello not-by-bot", "hello wrong-trailers"}},
		{"another project's trailers", func() string {
			return gittest.CommitFiles(t, work, map[string]string{helloBase + "configmap.yaml": configmap + "  EXTRA: \"3\"\n"},
				"Promote web 2.0.0 to production\n\n"+prodTrailers("web", "2.0.0", 1))
		}, []string{"hello not-by-bot", "hello wrong-trailers", "web never-in-qa"}},
		{"qa for real", func() string {
			return gittest.CommitFiles(t, work, map[string]string{helloQA: qaKustomization("1.7.0")},
				"Deploy hello 1.7.0 to qa/x\n\n"+qaTrailers("1.7.0"))
		}, nil},
		{"qa claimed by an empty commit", func() string {
			gittest.Git(t, work, "commit", "-q", "--allow-empty", "-m", "Deploy hello 1.8.0 to qa/x", "-m", qaTrailers("1.8.0"))
			return gittest.Git(t, work, "rev-parse", "HEAD")
		}, nil},
		{"production of an image never in qa", func() string {
			return gittest.CommitFiles(t, work, map[string]string{prodKustomization: withTag("1.8.0")},
				"Promote hello 1.8.0 to production\n\n"+prodTrailers("hello", "1.8.0", 1))
		}, []string{"hello never-in-qa"}},
		{"honest merge", func() string {
			return mergeBranch(t, work, "promotebot/hello/b7", map[string]string{prodKustomization: withTag("1.7.0")},
				"Promote hello 1.7.0 to production\n\n"+prodTrailers("hello", "1.7.0", 1), nil)
		}, nil},
		{"evil merge", func() string {
			return mergeBranch(t, work, "promotebot/hello/b9", map[string]string{prodKustomization: withTag("1.8.0")},
				"Promote hello 1.8.0 to production\n\n"+prodTrailers("hello", "1.8.0", 1),
				map[string]string{helloBase + "configmap.yaml": configmap + "  EXTRA: \"4\"\n"})
		}, []string{"hello never-in-qa", "hello not-by-bot"}},
		{"a commit lowers its own bar", func() string {
			return gittest.CommitFiles(t, work, map[string]string{prodKustomization: withTag("1.7.0")},
				"Promote hello 1.7.0 to production\n\n"+strings.Replace(prodTrailers("hello", "1.7.0", 0),
					"Approved-by: Ada <slack:UQA1> 2025-03-01T10:30:00Z\n", "", 1))
		}, []string{"hello too-few-approvals"}},
		{"a broken base", func() string {
			return gittest.CommitFiles(t, work, map[string]string{helloBase + "kustomization.yaml": baseKust + "- missing.yaml\n"},
				"Break the base")
		}, []string{"hello not-by-bot"}},
	}
	names := map[string]string{}
	for _, s := range steps {
		names[s.do()] = s.name
	}
	gittest.Push(t, work)

	for _, opts := range []history.Options{{}, {ProjectPaths: map[string]string{"apps/hello": "hello", "apps/web": "web"}}} {
		changes := readHistory(t, bare, opts)
		findings := history.Check(changes, history.CheckOptions{RequiredApprovals: map[string]int{"hello": 1, "web": 1}})
		got := map[string][]string{}
		for _, f := range findings {
			if n, ok := names[f.Commit]; ok {
				got[n] = append(got[n], f.Project+" "+f.Rule)
			}
		}
		for _, s := range steps {
			slices.Sort(got[s.name])
			if !slices.Equal(got[s.name], s.want) {
				t.Errorf("paths %v: %s: findings %q, want %q", opts.ProjectPaths, s.name, got[s.name], s.want)
			}
		}
	}
}

// tagOf returns the first quoted newTag of a kustomization.
func tagOf(kustomization string) string {
	_, rest, _ := strings.Cut(kustomization, "newTag: \"")
	tag, _, _ := strings.Cut(rest, "\"")
	return tag
}

// rollbackTrailers are a rollback's trailers as the bot writes them: of
// build of, to tag of project, by promoter.
func rollbackTrailers(project, of, tag, promoter string) string {
	return fmt.Sprintf("Promotebot-Rollback-Of: %s\nPromotebot-Project: %s\nPromotebot-Environment: production\n"+
		"Promotebot-Image: registry.example.com/acme/%[2]s:%[3]s\nPromoted-by: %[4]s\n", of, project, tag, promoter)
}

// TestCheckRollbacks: a rollback needs no approvals, but only to an image
// an earlier production change pinned (the root's, a promotion's, a
// person's edit's), and doing nothing else, whatever its trailers claim
// besides.
func TestCheckRollbacks(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	work := gittest.Clone(t, bare)
	read := func(p string) string {
		s, ok := gittest.ReadFile(t, work, "HEAD", p)
		if !ok {
			t.Fatalf("no %s", p)
		}
		return s
	}
	withTag := func(tag string) map[string]string {
		prod := read(prodKustomization)
		return map[string]string{prodKustomization: strings.Replace(prod, "newTag: \""+tagOf(prod)+"\"", "newTag: \""+tag+"\"", 1)}
	}
	const olga = "Olga <slack:UOWN1>"
	rollback := func(tag, image string, promoter string) func() string {
		return func() string {
			return gittest.CommitFiles(t, work, withTag(tag), "Roll back hello to "+image+"\n\n"+
				rollbackTrailers("hello", "b-now", image, promoter))
		}
	}
	configmap := read(helloBase + "configmap.yaml")
	steps := []struct {
		name string
		do   func() string
		want []string // "<project> <rule>", sorted
	}{
		{"qa", func() string {
			return gittest.CommitFiles(t, work, map[string]string{helloQA: qaKustomization("1.4.0")},
				"Deploy hello 1.4.0 to qa/x\n\n"+qaTrailers("1.4.0"))
		}, nil},
		{"promotion", func() string {
			return gittest.CommitFiles(t, work, withTag("1.4.0"), "Promote hello 1.4.0 to production\n\n"+prodTrailers("hello", "1.4.0", 1))
		}, nil},
		{"to the root's image", rollback("1.3.0", "1.3.0", olga), nil},
		{"to a promotion's image", rollback("1.4.0", "1.4.0", olga), nil},
		{"a person's edit", func() string { return gittest.CommitFiles(t, work, withTag("2.0.0"), "Hotfix 2.0.0") },
			[]string{"hello not-by-bot"}},
		{"away from it", rollback("1.3.0", "1.3.0", "promotebot"), nil},
		{"to a person's image", rollback("2.0.0", "2.0.0", olga), nil},
		{"to an image never in production", rollback("1.9.0", "1.9.0", olga), []string{"hello rollback-to-unknown-image"}},
		{"with forged approvals", func() string {
			return gittest.CommitFiles(t, work, withTag("1.9.5"), "Roll back hello to 1.9.5\n\n"+
				rollbackTrailers("hello", "b-now", "1.9.5", olga)+"Promotebot-Required-Approvals: 1\n"+
				"Approved-by: Ada <slack:UQA1> 2025-03-01T10:30:00Z\nApproved-by: Bea <slack:UQA2> 2025-03-01T10:31:00Z\n")
		}, []string{"hello rollback-to-unknown-image"}},
		{"claiming an earlier image", rollback("1.9.9", "1.4.0", olga), []string{"hello rollback-to-unknown-image"}},
		{"changing the base too", func() string {
			files := withTag("1.4.0")
			files[helloBase+"configmap.yaml"] = configmap + "  EXTRA: \"1\"\n"
			return gittest.CommitFiles(t, work, files, "Roll back hello to 1.4.0\n\n"+rollbackTrailers("hello", "b-now", "1.4.0", olga))
		}, []string{"hello rollback-to-unknown-image"}},
		{"without a promoter", func() string {
			return gittest.CommitFiles(t, work, withTag("1.3.0"), "Roll back hello to 1.3.0\n\n"+
				strings.Replace(rollbackTrailers("hello", "b-now", "1.3.0", olga), "Promoted-by: "+olga+"\n", "", 1))
		}, []string{"hello no-promoter"}},
		{"merged through a pull request", func() string {
			return mergeBranch(t, work, "promotebot/hello/rollback-b-now", withTag("2.0.0"),
				"Roll back hello to 2.0.0\n\n"+rollbackTrailers("hello", "b-now", "2.0.0", olga), nil)
		}, nil},
		{"trailers of another project", func() string {
			return gittest.CommitFiles(t, work, withTag("1.4.0"), "Roll back web to 1.4.0\n\n"+rollbackTrailers("web", "b-now", "1.4.0", olga))
		}, []string{"hello not-by-bot", "hello wrong-trailers", "web rollback-to-unknown-image"}},
	}
	names := map[string]string{}
	for _, s := range steps {
		names[s.do()] = s.name
	}
	gittest.Push(t, work)

	for _, opts := range []history.Options{{}, {ProjectPaths: map[string]string{"apps/hello": "hello"}}} {
		changes := readHistory(t, bare, opts)
		findings := history.Check(changes, history.CheckOptions{RequiredApprovals: map[string]int{"hello": 1, "web": 1}})
		got := map[string][]string{}
		for _, f := range findings {
			if n, ok := names[f.Commit]; ok {
				got[n] = append(got[n], f.Project+" "+f.Rule)
			}
		}
		for _, s := range steps {
			slices.Sort(got[s.name])
			if !slices.Equal(got[s.name], s.want) {
				t.Errorf("paths %v: %s: findings %q, want %q", opts.ProjectPaths, s.name, got[s.name], s.want)
			}
		}
		for _, c := range changes {
			if n := names[c.Commit]; (n == "to a promotion's image" || n == "merged through a pull request") &&
				(c.RollbackOf != "b-now" || !c.RollbackPinned || !c.BotMade) {
				t.Errorf("rollback read as %+v", c)
			}
		}
	}
}

// teardownTrailers are the trailers of the teardown of hello's env for
// reason, as the bot writes them.
func teardownTrailers(project, env, reason string) string {
	return "Promotebot-Project: " + project + "\nPromotebot-Environment: " + env + "\nPromotebot-Teardown: " + reason + "\n"
}

// TestCheckTeardowns: a teardown that removes its one QA folder and
// nothing else passes; one that removes more or less, changes a file
// elsewhere, or changes production is flagged, production's change as a
// person's too.
func TestCheckTeardowns(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	work := gittest.Clone(t, bare)
	const (
		xNamespace = "apps/hello/overlays/qa/x/namespace.yaml"
		helloQAY   = "apps/hello/overlays/qa/y/kustomization.yaml"
	)
	prod, _ := gittest.ReadFile(t, work, "HEAD", prodKustomization)
	deploys := 0
	// deploy writes both folders, x with a new tag each time.
	deploy := func() {
		deploys++
		tag := fmt.Sprintf("1.4.%d", deploys)
		gittest.CommitFiles(t, work, map[string]string{helloQA: qaKustomization(tag), xNamespace: "kind: Namespace\n",
			helloQAY: qaKustomization("1.4.0")}, "Deploy hello "+tag+" to qa/x\n\n"+qaTrailers(tag))
	}
	gone := func(extra map[string]string) map[string]string {
		files := map[string]string{helloQA: "", xNamespace: ""}
		for k, v := range extra {
			files[k] = v
		}
		return files
	}
	teardown := func(name string, files map[string]string, trailers string) func() string {
		return func() string {
			deploy()
			return gittest.CommitFiles(t, work, files, name+"\n\n"+trailers)
		}
	}
	steps := []struct {
		name string
		do   func() string
		want []string // "<project> <rule>", sorted
	}{
		{"two folders", teardown("Tear down qa/x of hello", gone(map[string]string{helloQAY: ""}),
			teardownTrailers("hello", "qa/x", "expired")), []string{"hello teardown-beyond-folder"}},
		{"production too", teardown("Tear down qa/x of hello", gone(map[string]string{
			prodKustomization: strings.Replace(prod, "count: 3", "count: 5", 1)}),
			teardownTrailers("hello", "qa/x", "expired")),
			[]string{"hello not-by-bot", "hello teardown-beyond-folder", "hello wrong-trailers"}},
		{"a file elsewhere", teardown("Tear down qa/x of hello", gone(map[string]string{"README.md": "hello\n"}),
			teardownTrailers("hello", "qa/x", "expired")), []string{"hello teardown-beyond-folder"}},
		{"part of the folder", teardown("Tear down qa/x of hello", map[string]string{xNamespace: ""},
			teardownTrailers("hello", "qa/x", "expired")), []string{"hello teardown-beyond-folder"}},
		{"another folder than it says", teardown("Tear down qa/x of hello", map[string]string{helloQAY: ""},
			teardownTrailers("hello", "qa/x", "expired")), []string{"hello teardown-beyond-folder"}},
		{"production claimed", teardown("Tear down production of hello", map[string]string{
			prodKustomization: strings.Replace(prod, "count: 3", "count: 4", 1)},
			teardownTrailers("hello", "production", "expired")), []string{"hello not-by-bot", "hello teardown-beyond-folder"}},
		{"nothing removed", func() string {
			gittest.Git(t, work, "commit", "-q", "--allow-empty", "-m", "Tear down qa/z of hello", "-m",
				teardownTrailers("hello", "qa/z", "expired"))
			return gittest.Git(t, work, "rev-parse", "HEAD")
		}, []string{"hello teardown-beyond-folder"}},
		{"by the bot", teardown("Tear down qa/x of hello", gone(nil), teardownTrailers("hello", "qa/x", "by Olga <slack:UOWN1>")), nil},
	}
	names := map[string]string{}
	for _, s := range steps {
		names[s.do()] = s.name
	}
	gittest.Push(t, work)

	for _, opts := range []history.Options{{}, {ProjectPaths: map[string]string{"apps/hello": "hello"}}} {
		changes := readHistory(t, bare, opts)
		findings := history.Check(changes, history.CheckOptions{RequiredApprovals: map[string]int{"hello": 1}})
		got := map[string][]string{}
		for _, f := range findings {
			if n, ok := names[f.Commit]; ok {
				got[n] = append(got[n], f.Project+" "+f.Rule)
			}
		}
		for _, s := range steps {
			slices.Sort(got[s.name])
			if !slices.Equal(got[s.name], s.want) {
				t.Errorf("paths %v: %s: findings %q, want %q", opts.ProjectPaths, s.name, got[s.name], s.want)
			}
		}
		for _, c := range changes {
			if names[c.Commit] == "by the bot" && (c.Teardown != "by Olga <slack:UOWN1>" || !c.TeardownRemoved || !c.BotMade ||
				c.Environment != "qa/x" || c.Build != "") {
				t.Errorf("the bot's teardown read as %+v", c)
			}
		}
	}
}

package gittest

import (
	"bufio"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// template is a copy of testdata/configrepo/apps/hello (a test checks they
// agree), embedded so that gittest works from any package's tests.
//
//go:embed template
var template embed.FS

// Names used by the generated config repositories.
const (
	// TemplateApp is the app name in the template, replaced everywhere by the
	// generated app's name.
	TemplateApp = "hello"
	// ProductionOverlay is the file, below an app's directory, whose newTag
	// the generated history changes.
	ProductionOverlay = "overlays/production/kustomization.yaml"
	// templateTag is the production newTag line of the template.
	templateTag = `newTag: "1.3.0"`
	// epoch is the author and committer time of the generated initial commit
	// (2023-11-14T22:13:20Z); each later commit is a minute after the previous.
	epoch = 1700000000
)

// AppName returns the name of the i-th generated app: app-000, app-001, ….
func AppName(i int) string { return fmt.Sprintf("app-%03d", i) }

// AppFiles returns the sample project's files for app, keyed by their path in
// a config repository (apps/<app>/base/deployment.yaml, …), with every
// "hello" replaced by app. The production newTag is "1.3.0".
func AppFiles(app string) (map[string]string, error) {
	files := map[string]string{}
	err := fs.WalkDir(template, "template", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := template.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, "template/")
		files[path.Join("apps", app, rel)] = strings.ReplaceAll(string(b), TemplateApp, app)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read app template: %w", err)
	}
	return files, nil
}

// MakeConfigRepo builds the benchmark config repository in dir/config.git and
// returns its path: apps apps (app-000, …), each with the sample project's
// files under apps/<app>/, and commits commits on main. The first commit,
// "Initial config", adds every file; commit n (n ≥ 1) sets the production
// newTag of app (n-1) mod apps to "1.0.<n>", with promotebot-like trailers.
// Authors, committers and dates are fixed, so the same arguments give the same
// commit hashes.
//
// The history is streamed into one git fast-import process and then repacked:
// 20,000 commits take seconds. The repository is built under a temporary name and renamed at
// the end, so an interrupted build leaves no config.git behind.
func MakeConfigRepo(dir string, apps, commits int) (string, error) {
	return MakeConfigRepoWith(dir, ConfigRepoOptions{Apps: apps, Commits: commits})
}

// ConfigRepoOptions describes the history MakeConfigRepoWith builds.
type ConfigRepoOptions struct {
	// Apps and Commits are MakeConfigRepo's apps and commits.
	Apps, Commits int
	// People, when set, makes every commit after the initial one a
	// person's edit of production: the same newTag change as the bot's
	// promotion, but by PersonAuthor (author and committer) with the plain
	// message "Bump <app> to <tag>" and no promotebot trailers, so an audit
	// must judge each one by what it changes.
	People bool
}

// The author and committer of the commits of ConfigRepoOptions.People.
const (
	PersonName  = "Pat Operator"
	PersonEmail = "pat@example.com"
)

// MakeConfigRepoWith is MakeConfigRepo with the history opts describes. The
// same options give the same commit hashes.
func MakeConfigRepoWith(dir string, opts ConfigRepoOptions) (string, error) {
	apps, commits := opts.Apps, opts.Commits
	if apps < 1 || commits < 1 {
		return "", fmt.Errorf("make config repo: need at least one app and one commit, got %d and %d", apps, commits)
	}
	bare := filepath.Join(dir, "config.git")
	switch _, err := os.Stat(bare); {
	case err == nil:
		return "", fmt.Errorf("make config repo: %s already exists", bare)
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("make config repo: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("make config repo: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".config.git.partial-")
	if err != nil {
		return "", fmt.Errorf("make config repo: %w", err)
	}
	if err := buildConfigRepo(tmp, opts); err != nil {
		return "", errors.Join(fmt.Errorf("make config repo: %w", err), os.RemoveAll(tmp))
	}
	if err := os.Rename(tmp, bare); err != nil {
		return "", errors.Join(fmt.Errorf("make config repo: %w", err), os.RemoveAll(tmp))
	}
	return bare, nil
}

// MakeConfigRepoTB is MakeConfigRepo into a temporary directory that fails
// the test on error. Nothing is cached between calls.
func MakeConfigRepoTB(tb testing.TB, apps, commits int) string {
	tb.Helper()
	bare, err := MakeConfigRepo(tb.TempDir(), apps, commits)
	if err != nil {
		tb.Fatal(err)
	}
	return bare
}

// buildConfigRepo initializes a bare repository at dir and fast-imports the
// history into it.
func buildConfigRepo(dir string, opts ConfigRepoOptions) error {
	if _, err := RunGit("", "init", "-q", "--bare", "-b", "main", dir); err != nil {
		return err
	}
	var stderr lockedBuffer
	cmd := exec.Command("git", "fast-import", "--quiet", "--done")
	cmd.Dir = dir
	// Without a larger malloc top pad, glibc gives memory back after every
	// blob and fast-import spends most of its time in brk: 24 s instead of 4 s
	// for 20,000 commits. Other C libraries ignore the variable.
	cmd.Env = append(Env(), "GLIBC_TUNABLES=glibc.malloc.top_pad=67108864")
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("fast-import: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("fast-import: %w", err)
	}
	werr := writeHistory(stdin, opts)
	cerr := stdin.Close()
	err = cmd.Wait()
	switch {
	case werr != nil:
		return fmt.Errorf("fast-import: write stream: %w (fast-import: %v: %s)",
			werr, err, strings.TrimSpace(stderr.String()))
	case err != nil:
		return fmt.Errorf("fast-import: %w: %s", err, strings.TrimSpace(stderr.String()))
	case cerr != nil:
		return fmt.Errorf("fast-import: %w", cerr)
	}
	// fast-import's pack is valid but laid out in import order; a repack
	// (2.5 s for 20,000 commits) gives the layout and bitmaps of a served repo.
	if _, err := RunGit(dir, "repack", "-adq"); err != nil {
		return fmt.Errorf("repack: %w", err)
	}
	return nil
}

// importer writes a git fast-import stream.
type importer struct {
	w   *bufio.Writer
	err error
}

func (im *importer) printf(format string, args ...any) {
	if im.err == nil {
		_, im.err = fmt.Fprintf(im.w, format, args...)
	}
}

// data writes a "data" command with its exact byte count.
func (im *importer) data(s string) {
	im.printf("data %d\n%s\n", len(s), s)
}

// commit starts commit n on main with msg, by the gittest author and
// committer; file changes follow.
func (im *importer) commit(n int, msg string) {
	im.commitBy(n, AuthorName+" <"+AuthorEmail+">", CommitterName+" <"+CommitterEmail+">", msg)
}

// commitBy starts commit n on main with msg, by author and committer
// ("Name <email>"); file changes follow.
func (im *importer) commitBy(n int, author, committer, msg string) {
	when := epoch + 60*n
	im.printf("commit refs/heads/main\n")
	im.printf("author %s %d +0000\n", author, when)
	im.printf("committer %s %d +0000\n", committer, when)
	im.data(msg)
}

// modify writes a file change of the current commit.
func (im *importer) modify(path, content string) {
	im.printf("M 100644 inline %s\n", path)
	im.data(content)
}

// writeHistory streams the whole history of MakeConfigRepoWith into w.
func writeHistory(w io.Writer, opts ConfigRepoOptions) error {
	apps, commits := opts.Apps, opts.Commits
	im := &importer{w: bufio.NewWriterSize(w, 256<<10)}
	im.printf("feature done\n")
	im.commit(0, InitialCommitMessage+"\n")
	prod := make([]string, apps)
	for a := range apps {
		files, err := AppFiles(AppName(a))
		if err != nil {
			return err
		}
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			im.modify(p, files[p])
		}
		prod[a] = files[path.Join("apps", AppName(a), ProductionOverlay)]
		if !strings.Contains(prod[a], templateTag) {
			return fmt.Errorf("template %s has no line %s", ProductionOverlay, templateTag)
		}
	}
	for n := 1; n < commits; n++ {
		a := (n - 1) % apps
		app, tag := AppName(a), fmt.Sprintf("1.0.%d", n)
		if opts.People {
			person := PersonName + " <" + PersonEmail + ">"
			im.commitBy(n, person, person, fmt.Sprintf("Bump %s to %s\n", app, tag))
		} else {
			im.commit(n, promoteMessage(app, tag))
		}
		im.modify(path.Join("apps", app, ProductionOverlay),
			strings.Replace(prod[a], templateTag, `newTag: "`+tag+`"`, 1))
	}
	im.printf("done\n")
	if im.err != nil {
		return im.err
	}
	return im.w.Flush()
}

// promoteMessage is the message of a generated production promotion.
func promoteMessage(app, tag string) string {
	return fmt.Sprintf("Promote %[1]s to %[2]s in production\n\n"+
		"Promotebot-Project: %[1]s\n"+
		"Promotebot-Environment: production\n"+
		"Promotebot-Image: registry.example.com/acme/%[1]s:%[2]s\n", app, tag)
}

// Package gittest drives real git repositories through the git CLI for tests
// and benchmarks: bare remotes in temporary directories, work-tree clones,
// commits, pushes, history readers, hooks, a smart-HTTP server
// (git-http-backend behind Basic auth) and a generator of large config repos.
//
// Every git process runs in a hermetic environment (see Env), so results do not
// depend on the machine's or the user's git configuration, nor on GIT_*
// variables inherited from a hook that runs the tests.
//
// The functions that return an error can be used outside tests (the bench
// programs do); the ones that take a testing.TB fail the test instead.
package gittest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Identity written into every commit made through this package (and by any
// git process that runs with Env).
const (
	AuthorName     = "Gittest Author"
	AuthorEmail    = "author@gittest.invalid"
	CommitterName  = "Gittest Committer"
	CommitterEmail = "committer@gittest.invalid"
)

// InitialCommitMessage is the subject of the commit that seeds a remote.
const InitialCommitMessage = "Initial config"

// gitConfig is passed through GIT_CONFIG_COUNT: it has command-line scope, so it
// wins over everything, and it reaches every child git process (hooks,
// git-http-backend, the receive-pack it starts).
var gitConfig = [][2]string{
	{"init.defaultBranch", "main"},
	// The global excludes and attributes files are read from $HOME even when
	// GIT_CONFIG_GLOBAL points elsewhere.
	{"core.excludesFile", "/dev/null"},
	{"core.attributesFile", "/dev/null"},
	{"core.autocrlf", "false"},
	{"commit.gpgSign", "false"},
	{"tag.gpgSign", "false"},
	{"advice.detachedHead", "false"},
	// A detached auto-gc could still be writing when t.TempDir is removed.
	{"gc.auto", "0"},
	{"maintenance.auto", "false"},
}

// hermeticVars are the variables Env adds to the environment.
func hermeticVars() []string {
	vars := []string{
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=" + AuthorName,
		"GIT_AUTHOR_EMAIL=" + AuthorEmail,
		"GIT_COMMITTER_NAME=" + CommitterName,
		"GIT_COMMITTER_EMAIL=" + CommitterEmail,
		"GIT_TERMINAL_PROMPT=0",
		// Empty, not unset: git then skips core.askPass and SSH_ASKPASS too.
		"GIT_ASKPASS=",
		"GIT_EDITOR=true",
		"LC_ALL=C",
		"GIT_CONFIG_COUNT=" + strconv.Itoa(len(gitConfig)),
	}
	for i, kv := range gitConfig {
		vars = append(vars,
			fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]),
			fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	return vars
}

// Env returns the environment every git process of this package runs with:
// the process environment without any GIT_* variable (GIT_DIR or
// GIT_INDEX_FILE leak in when tests run from a git hook) nor SSH_ASKPASS, plus
// a fixed identity, no system or global config, no prompts, default branch
// main, and C locale messages. Use it for git processes a test starts itself.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "SSH_ASKPASS=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, hermeticVars()...)
}

// GitError is a git command that failed; Stderr holds what git said.
type GitError struct {
	Dir    string
	Args   []string
	Stderr string
	Err    error
}

// Error returns the command, its directory, its exit status and stderr.
func (e *GitError) Error() string {
	return fmt.Sprintf("git %s (in %s): %v: %s",
		strings.Join(e.Args, " "), e.Dir, e.Err, strings.TrimSpace(e.Stderr))
}

// Unwrap returns the *exec.ExitError (or start error) of the command.
func (e *GitError) Unwrap() error { return e.Err }

// run runs git in dir with stdin (may be nil) and returns its raw stdout.
func run(dir string, stdin io.Reader, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env()
	cmd.Stdin = stdin
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &GitError{Dir: dir, Args: args, Stderr: stderr.String(), Err: err}
	}
	return stdout.String(), nil
}

// RunGit runs git with args in dir (the current directory when empty) and
// returns its stdout without surrounding white space. A failure is a
// *GitError carrying git's stderr.
func RunGit(dir string, args ...string) (string, error) {
	out, err := run(dir, nil, args...)
	return strings.TrimSpace(out), err
}

// Git is RunGit that fails the test on error.
func Git(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, err := RunGit(dir, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// InitRemote creates a bare repository at dir whose HEAD is main. When
// seedDir is not empty, main gets one commit, "Initial config", holding a copy
// of seedDir's files.
func InitRemote(dir, seedDir string) error {
	if _, err := RunGit("", "init", "-q", "--bare", "-b", "main", dir); err != nil {
		return fmt.Errorf("init remote: %w", err)
	}
	if seedDir == "" {
		return nil
	}
	work, err := os.MkdirTemp("", "gittest-seed-")
	if err != nil {
		return fmt.Errorf("seed remote: %w", err)
	}
	defer os.RemoveAll(work)
	if err := os.CopyFS(work, os.DirFS(seedDir)); err != nil {
		return fmt.Errorf("seed remote: copy %s: %w", seedDir, err)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "-A"},
		{"commit", "-q", "-m", InitialCommitMessage},
		{"push", "-q", dir, "HEAD:refs/heads/main"},
	} {
		if _, err := RunGit(work, args...); err != nil {
			return fmt.Errorf("seed remote: %w", err)
		}
	}
	return nil
}

// NewRemote creates a bare repository named config.git in a temporary
// directory (see InitRemote) and returns its path. Serve the directory above
// it with NewServer to reach it over HTTP.
func NewRemote(tb testing.TB, seedDir string) string {
	tb.Helper()
	bare := filepath.Join(tb.TempDir(), "config.git")
	if err := InitRemote(bare, seedDir); err != nil {
		tb.Fatal(err)
	}
	return bare
}

// CloneTo clones remote (a path or URL) into dir, with a work tree.
func CloneTo(remote, dir string) error {
	if _, err := RunGit("", "clone", "-q", remote, dir); err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	return nil
}

// Clone clones remote into a temporary directory and returns the work tree.
func Clone(tb testing.TB, remote string) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "work")
	if err := CloneTo(remote, dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// CommitChanges writes files (slash-separated path → content, where an empty
// content deletes the file) into the work tree, stages everything and commits
// with msg, which may carry a body and trailers. It returns the new commit's
// hash. A commit that changes nothing is an error.
func CommitChanges(work string, files map[string]string, msg string) (string, error) {
	for path, content := range files {
		full := filepath.Join(work, filepath.FromSlash(path))
		if content == "" {
			if err := os.Remove(full); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("delete %s: %w", path, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", fmt.Errorf("write %s: %w", path, err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", path, err)
		}
	}
	if _, err := RunGit(work, "add", "-A"); err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	if _, err := run(work, strings.NewReader(msg), "commit", "-q", "-F", "-"); err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	hash, err := RunGit(work, "rev-parse", "HEAD")
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	return hash, nil
}

// CommitFiles is CommitChanges that fails the test on error.
func CommitFiles(tb testing.TB, work string, files map[string]string, msg string) string {
	tb.Helper()
	hash, err := CommitChanges(work, files, msg)
	if err != nil {
		tb.Fatal(err)
	}
	return hash
}

// Push pushes the work tree's current branch to the branch of the same name
// on origin.
func Push(tb testing.TB, work string) {
	tb.Helper()
	Git(tb, work, "push", "-q", "origin", "HEAD")
}

// ReadFile returns the content of path at rev in repo (bare or not), and
// false when rev has no such file. An unknown rev fails the test.
func ReadFile(tb testing.TB, repo, rev, path string) (string, bool) {
	tb.Helper()
	out, err := run(repo, nil, "cat-file", "blob", rev+":"+path)
	if err == nil {
		return out, true
	}
	if _, rerr := RunGit(repo, "rev-parse", "--verify", "-q", rev+"^{commit}"); rerr != nil {
		tb.Fatalf("read %s at %s: unknown revision: %v", path, rev, err)
	}
	return "", false
}

// Head returns the commit hash branch points to in repo; a missing branch
// fails the test.
func Head(tb testing.TB, repo, branch string) string {
	tb.Helper()
	return Git(tb, repo, "rev-parse", "--verify", "-q", "refs/heads/"+branch+"^{commit}")
}

// InstallHook writes an executable hook (e.g. "pre-receive") into a bare
// repository; script is the whole file, shebang included. Hooks run for
// pushes over file:// and over the HTTP server alike.
func InstallHook(tb testing.TB, bare, name, script string) {
	tb.Helper()
	path := filepath.Join(bare, "hooks", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		tb.Fatal(err)
	}
}

// RejectPushes installs a pre-receive hook that refuses every push to bare,
// printing msg (git shows it to the pusher as "remote: msg"). The pusher sees
// the refs rejected with "pre-receive hook declined".
func RejectPushes(tb testing.TB, bare, msg string) {
	tb.Helper()
	InstallHook(tb, bare, "pre-receive",
		"#!/bin/sh\necho "+shellQuote(msg)+" >&2\nexit 1\n")
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ChangedFiles lists, sorted, the paths hash changed relative to its first
// parent (every file for a root commit).
func ChangedFiles(tb testing.TB, repo, hash string) []string {
	tb.Helper()
	files, err := ListChangedFiles(repo, hash)
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

// ListChangedFiles is ChangedFiles returning an error.
func ListChangedFiles(repo, hash string) ([]string, error) {
	out, err := run(repo, nil, "diff-tree", "-r", "-z", "--name-only", "--no-commit-id",
		"--root", "-m", "--first-parent", hash)
	if err != nil {
		return nil, fmt.Errorf("changed files of %s: %w", hash, err)
	}
	files := []string{}
	for _, f := range strings.Split(out, "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	return files, nil
}

// Trailer is one "Key: Value" line of a commit message's trailer block.
type Trailer struct {
	Key   string
	Value string
}

// Commit is one commit as git log reports it.
type Commit struct {
	Hash           string
	Parents        []string
	AuthorName     string
	AuthorEmail    string
	CommitterName  string
	CommitterEmail string
	Subject        string
	// Body is the message after the subject line and its blank line, trailer
	// block included, without trailing white space.
	Body     string
	Trailers []Trailer
}

// TrailerValues returns the values of the trailers named key (compared
// case-insensitively, as git does), in message order.
func (c Commit) TrailerValues(key string) []string {
	var values []string
	for _, t := range c.Trailers {
		if strings.EqualFold(t.Key, key) {
			values = append(values, t.Value)
		}
	}
	return values
}

// logFormat separates fields with US (0x1f); -z ends each commit with NUL.
const logFormat = "%H%x1f%P%x1f%an%x1f%ae%x1f%cn%x1f%ce%x1f%s%x1f%b%x1f%(trailers:only,unfold)"

// ReadLog returns the commits reachable from rev in repo, newest first.
func ReadLog(repo, rev string) ([]Commit, error) {
	out, err := run(repo, nil, "log", "-z", "--format="+logFormat, rev, "--")
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", rev, err)
	}
	var commits []Commit
	for _, rec := range strings.Split(out, "\x00") {
		if rec == "" {
			continue
		}
		f := strings.Split(rec, "\x1f")
		if len(f) != 9 {
			return nil, fmt.Errorf("log %s: unexpected record %q", rev, rec)
		}
		commits = append(commits, Commit{
			Hash:           f[0],
			Parents:        strings.Fields(f[1]),
			AuthorName:     f[2],
			AuthorEmail:    f[3],
			CommitterName:  f[4],
			CommitterEmail: f[5],
			Subject:        f[6],
			Body:           strings.TrimRight(f[7], " \t\n"),
			Trailers:       parseTrailers(f[8]),
		})
	}
	return commits, nil
}

// parseTrailers reads git's "Key: Value" lines (already unfolded).
func parseTrailers(s string) []Trailer {
	var trailers []Trailer
	for _, line := range strings.Split(s, "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		trailers = append(trailers, Trailer{Key: strings.TrimSpace(key), Value: strings.TrimSpace(value)})
	}
	return trailers
}

// Log is ReadLog that fails the test on error.
func Log(tb testing.TB, repo, rev string) []Commit {
	tb.Helper()
	commits, err := ReadLog(repo, rev)
	if err != nil {
		tb.Fatal(err)
	}
	return commits
}

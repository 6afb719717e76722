package githubtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/promotebot/promotebot/gitops/gittest"
)

// errConflict is a merge or rebase that git cannot complete without a person.
var errConflict = errors.New("merge conflict")

// identity is who a commit is attributed to.
type identity struct{ name, email string }

// gitHubCommitter is the committer GitHub writes on merges made on the site
// or through the API.
var gitHubCommitter = identity{"GitHub", "noreply@github.com"}

// userIdentity is the author GitHub writes for a user's merge.
func userIdentity(login string) identity {
	return identity{login, login + "@users.noreply.github.com"}
}

// bareRepo runs git in the bare repository behind the fake, in gittest's
// hermetic environment.
type bareRepo struct {
	dir     string // the bare repository
	scratch string // where temporary work trees go
}

// run runs git in dir with extra environment variables (which win over
// gittest.Env) and stdin, returning stdout. A failure is a *gittest.GitError.
func run(dir string, env []string, stdin string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(gittest.Env(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &gittest.GitError{Dir: dir, Args: args, Stderr: stderr.String(), Err: err}
	}
	return stdout.String(), nil
}

// exitCode is git's exit status in err, or -1.
func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	return -1
}

// env returns the variables that attribute a commit.
func (id identity) env(prefix string) []string {
	return []string{prefix + "_NAME=" + id.name, prefix + "_EMAIL=" + id.email}
}

// resolve returns the object full names (refs/heads/main) point to, and false
// when the ref does not exist.
func (b bareRepo) resolve(ref string) (string, bool, error) {
	out, err := run(b.dir, nil, "", "rev-parse", "--verify", "-q", ref)
	if exitCode(err) == 1 {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return strings.TrimSpace(out), true, nil
}

// branch returns the commit a branch points to, and false when it does not
// exist.
func (b bareRepo) branch(name string) (string, bool, error) {
	if name == "" {
		return "", false, nil
	}
	return b.resolve("refs/heads/" + name + "^{commit}")
}

// objectType is what git cat-file -t says of hash.
func (b bareRepo) objectType(hash string) (string, error) {
	out, err := run(b.dir, nil, "", "cat-file", "-t", hash)
	if err != nil {
		return "", fmt.Errorf("type of %s: %w", hash, err)
	}
	return strings.TrimSpace(out), nil
}

// ahead counts the commits of head that base does not have.
func (b bareRepo) ahead(base, head string) (int, error) {
	out, err := run(b.dir, nil, "", "rev-list", "--count", base+".."+head)
	if err != nil {
		return 0, fmt.Errorf("compare %s..%s: %w", base, head, err)
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// subjects lists the subjects of the commits of head that base does not
// have, oldest first.
func (b bareRepo) subjects(base, head string) ([]string, error) {
	out, err := run(b.dir, nil, "", "log", "--reverse", "--format=%s", base+".."+head)
	if err != nil {
		return nil, fmt.Errorf("log %s..%s: %w", base, head, err)
	}
	var subjects []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" {
			subjects = append(subjects, line)
		}
	}
	return subjects, nil
}

// mergeTree merges head into base without touching any ref and returns the
// tree; errConflict when the merge conflicts.
func (b bareRepo) mergeTree(base, head string) (string, error) {
	out, err := run(b.dir, nil, "", "merge-tree", "--write-tree", "--no-messages", base, head)
	if exitCode(err) == 1 {
		return "", errConflict
	}
	if err != nil {
		return "", fmt.Errorf("merge %s into %s: %w", head, base, err)
	}
	tree, _, _ := strings.Cut(out, "\n")
	return strings.TrimSpace(tree), nil
}

// commitTree writes a commit of tree with parents and msg, authored by author
// and committed by GitHub, and returns its hash.
func (b bareRepo) commitTree(tree string, parents []string, msg string, author identity) (string, error) {
	args := []string{"commit-tree", tree}
	for _, p := range parents {
		args = append(args, "-p", p)
	}
	env := append(author.env("GIT_AUTHOR"), gitHubCommitter.env("GIT_COMMITTER")...)
	out, err := run(b.dir, env, strings.TrimRight(msg, "\n")+"\n", args...)
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	return strings.TrimSpace(out), nil
}

// rebase replays the commits of head that base lacks onto base, keeping
// their authors, with GitHub as committer, and returns the new tip. The new
// commits are written into the bare repository, no ref moves. errConflict
// when a commit does not apply.
func (b bareRepo) rebase(base, head string) (tip string, err error) {
	parent, err := os.MkdirTemp(b.scratch, "rebase-")
	if err != nil {
		return "", fmt.Errorf("rebase: %w", err)
	}
	defer os.RemoveAll(parent)
	work := filepath.Join(parent, "work")
	// A linked work tree shares the bare repository's objects, so the rebased
	// commits need no transfer. Hooks are off: GitHub's own merge runs none.
	noHooks := []string{"-c", "core.hooksPath=/dev/null"}
	if _, err := run(b.dir, nil, "", append(noHooks, "worktree", "add", "-q", "--detach", work, head)...); err != nil {
		return "", fmt.Errorf("rebase: %w", err)
	}
	defer func() {
		if _, rmErr := run(b.dir, nil, "", "worktree", "remove", "--force", work); rmErr != nil && err == nil {
			err = fmt.Errorf("rebase: %w", rmErr)
		}
	}()
	_, err = run(work, gitHubCommitter.env("GIT_COMMITTER"), "",
		append(noHooks, "rebase", "-q", "--no-ff", base)...)
	if exitCode(err) == 1 {
		if _, abortErr := run(work, nil, "", "rebase", "--abort"); abortErr != nil {
			return "", fmt.Errorf("rebase: %w (abort: %v)", err, abortErr)
		}
		return "", errConflict
	}
	if err != nil {
		return "", fmt.Errorf("rebase: %w", err)
	}
	out, err := run(work, nil, "", "rev-parse", "HEAD")
	if err != nil {
		return "", fmt.Errorf("rebase: %w", err)
	}
	return strings.TrimSpace(out), nil
}

// updateBranch moves branch from old to next, atomically: it fails when
// branch no longer points to old.
func (b bareRepo) updateBranch(branch, next, old string) error {
	if _, err := run(b.dir, nil, "", "update-ref", "refs/heads/"+branch, next, old); err != nil {
		return fmt.Errorf("update %s: %w", branch, err)
	}
	return nil
}

// deleteBranch deletes branch if it still points to old.
func (b bareRepo) deleteBranch(branch, old string) error {
	if _, err := run(b.dir, nil, "", "update-ref", "-d", "refs/heads/"+branch, old); err != nil {
		return fmt.Errorf("delete %s: %w", branch, err)
	}
	return nil
}

// Package quickstart is the git side of `promotebot quickstart`: it seeds
// a bare config repository from a folder (objects written with go-git, no
// git binary), finds the projects and images in it, picks the tag of a
// build that is new to it, and watches its main branch for the bot's
// commits. The subcommand in cmd/promotebot keeps the flags and the wiring.
package quickstart

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage"
)

// EnsureRemote makes the bare config repo at remote, one commit on main
// holding the files below seed (the first of defaults that is a folder when
// seed is ""), unless remote is a repository already. It says which it did.
func EnsureRemote(remote, seed string, defaults []string) (string, error) {
	if _, err := git.PlainOpen(remote); err == nil {
		return "reused", nil
	}
	if seed == "" {
		for _, s := range defaults {
			if fi, err := os.Stat(s); err == nil && fi.IsDir() {
				seed = s
				break
			}
		}
		if seed == "" {
			return "", fmt.Errorf("no files to seed the config repo with: run from promotebot's source tree or give --seed DIR (%s)",
				strings.Join(defaults, ", "))
		}
	}
	repo, err := git.PlainInitWithOptions(remote, &git.PlainInitOptions{Bare: true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		return "", fmt.Errorf("config repo: %w", err)
	}
	tree, files, err := writeTree(repo.Storer, seed)
	if err == nil && files == 0 {
		err = errors.New("no files")
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("seed %s: %w", seed, err), os.RemoveAll(remote))
	}
	sig := object.Signature{Name: "promotebot quickstart", Email: "quickstart@localhost", When: time.Now()}
	commit := &object.Commit{Author: sig, Committer: sig, TreeHash: tree,
		Message: "Seed the config repository from " + filepath.ToSlash(seed) + "\n"}
	h, err := storeObject(repo.Storer, commit)
	if err != nil {
		return "", fmt.Errorf("seed commit: %w", err)
	}
	if err := repo.Storer.SetReference(plumbing.NewHashReference(plumbing.Main, h)); err != nil {
		return "", fmt.Errorf("set main: %w", err)
	}
	return "new, seeded from " + filepath.ToSlash(seed), nil
}

// writeTree stores the files below dir as a git tree; it returns the tree
// and how many files it holds. Symbolic links and .git are left out.
func writeTree(st storage.Storer, dir string) (plumbing.Hash, int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return plumbing.ZeroHash, 0, err
	}
	var tree object.Tree
	files := 0
	for _, e := range entries {
		name := filepath.Join(dir, e.Name())
		switch {
		case e.Name() == ".git":
		case e.IsDir():
			h, n, err := writeTree(st, name)
			if err != nil {
				return plumbing.ZeroHash, 0, err
			}
			if n > 0 { // git keeps no empty folders
				tree.Entries = append(tree.Entries, object.TreeEntry{Name: e.Name(), Mode: filemode.Dir, Hash: h})
				files += n
			}
		case e.Type().IsRegular():
			entry, err := writeBlob(st, name, e)
			if err != nil {
				return plumbing.ZeroHash, 0, err
			}
			tree.Entries = append(tree.Entries, entry)
			files++
		}
	}
	// git orders a tree's entries by name, a folder's name as if it ended in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	slices.SortFunc(tree.Entries, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })
	h, err := storeObject(st, &tree)
	return h, files, err
}

// writeBlob stores the file name as a blob and returns its tree entry.
func writeBlob(st storage.Storer, name string, e os.DirEntry) (object.TreeEntry, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return object.TreeEntry{}, err
	}
	obj := st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err == nil {
		_, err = w.Write(data)
		err = errors.Join(err, w.Close())
	}
	if err != nil {
		return object.TreeEntry{}, fmt.Errorf("blob %s: %w", name, err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return object.TreeEntry{}, fmt.Errorf("blob %s: %w", name, err)
	}
	mode := filemode.Regular
	if info, err := e.Info(); err == nil && info.Mode()&0o111 != 0 {
		mode = filemode.Executable
	}
	return object.TreeEntry{Name: e.Name(), Mode: mode, Hash: h}, nil
}

// storeObject encodes and stores a tree or commit.
func storeObject(st storage.Storer, o interface {
	Encode(plumbing.EncodedObject) error
}) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

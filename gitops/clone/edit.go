// Package clone is the config repository's engine: a persistent bare clone
// that fetches one branch, runs edits as pure functions of its tree, commits
// and pushes each change with only the objects it created (compare-and-swap
// on the branch tip, retried on races), answers reads of its commits between
// changes (Read), and survives being killed at any point. It knows nothing
// of overlays or projects.
package clone

import (
	"io/fs"

	"github.com/promotebot/promotebot/gitops/trailer"
)

// Files is the view of the config repository that an Edit reads and changes.
// Names are slash-separated and relative to the repository root. A missing file
// or directory yields an error for which errors.Is(err, fs.ErrNotExist) holds.
type Files interface {
	// ReadFile returns the content of a file.
	ReadFile(name string) ([]byte, error)
	// WriteFile creates or replaces a file, creating parent directories.
	WriteFile(name string, data []byte) error
	// RemoveAll removes a file or a directory and everything below it; a missing
	// name is not an error.
	RemoveAll(name string) error
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
}

// Outcome is what an Edit tells the engine about its change: the commit
// message. Where the change landed in the caller's terms (an environment, a
// URL) is the caller's to keep.
type Outcome struct {
	// Subject is the commit's first line.
	Subject string
	// Body is optional free text between the subject and the trailers.
	Body string
	// Trailers are written in order at the end of the message; ApplyOnce
	// finds a change that landed already by them.
	Trailers []trailer.Trailer
}

// Message renders the full commit message (trailer.Format).
func (o Outcome) Message() string { return trailer.Format(o.Subject, o.Body, o.Trailers) }

// Edit changes the files of the config repository as a pure function of what
// it reads: it may run again on a newer tip when a push races, and must give
// the same result for the same files. An Edit that leaves every file as it was
// produces no commit. An error aborts the change and nothing is committed.
//
// The edits of one batch may run concurrently with each other, each first
// on the remote's tip (see speculate): an Edit must not share unguarded
// state with other edits.
type Edit func(f Files) (Outcome, error)

// Package gitops writes promotebot's changes into the config git repository:
// QA overlays per branch or tag, production image overrides, each as one
// commit with trailers, pushed with only the objects the change created.
package gitops

import (
	"io/fs"
	"strings"
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

// Trailer is one git trailer line of a commit message, such as
// "Promotebot-Build: 01J…".
type Trailer struct {
	Key, Value string
}

// Outcome describes what an Edit changed; it becomes the commit message and
// tells the caller where the change landed.
type Outcome struct {
	// Subject is the commit's first line.
	Subject string
	// Body is optional free text between the subject and the trailers.
	Body string
	// Trailers are written in order at the end of the message.
	Trailers []Trailer
	// Env is the environment written, "production" or "qa/<env>".
	Env string
	// URL is the environment's public URL, when it has one.
	URL string
	// Diff, for a production change, is what it does to the rendered
	// manifests (LineDiff); it is not part of the commit message.
	Diff string
}

// Message renders the full commit message: subject, optional body, trailers.
func (o Outcome) Message() string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(o.Subject))
	b.WriteString("\n")
	if body := strings.TrimSpace(o.Body); body != "" {
		b.WriteString("\n")
		b.WriteString(body)
		b.WriteString("\n")
	}
	if len(o.Trailers) > 0 {
		b.WriteString("\n")
		for _, t := range o.Trailers {
			b.WriteString(t.Key)
			b.WriteString(": ")
			b.WriteString(oneLine(t.Value))
			b.WriteString("\n")
		}
	}
	return b.String()
}

// oneLine keeps a trailer value on one line whatever a caller passed in, so a
// value can never forge a trailer of its own.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Edit changes the files of the config repository as a pure function of what
// it reads: it may run again on a newer tip when a push races, and must give
// the same result for the same files. An Edit that leaves every file as it was
// produces no commit. An error aborts the change and nothing is committed.
type Edit func(f Files) (Outcome, error)

// Package clonetest opens the bot's persistent clone for tests.
package clonetest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/clone"
)

// Open opens a clone of url in a temporary directory, as the bot does, with
// a fixed author and short retry delays; mod may change the options first.
// The clone is closed when the test ends.
func Open(t testing.TB, url string, mod ...func(*clone.Options)) *clone.Repo {
	t.Helper()
	o := clone.Options{
		URL: url, Dir: filepath.Join(t.TempDir(), "clone"),
		Author:  clone.Signature{Name: "promotebot", Email: "bot@example.com"},
		Backoff: 5 * time.Millisecond,
	}
	for _, m := range mod {
		m(&o)
	}
	r, err := clone.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

package history_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/promote"
)

const seed = "../../testdata/configrepo"

var helloConfig = promote.Project{ID: "hello", URL: "https://hello.example.com", Image: "registry.example.com/acme/hello", Path: "apps/hello"}

// openClone opens the bot's clone of url, signing with key at the times
// now gives, as the bot that writes the history under test.
func openClone(t *testing.T, url string, key *openpgp.Entity, now func() time.Time) *clone.Repo {
	t.Helper()
	r, err := clone.Open(context.Background(), clone.Options{
		URL: url, Dir: filepath.Join(t.TempDir(), "clone"), SignKey: key, Now: now,
		Author: clone.Signature{Name: "promotebot", Email: "bot@example.com"},
	})
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

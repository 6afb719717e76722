package history_test

import (
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/clone/clonetest"
	"github.com/promotebot/promotebot/promote"
)

const seed = "../../testdata/configrepo"

var helloConfig = promote.Project{ID: "hello", URL: "https://hello.example.com", Image: "registry.example.com/acme/hello", Path: "apps/hello"}

// openClone opens the bot's clone of url, signing with key at the times
// now gives, as the bot that writes the history under test.
func openClone(t *testing.T, url string, key *openpgp.Entity, now func() time.Time) *clone.Repo {
	t.Helper()
	return clonetest.Open(t, url, func(o *clone.Options) { o.SignKey, o.Now = key, now })
}

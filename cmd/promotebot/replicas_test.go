package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/promote/store/pgtest"
)

// TestTwoReplicasOnePostgres runs two servers on one PostgreSQL database and
// one config remote, posts 100 builds to them at random (and a third of them
// again, to the other replica), and checks that every build is deployed with
// exactly one QA commit.
func TestTwoReplicasOnePostgres(t *testing.T) {
	dsn := pgtest.Fresh(t)
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	start := gittest.Head(t, remote, "main")
	var bases [2]string
	for i := range bases {
		bases[i], _ = serveConfig(t, helloConfig(t, remote, "database: "+dsn+"\n"), nil)
	}

	const n = 100
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			body := fmt.Sprintf(`{"project":"hello","image":"registry.example.com/acme/hello:1.0.%d","type":"branch","target":"replica-%d"}`, i, i)
			first := rand.IntN(2)
			code, out := postBuild(t, bases[first], body)
			if code != http.StatusAccepted {
				t.Errorf("POST %d: %d %v", i, code, out)
				return
			}
			ids[i] = out["id"].(string)
			if i%3 == 0 { // the same build again, to the other replica
				if code, again := postBuild(t, bases[1-first], body); code != http.StatusOK || again["id"] != ids[i] {
					t.Errorf("repeat %d: %d %v, want 200 with id %s", i, code, again, ids[i])
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, id := range ids {
		waitState(t, bases[i%2], id, "qa-ready")
	}

	commits := map[string]int{}
	log := gittest.Log(t, remote, "main")
	for _, c := range log {
		if c.Hash == start {
			break
		}
		for _, v := range c.TrailerValues("Promotebot-Build") {
			commits[v]++
		}
	}
	if len(log) != n+1 {
		t.Errorf("the remote has %d commits, want the seed and %d QA commits", len(log), n)
	}
	for _, id := range ids {
		if commits[id] != 1 {
			t.Errorf("build %s has %d QA commits, want 1", id, commits[id])
		}
	}
}

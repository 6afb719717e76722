package gitops_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/promote"
)

// BenchmarkQABump times one QA image bump end to end: learn the remote tip,
// edit the overlay, render and check it, commit, push. The remote is
// PROMOTEBOT_BENCH_REMOTE (a bare repo from bench/mkrepo, which this modifies)
// or, by default, a fresh repo of 500 apps and 1,000 commits.
func BenchmarkQABump(b *testing.B) {
	remote := os.Getenv("PROMOTEBOT_BENCH_REMOTE")
	if remote == "" {
		remote = gittest.MakeConfigRepoTB(b, 500, 1000)
	}
	r, err := clone.Open(context.Background(), clone.Options{URL: remote, Dir: filepath.Join(b.TempDir(), "clone")})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	p := promote.Project{ID: "app-007", Path: "apps/app-007", Image: "registry.example.com/acme/app-007", URL: "https://app-007.example.com"}
	bump := func(i int) {
		e, err := overlay.QAOverlay(p, promote.KindBranch, "bench", fmt.Sprintf("registry.example.com/acme/app-007:2.0.%d", i), overlay.Meta{Build: fmt.Sprint(i)})
		if err != nil {
			b.Fatal(err)
		}
		res, err := r.Apply(context.Background(), e)
		if err != nil || !res.Changed {
			b.Fatalf("bump %d: %+v %v", i, res, err)
		}
	}
	bump(0) // create the env: the benchmark measures updates
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		bump(i)
	}
}

package history_test

import (
	"context"
	"os"
	"testing"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/history"
)

// BenchmarkReadHistory reads the whole first-parent history of the
// benchmark config repository: 500 apps and 20,000 commits (gittest.MakeConfigRepo,
// built once, in a few seconds), or PROMOTEBOT_BENCH_REMOTE, a bare repo from
// bench/mkrepo. Target: under 2 s per read on 2 cores.
func BenchmarkReadHistory(b *testing.B) {
	remote := os.Getenv("PROMOTEBOT_BENCH_REMOTE")
	commits := 20000
	if remote == "" {
		remote = gittest.MakeConfigRepoTB(b, 500, commits)
	}
	for _, bc := range []struct {
		name string
		opts history.Options
	}{
		{"all", history.Options{}},
		{"one-project", history.Options{Project: "app-007"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				changes, err := history.Read(context.Background(), remote, bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				n = len(changes)
			}
			b.ReportMetric(float64(n), "changes")
		})
	}
}

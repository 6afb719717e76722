// Command scale measures promotebot beyond one team (issue 18, item 5):
//
//   - projects: `promotebot validate` and `promotebot serve` (process start
//     to /healthz, and to /readyz with the config repository cloned) with a
//     configuration of -projects projects, each its own process, wall time
//     and peak RSS, against a repository with as many apps (bench/mkrepo
//     -apps N);
//
//   - envs: QA environments created by the bot itself (signed builds to the
//     real webhook, the real worker and config-repo writer, SQLite), all in
//     one project, and at each of -at counts: /promote envs through the
//     signed slash-command route, GET /metrics (the one HTTP read that
//     counts environments), one more environment (webhook to pushed), and
//     DELETE /v1/environments of the oldest ones (asked to pushed).
//
//     go run ./bench/scale -mode projects -repo /work/br/a5000/config.git -projects 1,5000
//     go run ./bench/scale -mode envs -remote COPY.git -at 100,10000
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run() error {
	mode := flag.String("mode", "", "projects or envs")
	repo := flag.String("repo", "", "projects: bare config repo with at least as many apps (bench/mkrepo -apps N)")
	projects := flag.String("projects", "1,5000", "projects: configuration sizes, comma-separated")
	bin := flag.String("bin", "", "projects: the promotebot binary (built from ./cmd/promotebot when empty, before anything is timed)")
	runs := flag.Int("runs", 3, "projects: runs of each command per size; envs: teardowns per count")
	remote := flag.String("remote", "", "envs: bare config repo the bot writes to (a copy: it is pushed to)")
	apps := flag.Int("apps", 500, "envs: apps in -remote (projects app-000 …)")
	at := flag.String("at", "100,10000", "envs: environment counts to measure at, ascending")
	reads := flag.Int("reads", 15, "envs: listings of each kind per count")
	flag.Parse()
	switch *mode {
	case "projects":
		sizes, err := ints(*projects)
		if err != nil {
			return err
		}
		return projectsMode(*bin, *repo, sizes, *runs)
	case "envs":
		counts, err := ints(*at)
		if err != nil {
			return err
		}
		return envsMode(*remote, *apps, counts, *runs, *reads)
	default:
		return fmt.Errorf("-mode must be projects or envs, not %q", *mode)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive numbers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// spread prints "median (min–max)" in milliseconds.
func spread(d []time.Duration) string {
	return fmt.Sprintf("%.1f (%.1f–%.1f)", ms(median(d)), ms(slices.Min(d)), ms(slices.Max(d)))
}

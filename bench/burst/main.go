// Command burst submits many QA image bumps for different environments at
// once to a config repo and reports how long it took until all were pushed,
// how many pushes that needed, and the process's peak RSS.
//
//	go run ./bench/burst -remote /path/to/bare.git -n 200
//	go run ./bench/burst -remote http://user:password@127.0.0.1:PORT/config.git -n 200
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/promotebot/promotebot/bench/internal/remoteurl"
	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/promote"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "burst:", err)
		os.Exit(1)
	}
}

func run() error {
	remote := flag.String("remote", "", "bare config repo (built by bench/mkrepo), or its smart-HTTP URL (bench/serve)")
	n := flag.Int("n", 200, "bumps to submit at once, one per environment")
	apps := flag.Int("apps", 500, "apps in the repo; bumps are spread over them")
	dir := flag.String("dir", "", "the bot's persistent clone; reused when it exists (default: a fresh temp dir)")
	verbose := flag.Bool("v", false, "log each push to stderr")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the burst to this file")
	cloneOnly := flag.Bool("clone-only", false, "only create the clone in -dir, so a later run measures a warm start")
	flag.Parse()
	if *remote == "" {
		return errors.New("-remote is required")
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "burst-clone-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	ctx := context.Background()
	start := time.Now()
	url, auth := remoteurl.Split(*remote)
	repo, err := clone.Open(ctx, clone.Options{URL: url, Auth: auth, Dir: *dir, Logger: logger(*verbose)})
	if err != nil {
		return err
	}
	defer repo.Close()
	fmt.Printf("open took %v\n", time.Since(start).Round(time.Millisecond))
	if *cloneOnly {
		return nil
	}

	edits := make([]clone.Edit, *n)
	for i := range edits {
		app := fmt.Sprintf("app-%03d", (i*7)%*apps)
		p := promote.Project{ID: app, Path: "apps/" + app, Image: "registry.example.com/acme/" + app, URL: "https://" + app + ".example.com"}
		e, err := overlay.QAOverlay(p, promote.KindBranch, fmt.Sprintf("feature/burst-%d", i),
			fmt.Sprintf("registry.example.com/acme/%s:2.0.%d", app, i), overlay.Meta{Build: fmt.Sprint("burst-", i)})
		if err != nil {
			return err
		}
		edits[i] = e
	}
	var wg sync.WaitGroup
	errs := make([]error, *n)
	commits := make(map[string]bool)
	var mu sync.Mutex
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start = time.Now()
	for i, e := range edits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := repo.Apply(ctx, e)
			errs[i] = err
			mu.Lock()
			commits[res.Commit] = res.Changed
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	fmt.Printf("burst n=%d commits=%d total_ms=%d peak_rss_mib=%.1f\n",
		*n, len(commits), took.Milliseconds(), float64(ru.Maxrss)/1024)
	return nil
}

func logger(verbose bool) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// Command firststart measures promotebot serve's first start: clone.Open of
// a config repository served over smart HTTP into a fresh directory, next to
// `git clone --bare` of the same URL. Each run is a process of its own, so
// its peak RSS is its own; the median of -runs runs is reported.
//
//	go run ./bench/firststart -repo /tmp/m20/config.git -runs 3
//
// The repository is served by gittest's git-http-backend server, started in
// this (parent) process, whose memory is not counted.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/gittest"
)

const user, password = "bench", "bench-secret"

// result is one run's figures.
type result struct {
	Wall   time.Duration `json:"wall"`
	MaxRSS int64         `json:"maxrss_kib"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "firststart:", err)
		os.Exit(1)
	}
}

func run() error {
	repo := flag.String("repo", "", "bare config repo to serve (built by bench/mkrepo)")
	runs := flag.Int("runs", 3, "runs of each client; the median is reported")
	withGit := flag.Bool("git", true, "also time `git clone --bare`")
	memprofile := flag.String("memprofile", "", "child: write a heap profile after Open to this file")
	keep := flag.String("keep", "", "move the first run's clone.Open clone to this directory (for git fsck)")
	child := flag.String("child", "", "internal: run clone.Open against this URL and print the figures")
	flag.Parse()
	if *child != "" {
		return openOnce(*child, *memprofile)
	}
	if *repo == "" {
		return errors.New("-repo is required")
	}
	abs, err := filepath.Abs(*repo)
	if err != nil {
		return err
	}
	srv, err := gittest.StartServer(filepath.Dir(abs), user, password)
	if err != nil {
		return err
	}
	defer srv.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var goRes, gitRes []result
	for i := range *runs {
		tmp, err := os.MkdirTemp("", "firststart-")
		if err != nil {
			return err
		}
		args := []string{"-child", srv.RepoURL(abs)}
		if *memprofile != "" && i == 0 {
			args = append(args, "-memprofile", *memprofile)
		}
		cmd := exec.Command(self, args...)
		cmd.Dir = tmp
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("clone.Open run: %w", err)
		}
		var r result
		if err := json.Unmarshal(out, &r); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("clone.Open run: %q: %w", out, err)
		}
		goRes = append(goRes, r)
		fmt.Printf("clone.Open      run %d: %7.2f s  peak RSS %4d MiB\n", i+1, r.Wall.Seconds(), r.MaxRSS/1024)
		if *withGit {
			g := exec.Command("git", "clone", "--bare", "-q", srv.AuthURL(abs), filepath.Join(tmp, "git.git"))
			g.Env = gittest.Env()
			var stderr bytes.Buffer
			g.Stderr = &stderr
			start := time.Now()
			err := g.Run()
			wall := time.Since(start)
			if err != nil {
				os.RemoveAll(tmp)
				return fmt.Errorf("git clone --bare: %w: %s", err, stderr.String())
			}
			// wait4's ru_maxrss is the largest of the child and the
			// descendants it waited for (remote-https, index-pack).
			ru := g.ProcessState.SysUsage().(*syscall.Rusage)
			r := result{Wall: wall, MaxRSS: ru.Maxrss}
			gitRes = append(gitRes, r)
			fmt.Printf("git clone --bare run %d: %7.2f s  peak RSS %4d MiB\n", i+1, r.Wall.Seconds(), r.MaxRSS/1024)
		}
		if *keep != "" && i == 0 {
			if err := os.Rename(filepath.Join(tmp, "clone"), *keep); err != nil {
				return err
			}
		}
		os.RemoveAll(tmp)
	}
	gm := median(goRes)
	fmt.Printf("median clone.Open:       %.2f s, peak RSS %d MiB\n", gm.Wall.Seconds(), gm.MaxRSS/1024)
	if *withGit {
		m := median(gitRes)
		fmt.Printf("median git clone --bare: %.2f s, peak RSS %d MiB (clone.Open/git: %.2f×)\n",
			m.Wall.Seconds(), m.MaxRSS/1024, gm.Wall.Seconds()/m.Wall.Seconds())
	}
	return nil
}

// median takes the median of wall times and of peak RSS separately.
func median(rs []result) result {
	ws := make([]time.Duration, len(rs))
	ms := make([]int64, len(rs))
	for i, r := range rs {
		ws[i], ms[i] = r.Wall, r.MaxRSS
	}
	slices.Sort(ws)
	slices.Sort(ms)
	return result{Wall: ws[len(ws)/2], MaxRSS: ms[len(ms)/2]}
}

// openOnce is one measured run: clone.Open into ./clone, in this process.
func openOnce(url, memprofile string) error {
	start := time.Now()
	r, err := clone.Open(context.Background(), clone.Options{
		URL:  url,
		Dir:  "clone",
		Auth: clone.Auth{Username: user, Password: password},
	})
	if err != nil {
		return err
	}
	wall := time.Since(start)
	if memprofile != "" {
		f, err := os.Create(memprofile)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if err := r.Close(); err != nil {
		return err
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(result{Wall: wall, MaxRSS: ru.Maxrss})
}

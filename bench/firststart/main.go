// Command firststart measures promotebot serve's first start: clone.Open of
// a config repository served over smart HTTP into a fresh directory, next to
// `git clone --bare` of the same URL. Each run is a process of its own, so
// its peak RSS is its own; the median of -runs runs is reported.
//
//	go run ./bench/firststart -repo /tmp/m20/config.git -runs 3
//
// The repository is served by gittest's git-http-backend server, started in
// this (parent) process, whose memory is not counted.
//
// With -serve BIN it also runs BIN (a built promotebot) as `serve` with a
// fresh data directory and a one-project configuration against the same URL,
// and times it from the process's start to its first 200 from /readyz
// (which answers 200 once the clone is open), then stops it after -settle
// and reports the peak RSS of the whole process.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
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
	serveBin := flag.String("serve", "", "also time `BIN serve` from its start to /readyz answering 200 (BIN: a built promotebot)")
	settle := flag.Duration("settle", time.Second, "with -serve: how long serve keeps running after it is ready")
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
	var goRes, gitRes, serveRes []result
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
		if *serveBin != "" {
			r, err := serveOnce(*serveBin, srv.RepoURL(abs), tmp, *settle)
			if err != nil {
				os.RemoveAll(tmp)
				return fmt.Errorf("serve run: %w", err)
			}
			serveRes = append(serveRes, r)
			fmt.Printf("serve to ready   run %d: %7.2f s  peak RSS %4d MiB\n", i+1, r.Wall.Seconds(), r.MaxRSS/1024)
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
	if *serveBin != "" {
		m := median(serveRes)
		line := fmt.Sprintf("median serve to ready:   %.2f s, peak RSS %d MiB", m.Wall.Seconds(), m.MaxRSS/1024)
		if *withGit {
			line += fmt.Sprintf(" (serve/git: %.2f×)", m.Wall.Seconds()/median(gitRes).Wall.Seconds())
		}
		fmt.Println(line)
	}
	return nil
}

// serveOnce runs `bin serve` with a fresh data directory below tmp against
// url, times it until /readyz answers 200, lets it run for settle, stops it
// with SIGTERM and returns the time and the process's peak RSS.
func serveOnce(bin, url, tmp string, settle time.Duration) (result, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return result{}, err
	}
	config := filepath.Join(tmp, "serve.yaml")
	yaml := fmt.Sprintf(`listen: %s
dataDir: %s
gitops:
  repo: %s
projects:
- id: app-000
  url: https://app-000.example.com
  channel: C0BENCH
  qa: [UQA1]
  owners: [UOWN1]
  image: registry.example.com/acme/app-000
  path: apps/app-000
`, addr, filepath.Join(tmp, "data"), url)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		return result{}, err
	}
	cmd := exec.Command(bin, "serve", "--config", config)
	cmd.Env = append(os.Environ(), "PROMOTEBOT_WEBHOOK_SECRET=bench-webhook-secret",
		"PROMOTEBOT_GIT_USERNAME="+user, "PROMOTEBOT_GIT_PASSWORD="+password)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	wall, err := waitReady("http://"+addr+"/readyz", start, 5*time.Minute)
	if err == nil {
		time.Sleep(settle)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	werr := cmd.Wait()
	if err != nil {
		return result{}, fmt.Errorf("%w; serve's log:\n%s", err, logs.String())
	}
	if werr != nil {
		return result{}, fmt.Errorf("serve: %w; its log:\n%s", werr, logs.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return result{Wall: wall, MaxRSS: ru.Maxrss}, nil
}

// waitReady polls url every 10 ms until it answers 200 and returns the
// time since start.
func waitReady(url string, start time.Time, limit time.Duration) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	for time.Since(start) < limit {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s did not answer 200 within %s", url, limit)
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

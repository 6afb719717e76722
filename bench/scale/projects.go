package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// projectsMode times validate and serve's start with configurations of each
// size, every run its own process; serve starts from an empty data
// directory (first start: it clones) and then again on the same one
// (restart).
func projectsMode(bin, repo string, sizes []int, runs int) error {
	if repo == "" {
		return errors.New("-repo is required for -mode projects")
	}
	repo, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "promotebot")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/promotebot").CombinedOutput(); err != nil {
			return fmt.Errorf("build: %w\n%s", err, out)
		}
	}
	fmt.Printf("%-8s | %-28s | %-10s | %-28s | %-28s | %-10s | %-28s | %-10s\n", "projects", "validate ms", "MiB",
		"serve first: healthz ms", "readyz ms", "MiB", "serve restart: readyz ms", "MiB")
	for _, n := range sizes {
		var val, health, ready, again []time.Duration
		var valRSS, firstRSS, againRSS []float64
		for r := range runs {
			data := filepath.Join(dir, fmt.Sprintf("data-%d-%d", n, r))
			config := filepath.Join(dir, fmt.Sprintf("config-%d.yaml", n))
			if err := writeProjects(config, data, repo, n); err != nil {
				return err
			}
			start := time.Now()
			cmd := exec.Command(bin, "validate", "--config", config)
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("validate: %w\n%s", err, out)
			}
			val = append(val, time.Since(start))
			valRSS = append(valRSS, maxRSS(cmd))
			if want := fmt.Sprintf("config OK: %d project", n); !strings.HasPrefix(string(out), want) {
				return fmt.Errorf("validate said %q", out)
			}
			h, rd, rss, err := startServe(bin, config)
			if err != nil {
				return err
			}
			health, ready, firstRSS = append(health, h), append(ready, rd), append(firstRSS, rss)
			_, rd, rss, err = startServe(bin, config)
			if err != nil {
				return err
			}
			again, againRSS = append(again, rd), append(againRSS, rss)
			if err := os.RemoveAll(data); err != nil {
				return err
			}
		}
		fmt.Printf("%-8d | %-28s | %-10s | %-28s | %-28s | %-10s | %-28s | %-10s\n", n, spread(val), mib(valRSS),
			spread(health), spread(ready), mib(firstRSS), spread(again), mib(againRSS))
	}
	return nil
}

// writeProjects writes a configuration of n projects app-000 … on repo.
func writeProjects(path, data, repo string, n int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\ndataDir: %s\ngitops:\n  repo: %s\nprojects:\n", data, repo)
	for i := range n {
		app := fmt.Sprintf("app-%03d", i)
		fmt.Fprintf(&b, "- id: %s\n  url: https://%s.example.com\n  channel: C0SCALE%d\n  qa: [UQA%d]\n  owners: [UOWN%d]\n"+
			"  image: registry.example.com/acme/%s\n  path: apps/%s\n", app, app, i%50, i%200, i%100, app, app)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// startServe runs serve on config until /readyz answers 200, and returns
// the time from the process's start to the first 200 of /healthz and of
// /readyz, and its peak RSS (MiB) after it stopped.
func startServe(bin, config string) (health, ready time.Duration, rss float64, err error) {
	cmd := exec.Command(bin, "serve", "--config", config)
	cmd.Env = append(os.Environ(), "PROMOTEBOT_WEBHOOK_SECRET=bench-scale-secret")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	stop := func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return err
		}
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("serve: %w\n%s", err, stderr.String())
		}
		return nil
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return 0, 0, 0, errors.Join(fmt.Errorf("serve did not start: %w\n%s", err, stderr.String()), cmd.Process.Kill())
	}
	base := "http://" + strings.TrimSpace(strings.TrimPrefix(line, "promotebot listening on "))
	client := &http.Client{Timeout: 5 * time.Second}
	wait := func(path string) (time.Duration, error) {
		for deadline := start.Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			resp, err := client.Get(base + path)
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		return 0, fmt.Errorf("%s not 200 after 2 minutes", path)
	}
	if health, err = wait("/healthz"); err == nil {
		ready, err = wait("/readyz")
	}
	if err != nil {
		return 0, 0, 0, errors.Join(err, stop())
	}
	if err := stop(); err != nil {
		return 0, 0, 0, err
	}
	return health, ready, maxRSS(cmd), nil
}

func maxRSS(cmd *exec.Cmd) float64 {
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) / 1024
	}
	return 0
}

// mib prints "median (min–max)" of peak RSS figures.
func mib(v []float64) string {
	s := slices.Clone(v)
	slices.Sort(s)
	return fmt.Sprintf("%.0f (%.0f–%.0f)", s[len(s)/2], s[0], s[len(s)-1])
}

// Command unsigned measures what unauthenticated bodies cost the server
// (issue 13, item 2): it builds and starts the real `promotebot serve` with
// GitHub configured, sends -n concurrent POST /github/webhook requests of
// -size bytes each, and prints the server process's VmHWM and VmRSS
// (/proc/<pid>/status) before and after.
//
//	go run ./bench/unsigned                  # 100 × 5 MiB, no signature at all
//	go run ./bench/unsigned -forged          # the same with a well-formed, wrong X-Hub-Signature-256
//
// Linux only (it reads /proc).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "unsigned:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 100, "concurrent requests")
	size := flag.Int("size", 5<<20, "body bytes of each request")
	forged := flag.Bool("forged", false, "send a well-formed but wrong X-Hub-Signature-256")
	flag.Parse()

	dir, err := os.MkdirTemp("", "promotebot-unsigned-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "promotebot")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/promotebot").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %w\n%s", err, out)
	}
	remote, err := configRemote(dir)
	if err != nil {
		return err
	}
	config := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
dataDir: %s
gitops:
  repo: %s
github:
  repository: acme/deploy-config
  apiURL: http://127.0.0.1:1/
projects:
- id: hello
  url: https://hello.example.com
  channel: C0HELLO
  qa: [UQA1]
  owners: [UOWN1]
  image: registry.example.com/acme/hello
  path: apps/hello
`, filepath.Join(dir, "data"), remote)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--config", config)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // a graceful stop
	cmd.Env = append(os.Environ(), "PROMOTEBOT_WEBHOOK_SECRET=bench-ci-secret",
		"PROMOTEBOT_GITHUB_TOKEN=bench-token", "PROMOTEBOT_GITHUB_WEBHOOK_SECRET=bench-github-secret")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cancel()
		// Wait answers ctx's error for a server that stopped as it was asked.
		if err := cmd.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "server:", err)
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("serve did not start: %w", err)
	}
	base := "http://" + strings.TrimSpace(strings.TrimPrefix(line, "promotebot listening on "))
	pid := cmd.Process.Pid

	time.Sleep(2 * time.Second) // let start-up (clone, store) settle before the baseline
	before, err := memory(pid)
	if err != nil {
		return err
	}
	codes, took := flood(base, *n, *size, *forged)
	after, err := memory(pid)
	if err != nil {
		return err
	}
	fmt.Printf("%d × %d bytes to /github/webhook (forged signature: %v) in %s; answers %v\n",
		*n, *size, *forged, took.Round(time.Millisecond), codes)
	fmt.Printf("before: %s\nafter:  %s\n", before, after)
	return nil
}

// flood sends n bodies of size bytes at once and counts the answers by
// status (0 for a request that failed without one).
func flood(base string, n, size int, forged bool) (map[int]int, time.Duration) {
	body := bytes.Repeat([]byte("a"), size)
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			code := send(base, body, forged)
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return codes, time.Since(start)
}

func send(base string, body []byte, forged bool) int {
	req, err := http.NewRequest(http.MethodPost, base+"/github/webhook", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "check_suite")
	if forged {
		req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0
	}
	return resp.StatusCode
}

// memory reads the peak and current resident set of pid.
func memory(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	var fields []string
	for l := range strings.Lines(string(data)) {
		if strings.HasPrefix(l, "VmHWM:") || strings.HasPrefix(l, "VmRSS:") {
			fields = append(fields, strings.Join(strings.Fields(l), " "))
		}
	}
	if len(fields) != 2 {
		return "", errors.New("no VmHWM and VmRSS in /proc/<pid>/status")
	}
	return strings.Join(fields, ", "), nil
}

// configRemote makes a bare config repository from testdata/configrepo.
func configRemote(dir string) (string, error) {
	work, remote := filepath.Join(dir, "work"), filepath.Join(dir, "config.git")
	if err := os.CopyFS(work, os.DirFS("testdata/configrepo")); err != nil {
		return "", err
	}
	git := func(d string, args ...string) error {
		c := exec.Command("git", append([]string{"-C", d, "-c", "user.name=bench", "-c", "user.email=bench@example.com"}, args...)...)
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("git %v: %w\n%s", args, err, out)
		}
		return nil
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "seed"},
		{"clone", "-q", "--bare", work, remote}} {
		if err := git(work, args...); err != nil {
			return "", err
		}
	}
	return remote, nil
}

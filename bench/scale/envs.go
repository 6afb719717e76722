package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/store"
	"github.com/promotebot/promotebot/slackui"
)

const (
	ciSecret    = "bench-scale-ci"
	slackSecret = "bench-scale-slack"
	project     = "app-000"
)

// envsMode grows the QA environments of one project to each count of at,
// through the bot, and measures what reads and changes them there.
func envsMode(remote string, apps int, at []int, teardowns, reads int) error {
	if remote == "" {
		return errors.New("-remote is required for -mode envs")
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-scale-envs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	fmt.Fprintf(&b, "dataDir: %s\ngitops:\n  repo: %s\nprojects:\n", dir, remote)
	for i := range apps {
		app := fmt.Sprintf("app-%03d", i)
		fmt.Fprintf(&b, "- id: %s\n  url: https://%s.example.com\n  channel: C0SCALE\n  owners: [UOWN1]\n  image: registry.example.com/acme/%s\n  path: apps/%s\n  requiredApprovals: 0\n  maxQAEnvironments: 0\n",
			app, app, app, app)
	}
	cfg, err := promote.ParseConfig(filepath.Join(dir, "config.yaml"), []byte(b.String()))
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, "", dir)
	if err != nil {
		return err
	}
	defer st.Close()
	var pushes atomic.Int64
	repo, err := clone.Open(ctx, clone.Options{URL: remote, Dir: filepath.Join(dir, "config-repo.git"),
		Logger: slog.New(slog.DiscardHandler), ObservePush: func(time.Duration) { pushes.Add(1) }})
	if err != nil {
		return err
	}
	defer repo.Close()
	wake := make(chan struct{}, 1)
	cr := gitops.NewConfigRepo(repo)
	svc := &promote.Service{Config: cfg, Store: st, Repo: cr, QAEnvs: cr, Worker: "bench", Wake: wake, Signal: wake}
	work, cancel := context.WithCancel(ctx)
	defer cancel()
	go svc.Run(work) //nolint:errcheck // Run ends with work
	slackHandlers := &slackui.Handlers{SigningSecret: slackSecret, Actor: svc, Slack: nopSlack{},
		Logger: slog.New(slog.DiscardHandler), Background: ctx, Clicks: st, Installed: installed{}}
	h := promote.NewServer(promote.ServerDeps{Config: cfg, Secrets: promote.Secrets{WebhookSecret: ciSecret},
		Store: st, Repo: gitops.Checker{}, Wake: wake, TearDowns: svc,
		Metrics: promote.NewMetrics(promote.WithQueueDepth(st.Pending), promote.WithBuildsByState(st.CountByState),
			promote.WithQAEnvironments([]string{project}, st.CountEnvironments)),
		SlackCommands: slackHandlers.Commands(), SlackGate: slackui.Gate(slackSecret)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	created := 0
	torn := 0
	for _, n := range at {
		start := time.Now()
		p0 := pushes.Load()
		if err := createEnvs(ctx, client, base, st, created, n); err != nil {
			return err
		}
		took := time.Since(start)
		fmt.Printf("envs=%d created %d in %.1f s (%.0f/s, %d pushes)\n", n, n-created, took.Seconds(),
			float64(n-created)/took.Seconds(), pushes.Load()-p0)
		created = n
		live, err := st.Environments(ctx, project)
		if err != nil {
			return err
		}
		if len(live) != n-torn {
			return fmt.Errorf("%d live environments in the store, want %d", len(live), n-torn)
		}
		overlays, err := countOverlays(remote)
		if err != nil {
			return err
		}
		if overlays != n-torn {
			return fmt.Errorf("%d QA overlays in the repository, want %d", overlays, n-torn)
		}

		var slash, metrics, deploy, down []time.Duration
		for range reads {
			d, err := timed(func() error { return slashEnvs(client, base, n-torn) })
			if err != nil {
				return err
			}
			slash = append(slash, d)
			d, err = timed(func() error { return scrape(client, base, n-torn) })
			if err != nil {
				return err
			}
			metrics = append(metrics, d)
		}
		for i := range teardowns {
			d, err := timed(func() error { return createEnvs(ctx, client, base, st, created, created+1) })
			if err != nil {
				return err
			}
			created++
			deploy = append(deploy, d)
			// The oldest live environments: their builds are the
			// project's oldest.
			d, err = timed(func() error { return tearDown(ctx, client, base, st, torn+i) })
			if err != nil {
				return err
			}
			down = append(down, d)
		}
		torn += teardowns
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return err
		}
		fmt.Printf("envs=%d /promote_envs_ms=%s metrics_ms=%s new_env_pushed_ms=%s teardown_pushed_ms=%s heap_mib=%.0f peak_rss_mib=%.0f\n",
			n, spread(slash), spread(metrics), spread(deploy), spread(down), float64(ms.HeapAlloc)/(1<<20), float64(ru.Maxrss)/1024)
	}
	return nil
}

func target(i int) string { return fmt.Sprintf("env-%05d", i) }

// createEnvs posts one build for each environment from..to-1 (64 at a time)
// and waits until all are deployed.
func createEnvs(ctx context.Context, client *http.Client, base string, st promote.Store, from, to int) error {
	ids := make([]string, to-from)
	errs := make([]error, to-from)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(64, to-from) {
		wg.Go(func() {
			for i := range next {
				body := fmt.Sprintf(`{"project":%q,"image":"registry.example.com/acme/%s:7.0.%d","type":"branch","target":%q,"commit":"0123456789abcdef","buildURL":"https://ci.example.com/e/%d"}`,
					project, project, i, target(i), i)
				ids[i-from], errs[i-from] = postBuild(client, base, body)
			}
		})
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Wait in order: most are deployed by the time their turn comes.
	for _, id := range ids {
		for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(2 * time.Millisecond) {
			b, err := st.Get(ctx, id)
			if err != nil {
				return err
			}
			if b.State == promote.StateQAReady || b.State == promote.StateApproved {
				break
			}
			if b.State == promote.StateQAFailed || time.Now().After(deadline) {
				return fmt.Errorf("build %s is %s: %s", id, b.State, b.Error)
			}
		}
	}
	return nil
}

func postBuild(client *http.Client, base, body string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/builds", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, []byte(ciSecret))
	mac.Write([]byte(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Promotebot-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, out.Error)
	}
	return out.ID, nil
}

// tearDown asks the teardown of environment i over HTTP and waits until its
// overlay's removal is pushed and its build closed.
func tearDown(ctx context.Context, client *http.Client, base string, st promote.Store, i int) error {
	req, err := http.NewRequest(http.MethodDelete, base+"/v1/environments/"+project+"/branch/"+target(i), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+ciSecret)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("DELETE %s: %d %s", target(i), resp.StatusCode, body)
	}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		e, err := st.Environment(ctx, project, promote.KindBranch, target(i))
		if err != nil {
			return err
		}
		if !e.Removed {
			continue
		}
		b, err := st.Get(ctx, e.BuildID)
		if err != nil {
			return err
		}
		if b.State != promote.StateClosed {
			return fmt.Errorf("environment %s torn down but its build %s is %s", target(i), b.ID, b.State)
		}
		return nil
	}
	return fmt.Errorf("environment %s not torn down after 2 minutes", target(i))
}

// slashEnvs sends a signed `/promote envs app-000` and checks that the
// answer counts live environments.
func slashEnvs(client *http.Client, base string, live int) error {
	form := url.Values{"command": {"/promote"}, "text": {"envs " + project}, "team_id": {"T0SCALE"},
		"api_app_id": {"A0SCALE"}, "user_id": {"U0SCALE"}, "channel_id": {"C0SCALE"}, "trigger_id": {"1.2.3"}}
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, base+"/slack/commands", strings.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(slackSecret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Text string `json:"text"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if want := fmt.Sprintf("%d QA environment", live); resp.StatusCode != http.StatusOK || !strings.Contains(out.Text, want) {
		return fmt.Errorf("/promote envs: %d %q, want %q", resp.StatusCode, out.Text, want)
	}
	return nil
}

// scrape reads /metrics and checks the project's environment gauge.
func scrape(client *http.Client, base string, live int) error {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	want := fmt.Sprintf(`promotebot_qa_environments{project=%q} %d`, project, live)
	if !strings.Contains(string(data), want) {
		return fmt.Errorf("/metrics lacks %s", want)
	}
	return nil
}

// countOverlays counts the QA overlay folders of the project on the
// remote's main branch (git ls-tree).
func countOverlays(remote string) (int, error) {
	cmd := exec.Command("git", "--git-dir", remote, "ls-tree", "-d", "--name-only", "main:apps/"+project+"/overlays/qa")
	cmd.Env = gittest.Env()
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("git ls-tree: %w", err)
	}
	return strings.Count(string(out), "\n"), nil
}

func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

type nopSlack struct{}

func (nopSlack) Ephemeral(context.Context, string, string, string) error        { return nil }
func (nopSlack) OpenView(context.Context, string, slack.ModalViewRequest) error { return nil }

type installed struct{}

func (installed) Installation(context.Context) (slackui.Installation, error) {
	return slackui.Installation{TeamID: "T0SCALE", AppID: "A0SCALE"}, nil
}

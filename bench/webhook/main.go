// Command webhook measures the server side of promotebot on loopback:
//
//   - ingest: how many builds per second the CI webhook accepts (202, each
//     durably stored in SQLite with synchronous=FULL before the answer), with
//     -c clients posting signed builds for -d;
//
//   - latency: how long from the webhook call to the pushed QA commit (the
//     build's qa-ready transition, recorded after the push), for -single
//     builds one after another and for a burst of -burst builds at once,
//     against the bare repo -remote (built by bench/mkrepo).
//
//     go run ./bench/webhook -mode ingest -c 32 -d 10s
//     go run ./bench/webhook -mode latency -remote bench/out/repo-500x1000.git
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/promotebot/promotebot/bench/internal/remoteurl"
	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/store"
)

const secret = "bench-webhook-secret"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}

type options struct {
	mode     string
	clients  int
	duration time.Duration
	remote   string
	apps     int
	single   int
	burst    int
	database string
	jobs     int
	profile  string
	rate     int
	envs     int
	sample   time.Duration
}

func run() error {
	var o options
	flag.StringVar(&o.mode, "mode", "ingest", "ingest, latency or sustain")
	flag.IntVar(&o.clients, "c", 32, "ingest: concurrent clients")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "ingest, sustain: how long to post")
	flag.StringVar(&o.remote, "remote", "", "latency, sustain: bare config repo built by bench/mkrepo, or its smart-HTTP URL (bench/serve)")
	flag.IntVar(&o.apps, "apps", 500, "apps in the repo (projects app-000 …)")
	flag.IntVar(&o.single, "single", 30, "latency: builds posted one after another")
	flag.IntVar(&o.burst, "burst", 200, "latency: builds posted at once")
	flag.IntVar(&o.jobs, "jobs", 0, "latency: jobs run at once (promote.Service.Concurrency; 0 for its default)")
	flag.StringVar(&o.profile, "cpuprofile", "", "latency: write a CPU profile of the burst to this file")
	flag.IntVar(&o.rate, "rate", 100, "sustain: builds posted per second")
	flag.IntVar(&o.envs, "envs", 200, "sustain: QA environments the builds are spread over")
	flag.DurationVar(&o.sample, "sample", 10*time.Second, "sustain: how often to print a sample")
	flag.StringVar(&o.database, "database", "", "store: empty for SQLite in a temp dir, or a postgres:// URL")
	flag.Parse()

	dir, err := os.MkdirTemp("", "bench-webhook-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg, err := config(o, dir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := store.Open(ctx, o.database, dir)
	if err != nil {
		return err
	}
	defer st.Close()
	switch o.mode {
	case "ingest":
		return ingest(ctx, o, cfg, st)
	case "latency":
		return latency(ctx, o, cfg, st, dir)
	case "sustain":
		return sustain(ctx, o, cfg, st, dir)
	default:
		return fmt.Errorf("unknown -mode %q", o.mode)
	}
}

// config makes a configuration with one project per app of the bench repo.
func config(o options, dir string) (*promote.Config, error) {
	var b strings.Builder
	remote, _ := remoteurl.Split(o.remote)
	fmt.Fprintf(&b, "dataDir: %s\ngitops:\n  repo: %s\nprojects:\n", dir, cmpOr(remote, "unused"))
	for i := range o.apps {
		app := fmt.Sprintf("app-%03d", i)
		fmt.Fprintf(&b, "- id: %s\n  url: https://%s.example.com\n  channel: C0BENCH\n  owners: [UOWN1]\n  image: registry.example.com/acme/%s\n  path: apps/%s\n  requiredApprovals: 0\n  maxQAEnvironments: 0\n",
			app, app, app, app)
	}
	return promote.ParseConfig(filepath.Join(dir, "config.yaml"), []byte(b.String()))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// serve starts the HTTP server on a loopback port and returns its base URL.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func post(client *http.Client, base, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/builds", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Promotebot-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var out struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return resp.StatusCode, "", fmt.Errorf("answer %q: %w", data, err)
	}
	if out.Error != "" {
		return resp.StatusCode, "", errors.New(out.Error)
	}
	return resp.StatusCode, out.ID, nil
}

func buildBody(o options, i int, tag string) string {
	app := fmt.Sprintf("app-%03d", (i*7)%o.apps)
	return fmt.Sprintf(`{"project":%q,"image":"registry.example.com/acme/%s:%s","type":"branch","target":"feature/bench-%d","commit":"0123456789abcdef","buildURL":"https://ci.example.com/%d"}`,
		app, app, tag, i, i)
}

func ingest(ctx context.Context, o options, cfg *promote.Config, st promote.Store) error {
	h := promote.NewServer(promote.ServerDeps{Config: cfg, Secrets: promote.Secrets{WebhookSecret: secret},
		Store: st, Repo: gitops.Checker{}})
	base, stop, err := serve(h)
	if err != nil {
		return err
	}
	defer stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.clients}}
	var next atomic.Int64
	lat := make([][]time.Duration, o.clients)
	errs := make([]error, o.clients)
	deadline := time.Now().Add(o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range o.clients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := int(next.Add(1))
				t := time.Now()
				code, _, err := post(client, base, buildBody(o, i, fmt.Sprintf("1.0.%d", i)))
				if err == nil && code != http.StatusAccepted {
					err = fmt.Errorf("status %d", code)
				}
				if err != nil {
					errs[c] = err
					return
				}
				lat[c] = append(lat[c], time.Since(t))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	all := slices.Concat(lat...)
	counts, err := st.CountByState(ctx)
	if err != nil {
		return err
	}
	if counts[promote.StateReceived] != len(all) {
		return fmt.Errorf("%d builds accepted but %d stored", len(all), counts[promote.StateReceived])
	}
	fmt.Printf("ingest clients=%d accepted=%d seconds=%.1f builds_per_s=%.0f p50_ms=%.2f p99_ms=%.2f\n",
		o.clients, len(all), took.Seconds(), float64(len(all))/took.Seconds(), ms(pct(all, 50)), ms(pct(all, 99)))
	return nil
}

// startBot opens the kept clone of -remote with opts, and serves the real
// webhook handler on loopback with the real worker behind it; stop ends
// both.
func startBot(ctx context.Context, o options, cfg *promote.Config, st promote.Store, opts clone.Options) (string, func(), error) {
	opts.URL, opts.Auth = remoteurl.Split(o.remote)
	repo, err := clone.Open(ctx, opts)
	if err != nil {
		return "", nil, err
	}
	wake := make(chan struct{}, 1)
	h := promote.NewServer(promote.ServerDeps{Config: cfg, Secrets: promote.Secrets{WebhookSecret: secret},
		Store: st, Repo: gitops.Checker{}, Wake: wake})
	base, stopServer, err := serve(h)
	if err != nil {
		repo.Close()
		return "", nil, err
	}
	work, cancel := context.WithCancel(ctx)
	svc := &promote.Service{Config: cfg, Store: st, Repo: gitops.NewConfigRepo(repo), Worker: "bench", Wake: wake,
		Concurrency: o.jobs}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		svc.Run(work) //nolint:errcheck // Run ends with work
	}()
	return base, func() {
		stopServer()
		cancel()
		<-ran
		repo.Close()
	}, nil
}

func latency(ctx context.Context, o options, cfg *promote.Config, st promote.Store, dir string) error {
	if o.remote == "" {
		return errors.New("-remote is required for -mode latency")
	}
	base, stop, err := startBot(ctx, o, cfg, st, clone.Options{Dir: filepath.Join(dir, "config-repo.git"),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer stop()

	client := &http.Client{}
	var single []time.Duration
	for i := range o.single {
		d, err := postAndWait(ctx, client, st, base, []string{buildBody(o, 100000+i, "3.0.0")})
		if err != nil {
			return err
		}
		single = append(single, d...)
	}
	report("single", single)
	bodies := make([]string, o.burst)
	for i := range bodies {
		bodies[i] = buildBody(o, 200000+i, "4.0.0")
	}
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	burst, err := postAndWait(ctx, client, st, base, bodies)
	if err != nil {
		return err
	}
	report(fmt.Sprintf("burst%d", o.burst), burst)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	fmt.Printf("peak_rss_mib=%.1f\n", float64(ru.Maxrss)/1024)
	return nil
}

// postAndWait posts bodies at once and returns, for each build, the time from
// just before its POST to its qa-ready transition.
func postAndWait(ctx context.Context, client *http.Client, st promote.Store, base string, bodies []string) ([]time.Duration, error) {
	ids := make([]string, len(bodies))
	sent := make([]time.Time, len(bodies))
	errs := make([]error, len(bodies))
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() {
			sent[i] = time.Now()
			code, id, err := post(client, base, body)
			if err == nil && code != http.StatusAccepted {
				err = fmt.Errorf("status %d", code)
			}
			ids[i], errs[i] = id, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]time.Duration, len(ids))
	for i, id := range ids {
		at, err := readyAt(ctx, st, id)
		if err != nil {
			return nil, err
		}
		out[i] = at.Sub(sent[i])
	}
	return out, nil
}

// readyAt waits for the build's qa-ready transition and returns its time.
func readyAt(ctx context.Context, st promote.Store, id string) (time.Time, error) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		hist, err := st.History(ctx, id)
		if err != nil {
			return time.Time{}, err
		}
		for _, t := range hist {
			switch t.To {
			case promote.StateQAReady:
				return t.At, nil
			case promote.StateQAFailed:
				b, err := st.Get(ctx, id)
				return time.Time{}, errors.Join(fmt.Errorf("build %s failed: %s", id, b.Error), err)
			}
		}
	}
	return time.Time{}, fmt.Errorf("build %s not deployed after 2 minutes", id)
}

func report(name string, d []time.Duration) {
	if len(d) == 0 { // -single 0 or -burst 0
		fmt.Printf("latency %s n=0\n", name)
		return
	}
	fmt.Printf("latency %s n=%d p50_ms=%.0f p99_ms=%.0f max_ms=%.0f\n", name, len(d), ms(pct(d, 50)), ms(pct(d, 99)), ms(slices.Max(d)))
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

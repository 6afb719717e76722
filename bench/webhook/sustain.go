package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/promote"
)

// sustain posts signed builds at a fixed rate (-rate per second, for -d) to
// the real server with the real worker, spread over -envs QA environments,
// and samples the process every -sample: resident memory, the Go heap, the
// job queue, the builds done and the pushes. Posting is open-loop: a slow
// answer does not slow the schedule, so a server that cannot keep up shows as
// a growing number of calls in flight. At the end it waits for the queue to
// drain and checks that every accepted build was done exactly once: it reached
// qa-ready once (and, needing no approval, approved), or was superseded by a
// newer build for its environment.
func sustain(ctx context.Context, o options, cfg *promote.Config, st promote.Store, dir string) error {
	if o.remote == "" {
		return errors.New("-remote is required for -mode sustain")
	}
	if o.rate <= 0 || o.envs <= 0 {
		return errors.New("-rate and -envs must be positive")
	}
	var pushes atomic.Int64
	base, stop, err := startBot(ctx, o, cfg, st, clone.Options{Dir: filepath.Join(dir, "config-repo.git"),
		Logger:      slog.New(onlyMessage{"merged packs", slog.NewTextHandler(os.Stdout, nil)}),
		ObservePush: func(time.Duration) { pushes.Add(1) }})
	if err != nil {
		return err
	}
	defer stop()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var (
		mu       sync.Mutex
		ids      []string
		postErrs []error
		inFlight atomic.Int64
		maxIn    atomic.Int64
	)
	s := sampler{st: st, pushes: &pushes, inFlight: &inFlight, accepted: func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(ids)
	}}
	start := time.Now()
	s.start = start
	sampling, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		s.every(sampling, o.sample)
	}()

	interval := time.Second / time.Duration(o.rate)
	n := int(o.duration / interval)
	var wg sync.WaitGroup
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if in := inFlight.Add(1); in > maxIn.Load() {
			maxIn.Store(in)
		}
		wg.Go(func() {
			defer inFlight.Add(-1)
			env := i % o.envs
			app := fmt.Sprintf("app-%03d", (env*7)%o.apps)
			body := fmt.Sprintf(`{"project":%q,"image":"registry.example.com/acme/%s:5.0.%d","type":"branch","target":"feature/sustain-%d","commit":"0123456789abcdef","buildURL":"https://ci.example.com/s/%d"}`,
				app, app, i, env, i)
			code, id, err := post(client, base, body)
			if err == nil && code != http.StatusAccepted {
				err = fmt.Errorf("status %d", code)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				postErrs = append(postErrs, fmt.Errorf("build %d: %w", i, err))
				return
			}
			ids = append(ids, id)
		})
	}
	wg.Wait()
	posted := time.Since(start)
	if err := errors.Join(postErrs...); err != nil {
		stopSampling()
		<-sampled
		return fmt.Errorf("%d of %d posts failed: %w", len(postErrs), n, err)
	}
	// Drain: every job done, no build left received or deploying.
	drained := false
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		pending, err := st.Pending(ctx)
		if err != nil {
			return err
		}
		counts, err := st.CountByState(ctx)
		if err != nil {
			return err
		}
		if pending == 0 && counts[promote.StateReceived] == 0 && counts[promote.StateDeploying] == 0 {
			drained = true
			break
		}
	}
	drain := time.Since(start) - posted
	stopSampling()
	<-sampled
	s.once(ctx)
	if !drained {
		return errors.New("the queue did not drain within 5 minutes of the last post")
	}
	deployed, err := exactlyOnce(ctx, st, ids)
	if err != nil {
		return err
	}
	counts, err := st.CountByState(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("sustain rate=%d envs=%d posted=%d accepted=%d post_seconds=%.1f drain_after_last_post_s=%.1f "+
		"max_posts_in_flight=%d deployed=%d ending_qa_ready=%d superseded=%d pushes=%d peak_rss_mib=%.1f exactly_once=ok\n",
		o.rate, o.envs, n, len(ids), posted.Seconds(), drain.Seconds(), maxIn.Load(), deployed,
		counts[promote.StateQAReady]+counts[promote.StateApproved], counts[promote.StateSuperseded], pushes.Load(), s.hwm())
	return nil
}

// exactlyOnce checks that each build reached qa-ready at most once and ended
// qa-ready (or approved) after it, or superseded, and that no build is counted twice.
func exactlyOnce(ctx context.Context, st promote.Store, ids []string) (deployed int, err error) {
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			return 0, fmt.Errorf("build %s was answered twice", id)
		}
		seen[id] = true
		hist, err := st.History(ctx, id)
		if err != nil {
			return 0, err
		}
		ready := 0
		for _, t := range hist {
			if t.To == promote.StateQAReady {
				ready++
			}
		}
		b, err := st.Get(ctx, id)
		if err != nil {
			return 0, err
		}
		deployed += ready
		switch {
		case ready > 1:
			return 0, fmt.Errorf("build %s was deployed %d times", id, ready)
		case (b.State == promote.StateQAReady || b.State == promote.StateApproved) && ready == 1,
			b.State == promote.StateSuperseded:
		default:
			return 0, fmt.Errorf("build %s ended %s after %d deploys", id, b.State, ready)
		}
	}
	return deployed, nil
}

// sampler prints one line of the process's state per call.
type sampler struct {
	st       promote.Store
	start    time.Time
	pushes   *atomic.Int64
	inFlight *atomic.Int64
	accepted func() int
}

func (s *sampler) every(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.once(ctx)
		}
	}
}

func (s *sampler) once(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	pending, err := s.st.Pending(ctx)
	if err != nil {
		pending = -1
	}
	counts, err := s.st.CountByState(ctx)
	if err != nil {
		counts = nil
	}
	status := procStatus()
	fmt.Printf("sample t=%.0fs rss_mib=%.1f hwm_mib=%.1f heap_mib=%.1f goroutines=%d pending_jobs=%d accepted=%d "+
		"received=%d deploying=%d qa_ready=%d approved=%d superseded=%d pushes=%d posts_in_flight=%d\n",
		time.Since(s.start).Seconds(), status["VmRSS"], status["VmHWM"], float64(ms.HeapAlloc)/(1<<20),
		runtime.NumGoroutine(), pending, s.accepted(), counts[promote.StateReceived], counts[promote.StateDeploying],
		counts[promote.StateQAReady], counts[promote.StateApproved], counts[promote.StateSuperseded], s.pushes.Load(),
		s.inFlight.Load())
}

func (s *sampler) hwm() float64 { return procStatus()["VmHWM"] }

// procStatus reads the Vm* lines of /proc/self/status, in MiB.
func procStatus() map[string]float64 {
	out := map[string]float64{}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var key string
		var kb int
		if _, err := fmt.Sscanf(sc.Text(), "%s %d kB", &key, &kb); err == nil && len(key) > 1 {
			out[key[:len(key)-1]] = float64(kb) / 1024
		}
	}
	return out
}

// onlyMessage passes on the records with one message: the clone's pack
// merges, whose cost the samples would otherwise not explain.
type onlyMessage struct {
	msg string
	slog.Handler
}

func (h onlyMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != h.msg {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/store"
)

func serveCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the bot: the CI webhook, the job queue and the config-repo writer",
		Description: "serve accepts builds on POST /v1/builds, stores them durably before answering, and " +
			"deploys each to its QA overlay in the config repository from a durable job queue. Several " +
			"replicas may share one PostgreSQL database and one config repository.",
		Flags: []cli.Flag{configFlag(), &cli.DurationFlag{Name: "job-lease", Value: 2 * time.Minute,
			Usage: "how long a claimed job is this replica's; after a crash, others take it up once it ends"}},
		Action: func(c *cli.Context) error { return serve(c.Context, c, d) },
	}
}

func serve(ctx context.Context, c *cli.Context, d deps) error {
	path, err := configPath(c)
	if err != nil {
		return err
	}
	cfg, err := promote.LoadConfig(path)
	if err != nil {
		return err
	}
	sec := promote.SecretsFromEnv(d.getenv)
	log := slog.New(slog.NewJSONHandler(d.stderr, nil))
	if sec.WebhookSecret == "" {
		return errors.New("PROMOTEBOT_WEBHOOK_SECRET is not set: the CI webhook would refuse every build")
	}
	st, err := store.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return err
	}
	defer closeLogged(log, "store", st.Close)
	repo, err := openConfigRepo(ctx, cfg, sec, log)
	if err != nil {
		return err
	}
	defer closeLogged(log, "config repo", repo.Close)
	cr := gitops.NewConfigRepo(repo)
	host, err := os.Hostname()
	if err != nil {
		host = "promotebot"
	}
	wake := make(chan struct{}, 1)
	svc := &promote.Service{Config: cfg, Store: st, Repo: cr, Logger: log, Wake: wake, Lease: c.Duration("job-lease"),
		Worker: fmt.Sprintf("%s-%d", host, os.Getpid())}
	handler := promote.NewServer(promote.ServerDeps{Config: cfg, Secrets: sec, Store: st, Repo: cr, Logger: log,
		Metrics: promote.NewMetrics(promote.WithQueueDepth(st.Pending)), Wake: wake,
		Ready: func(context.Context) error { return nil }})
	return runServer(ctx, cfg.Listen, handler, svc, log, d)
}

// runServer serves HTTP and runs the job worker until ctx ends, then stops
// accepting requests, lets those in flight finish, and stops the worker; a job
// it was running goes back to the queue when its lease ends.
func runServer(ctx context.Context, listen string, h http.Handler, svc *promote.Service, log *slog.Logger, d deps) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	if _, err := fmt.Fprintf(d.stdout, "promotebot listening on %s\n", ln.Addr()); err != nil {
		return err
	}
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := svc.Run(work); err != nil {
			log.Error("worker stopped", "err", err)
		}
	}()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		log.Info("shutting down")
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		err = srv.Shutdown(shut)
		cancel()
	}
	stopWork()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func closeLogged(log *slog.Logger, what string, close func() error) {
	if err := close(); err != nil {
		log.Error("close "+what, "err", err)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/forge"
	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/feedback"
	"github.com/promotebot/promotebot/promote/store"
	"github.com/promotebot/promotebot/slackui"
)

func serveCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the bot: the CI webhook, the job queue and the config-repo writer",
		Description: "serve accepts builds on POST /v1/builds, stores them durably before answering, and " +
			"deploys each to its QA overlay in the config repository from a durable job queue. Several " +
			"replicas may share one PostgreSQL database and one config repository.",
		Flags: []cli.Flag{configFlag(), &cli.DurationFlag{Name: "job-lease", Value: 2 * time.Minute,
			Usage: "how long a claimed job is this replica's without a renewal; a job's runner renews it while it works"},
			&cli.DurationFlag{Name: "replica-grace", Value: 15 * time.Second,
				Usage: "how long another replica's heartbeat may be silent before its jobs are taken up (PostgreSQL; " +
					"the embedded store takes a dead process's jobs up at once)"}},
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
	projects := make([]string, len(cfg.Projects))
	for i, p := range cfg.Projects {
		projects[i] = p.ID
	}
	var actor *promote.Service
	metrics := promote.NewMetrics(promote.WithQueueDepth(st.Pending), promote.WithBuildsByState(st.CountByState),
		promote.WithQAEnvironments(projects, st.CountEnvironments),
		promote.WithDORA(func(ctx context.Context) (map[string]promote.DORA, error) { return actor.DORA(ctx) }))
	host, err := os.Hostname()
	if err != nil {
		host = "promotebot"
	}
	wake := make(chan struct{}, 1)
	state := &cloneState{}
	// One service takes people's decisions from Slack at once and, once the
	// clone is ready (below), does the work they queue.
	if cfg.ArgoCD.APIURL != "" && sec.ArgoCDToken == "" {
		return errors.New("argocd.apiURL is set but PROMOTEBOT_ARGOCD_TOKEN is not: the bot could not ask Argo CD")
	}
	actor = &promote.Service{Config: cfg, Store: st, Repo: state, Logger: log, Signal: wake, Wake: wake,
		CommitURL: commitURL(cfg), Branch: cfg.GitOps.Branch,
		Lease: c.Duration("job-lease"), ReplicaGrace: c.Duration("replica-grace"), Worker: fmt.Sprintf("%s-%d", host, os.Getpid()),
		Revisions: state, Production: state, QAEnvs: state, Metrics: metrics, Feedback: sec.EventsSecret != "" || cfg.ArgoCD.APIURL != ""}
	if !actor.Feedback {
		log.Info("no cluster feedback: PROMOTEBOT_EVENTS_SECRET and argocd.apiURL are not set, so messages say what was committed, not what runs")
	}
	var slackHandlers *slackui.Handlers
	if sec.SlackBotToken != "" {
		client := slackui.NewClient(sec.SlackBotToken, cfg.Slack.APIURL, log.With("component", "slack"))
		// Slack's requests are checked against the bot's own workspace and
		// app; learned now, or on the first request if Slack cannot say yet.
		if _, err := client.Installation(ctx); promote.IsPermanent(err) {
			return fmt.Errorf("PROMOTEBOT_SLACK_BOT_TOKEN: %w", err)
		} else if err != nil {
			log.Warn("slack installation not known yet: Slack's requests are refused until it is", "err", err)
		}
		actor.Notifier, actor.Directory = client, client
		slackHandlers = &slackui.Handlers{SigningSecret: sec.SlackSigningSecret, Actor: actor, Slack: client,
			Logger: log.With("component", "slack"), Background: context.WithoutCancel(ctx),
			Clicks: st, Installed: client}
	} else {
		log.Warn("PROMOTEBOT_SLACK_BOT_TOKEN is not set: nothing is posted to Slack and Slack's routes answer 404")
	}
	var appTokens *forge.AppTokens
	if cfg.GitHub.Enabled() {
		prs, tokens, err := newForge(cfg, sec)
		if err != nil {
			return err
		}
		actor.Forge, appTokens = prs, tokens
		if watchesSources(cfg) { // builds show as deployments on projects[].sourceRepository
			actor.Deployments = prs
		}
	}
	deps := promote.ServerDeps{Config: cfg, Secrets: sec, Store: st, Repo: gitops.Checker{},
		Logger: log, Metrics: metrics, Wake: wake, Ready: state.ready}
	if actor.Forge != nil || watchesSources(cfg) {
		hook := githubWebhook(sec.GitHubWebhookSecret, st, wake, log)
		hook.Deleted = sourceDeletions(cfg, actor)
		deps.GitHubWebhook, deps.GitHubGate = hook, hook.Gate()
	}
	deps.TearDowns = actor
	if slackHandlers != nil && sec.SlackSigningSecret != "" {
		deps.SlackInteractions, deps.SlackCommands = slackHandlers.Interactions(), slackHandlers.Commands()
		deps.SlackGate = slackui.Gate(sec.SlackSigningSecret)
	}
	if sec.EventsSecret != "" {
		flux := &feedback.Flux{Secret: sec.EventsSecret, Observer: actor, Metrics: metrics,
			Logger: log.With("component", "events")}
		argo := &feedback.ArgoCD{Secret: sec.EventsSecret, Observer: actor, Metrics: metrics,
			Logger: log.With("component", "events")}
		deps.FluxEvents, deps.FluxGate = flux, flux.Gate()
		deps.ArgoCDEvents, deps.ArgoCDGate = argo, argo.Gate()
	}
	// The webhook vets builds without the clone, so CI is served while the
	// clone is made (or while the git server is down at start-up).
	handler := promote.NewServer(deps)
	work := func(ctx context.Context) error {
		repo, err := openConfigRepoRetrying(ctx, cfg, sec, log, metrics.ObservePush, appTokens, state)
		if err != nil {
			return err
		}
		defer closeLogged(log, "config repo", repo.Close)
		return actor.Run(ctx)
	}
	works := []func(context.Context) error{work}
	if cfg.ArgoCD.APIURL != "" {
		poller := &feedback.Poller{APIURL: cfg.ArgoCD.APIURL, Token: sec.ArgoCDToken, Observer: actor,
			Pending: actor.AwaitingRollout, Interval: cfg.ArgoCD.PollInterval, Logger: log.With("component", "argocd")}
		works = append(works, poller.Run)
	}
	if sec.SlackAppToken != "" && slackHandlers != nil {
		works = append(works, func(ctx context.Context) error {
			return slackui.RunSocketMode(ctx, sec.SlackAppToken, sec.SlackBotToken, cfg.Slack.APIURL, slackHandlers,
				log.With("component", "slack-socket"))
		})
	}
	err = runServer(ctx, cfg.Listen, handler, works, log, d)
	if slackHandlers != nil {
		slackHandlers.Wait()
	}
	return err
}

// newForge is the GitHub client of the configuration, with the App's
// installation tokens when it names an App (nil otherwise).
func newForge(cfg *promote.Config, sec promote.Secrets) (*forge.Client, *forge.AppTokens, error) {
	opts := forge.Options{Repository: cfg.GitHub.Repository, APIURL: cfg.GitHub.APIURL,
		MergeMethod: string(cfg.GitHub.MergeMethod), Token: sec.GitHubToken}
	var appTokens *forge.AppTokens
	switch {
	case cfg.GitHub.App():
		key, err := os.ReadFile(cfg.GitHub.PrivateKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("github.privateKeyFile: %w", err)
		}
		tokens, err := forge.NewAppTokens(cfg.GitHub.APIURL, cfg.GitHub.AppID, cfg.GitHub.InstallationID, key)
		if err != nil {
			return nil, nil, err
		}
		opts.Tokens, opts.Forget, appTokens = tokens.Token, tokens.Forget, tokens
	case sec.GitHubToken == "":
		return nil, nil, errors.New("github is configured but neither PROMOTEBOT_GITHUB_TOKEN nor github.appID is set")
	}
	prs, err := forge.New(opts)
	if err != nil {
		return nil, nil, err
	}
	return prs, appTokens, nil
}

// githubWebhook serves GitHub's deliveries: news of a bot branch's checks
// makes its promotion job run now, and wakes the worker.
func githubWebhook(secret string, st promote.Store, wake chan<- struct{}, log *slog.Logger) *forge.Webhook {
	return &forge.Webhook{Secret: secret, Logger: log.With("component", "github"),
		Hurry: func(ctx context.Context, id string) error {
			for _, kind := range []promote.JobKind{promote.JobPromote, promote.JobRollback} {
				if _, err := st.Hurry(ctx, id, kind); err != nil {
					return err
				}
			}
			select {
			case wake <- struct{}{}:
			default:
			}
			return nil
		}}
}

// watchesSources reports whether a project names its source repository,
// whose deletions GitHub delivers to /github/webhook.
func watchesSources(cfg *promote.Config) bool {
	for _, p := range cfg.Projects {
		if p.SourceRepository != "" {
			return true
		}
	}
	return false
}

// sourceDeletions tears down the QA environment of a branch or tag deleted
// in a project's source repository (projects[].sourceRepository).
func sourceDeletions(cfg *promote.Config, svc *promote.Service) func(ctx context.Context, repo, kind, name string) error {
	return func(ctx context.Context, repo, kind, name string) error {
		reason := promote.TeardownBranchDeleted
		if kind == string(promote.KindTag) {
			reason = promote.TeardownTagDeleted
		} else if kind != string(promote.KindBranch) {
			return nil
		}
		for _, p := range cfg.Projects {
			if p.SourceRepository == "" || !strings.EqualFold(p.SourceRepository, repo) {
				continue
			}
			_, err := svc.TearDown(ctx, p.ID, promote.Kind(kind), name, reason)
			if err != nil && !errors.Is(err, promote.ErrNotFound) {
				return err
			}
		}
		return nil
	}
}

// commitURL links config-repo commits to GitHub's web view when the
// repository is on GitHub (or GitHub Enterprise); nil otherwise.
func commitURL(cfg *promote.Config) func(string) string {
	if cfg.GitHub.Repository == "" {
		return nil
	}
	web := "https://github.com/"
	if api := strings.TrimSuffix(cfg.GitHub.APIURL, "/"); api != "" && api != "https://api.github.com" {
		web = strings.TrimSuffix(api, "/api/v3") + "/"
	}
	return func(sha string) string { return web + cfg.GitHub.Repository + "/commit/" + sha }
}

// cloneState is the config repository once its clone is open: it tells
// /readyz whether it is, and serves as the service's promote.ConfigRepo,
// whose jobs run only after it opened (Run starts then).
type cloneState struct {
	gitops.Checker // vetting a build needs no clone
	mu             sync.Mutex
	repo           *gitops.ConfigRepo
	open           bool
	last           error
}

var (
	_ promote.ConfigRepo      = (*cloneState)(nil)
	_ promote.Revisions       = (*cloneState)(nil)
	_ promote.ProductionRepo  = (*cloneState)(nil)
	_ promote.EnvironmentRepo = (*cloneState)(nil)
)

func (s *cloneState) set(repo *clone.Repo, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open, s.last = repo != nil, err
	if repo != nil {
		s.repo = gitops.NewConfigRepo(repo)
	}
}

// errNotCloned is answered by a change asked for before the clone opened;
// the job is retried.
var errNotCloned = errors.New("config repo not cloned yet")

func (s *cloneState) config() (*gitops.ConfigRepo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repo == nil {
		return nil, errNotCloned
	}
	return s.repo, nil
}

// DeployQA implements promote.ConfigRepo.
func (s *cloneState) DeployQA(ctx context.Context, p promote.Project, b promote.Build) (promote.QADeployment, error) {
	r, err := s.config()
	if err != nil {
		return promote.QADeployment{}, err
	}
	return r.DeployQA(ctx, p, b)
}

// Promote implements promote.ConfigRepo.
func (s *cloneState) Promote(ctx context.Context, p promote.Project, b promote.Build, approvals []promote.Approval,
	promoter promote.Person) (string, error) {
	r, err := s.config()
	if err != nil {
		return "", err
	}
	return r.Promote(ctx, p, b, approvals, promoter)
}

// PromoteBranch implements promote.ConfigRepo.
func (s *cloneState) PromoteBranch(ctx context.Context, p promote.Project, b promote.Build, approvals []promote.Approval,
	promoter promote.Person, branch string) (promote.PromotionCommit, error) {
	r, err := s.config()
	if err != nil {
		return promote.PromotionCommit{}, err
	}
	return r.PromoteBranch(ctx, p, b, approvals, promoter, branch)
}

// Contains implements promote.Revisions.
func (s *cloneState) Contains(ctx context.Context, revision, commit string) (bool, error) {
	r, err := s.config()
	if err != nil {
		return false, err
	}
	return r.Contains(ctx, revision, commit)
}

// ProductionHistory implements promote.ProductionRepo.
func (s *cloneState) ProductionHistory(ctx context.Context, p promote.Project, limit int) ([]promote.ProductionChange, error) {
	r, err := s.config()
	if err != nil {
		return nil, err
	}
	return r.ProductionHistory(ctx, p, limit)
}

// Rollback implements promote.ProductionRepo.
func (s *cloneState) Rollback(ctx context.Context, p promote.Project, rc promote.RollbackChange) (string, error) {
	r, err := s.config()
	if err != nil {
		return "", err
	}
	return r.Rollback(ctx, p, rc)
}

// RollbackBranch implements promote.ProductionRepo.
func (s *cloneState) RollbackBranch(ctx context.Context, p promote.Project, rc promote.RollbackChange, branch string) (promote.PromotionCommit, error) {
	r, err := s.config()
	if err != nil {
		return promote.PromotionCommit{}, err
	}
	return r.RollbackBranch(ctx, p, rc, branch)
}

// TearDownQA implements promote.EnvironmentRepo.
func (s *cloneState) TearDownQA(ctx context.Context, p promote.Project, e promote.Environment, reason string, since time.Time) (string, error) {
	r, err := s.config()
	if err != nil {
		return "", err
	}
	return r.TearDownQA(ctx, p, e, reason, since)
}

// Pins implements promote.Revisions.
func (s *cloneState) Pins(ctx context.Context, p promote.Project, revision, env, image string) (bool, error) {
	r, err := s.config()
	if err != nil {
		return false, err
	}
	return r.Pins(ctx, p, revision, env, image)
}

func (s *cloneState) ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.open:
		return nil
	case s.last != nil:
		return fmt.Errorf("%w: %w", errNotCloned, s.last)
	default:
		return errNotCloned
	}
}

// openConfigRepoRetrying opens the config repository, retrying with capped
// backoff while the remote cannot be reached; failures no retry can fix
// (credentials, a missing repository) end it.
func openConfigRepoRetrying(ctx context.Context, cfg *promote.Config, sec promote.Secrets, log *slog.Logger,
	observePush func(time.Duration), app *forge.AppTokens, state *cloneState) (*clone.Repo, error) {
	delay := time.Second
	for {
		repo, err := openConfigRepo(ctx, cfg, sec, log, observePush, app)
		if err == nil {
			state.set(repo, nil)
			log.Info("config repo ready", "repo", clone.RedactURL(cfg.GitOps.Repo))
			return repo, nil
		}
		state.set(nil, err)
		if promote.IsPermanent(err) || ctx.Err() != nil {
			return nil, err
		}
		log.Warn("config repo unreachable: builds are accepted and wait", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, time.Minute)
	}
}

// runServer serves HTTP and runs the works until ctx ends, then stops
// accepting requests, lets those in flight finish, and stops the works; a
// job in progress goes back to the queue when its lease ends. If a work fails
// for good (the config repo cannot be opened, Slack refuses the app token),
// the server stops with its error.
func runServer(ctx context.Context, listen string, h http.Handler, works []func(context.Context) error,
	log *slog.Logger, d deps) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	if _, err := fmt.Fprintf(d.stdout, "promotebot listening on %s\n", ln.Addr()); err != nil {
		return errors.Join(err, ln.Close())
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	worked := make(chan error, len(works))
	for _, w := range works {
		go func() { worked <- w(workCtx) }()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var workErrs []error
	select {
	case err = <-served:
	case werr := <-worked:
		log.Error("stopped", "err", werr)
		workErrs = append(workErrs, werr)
	case <-ctx.Done():
		log.Info("shutting down")
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	if serr := srv.Shutdown(shut); err == nil {
		err = serr
	}
	cancel()
	stopWork()
	for len(workErrs) < len(works) {
		workErrs = append(workErrs, <-worked)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	for i, werr := range workErrs {
		if errors.Is(werr, context.Canceled) && ctx.Err() != nil {
			workErrs[i] = nil
		}
	}
	return errors.Join(append(workErrs, err)...)
}

func closeLogged(log *slog.Logger, what string, close func() error) {
	if err := close(); err != nil {
		log.Error("close "+what, "err", err)
	}
}

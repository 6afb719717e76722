package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/promotebot/promotebot/cmd/promotebot/internal/quickstart"
	"github.com/promotebot/promotebot/slackui/localslack"
)

// The local workspace quickstart sets up: one QA member, one owner, one
// channel for every project.
var (
	quickstartQA      = localslack.Person{ID: "ULOCALQA", Name: "Quinn", Label: "Quinn (QA)", Email: "quinn@localhost"}
	quickstartOwner   = localslack.Person{ID: "ULOCALOWNER", Name: "Olive", Label: "Olive (owner)", Email: "olive@localhost"}
	quickstartChannel = localslack.Channel{ID: "CLOCAL", Name: "deploys"}
)

// quickstartSeeds are where a new config repo is seeded from when --seed is
// not given, relative to the working directory: the first that exists.
var quickstartSeeds = []string{filepath.Join("examples", "config-repo"), filepath.Join("testdata", "configrepo")}

func quickstartCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:  "quickstart",
		Usage: "try the whole flow on this machine: a local config repo, the bot, and a local Slack in the browser",
		Description: "quickstart makes a bare config repository in --dir (seeded from --seed the first time, " +
			"reused afterwards), writes a configuration with a project for each apps/<app> that has " +
			"overlays/production, and runs the same server as serve (direct mode, embedded store) with Slack " +
			"replaced by a local stand-in. Its page shows each person's messages; its buttons send signed " +
			"interactions to the bot as Slack does. It prints the page's address, a curl that reports a build, " +
			"and then every commit the bot makes. Secrets are made up at each start; the bot logs to --dir.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "keep the config repo, configuration, store and log in `DIR`, " +
				"reused if it exists (default: promotebot-quickstart in the temporary directory)"},
			&cli.StringFlag{Name: "seed", Usage: "seed a new config repo from the files in `DIR` " +
				"(default: examples/config-repo, else testdata/configrepo)"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "the bot's `HOST:PORT`"},
			&cli.StringFlag{Name: "page", Value: "127.0.0.1:8081", Usage: "the local Slack page's `HOST:PORT`"},
		},
		Action: func(c *cli.Context) error { return runQuickstart(c.Context, c, d) },
	}
}

// runQuickstart makes or reuses the config repo, starts the local Slack and
// the bot, prints what to try, then the bot's commits until ctx ends.
func runQuickstart(ctx context.Context, c *cli.Context, d deps) (err error) {
	out := &lockedWriter{w: d.stdout}
	dir, err := quickstartDir(c.String("dir"), d.getenv)
	if err != nil {
		return err
	}
	remote := filepath.Join(dir, "config.git")
	origin, err := quickstart.EnsureRemote(remote, c.String("seed"), quickstartSeeds)
	if err != nil {
		return err
	}
	projects, head, err := quickstart.Projects(remote)
	if err != nil {
		return err
	}
	token, signing, webhook := "xoxb-local-"+rand.Text(), rand.Text(), rand.Text()
	slack := localslack.New(localslack.Options{Token: token, SigningSecret: signing,
		People: []localslack.Person{quickstartQA, quickstartOwner}, Channels: []localslack.Channel{quickstartChannel}})
	apiURL, stopAPI, err := serveLocal(ctx, "127.0.0.1:0", slack.API())
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopAPI()) }()
	pageURL, stopPage, err := serveLocal(ctx, c.String("page"), slack.Page())
	if err != nil {
		return fmt.Errorf("page: %w", err)
	}
	defer func() { err = errors.Join(err, stopPage()) }()
	config := filepath.Join(dir, "config.yaml")
	if err := writeQuickstartConfig(config, c.String("listen"), dir, remote, apiURL+"/api/", projects); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "promotebot.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, logFile.Close()) }()
	found := make([]string, 0, len(projects))
	for _, p := range projects {
		found = append(found, p.ID+" ("+p.Image+":"+p.Tag+")")
	}
	if _, err := fmt.Fprintf(out, "promotebot quickstart: the bot, its config repo and a local Slack, on this machine. "+
		"Ctrl-C stops it.\n  config repo  %s (%s)\n  projects     %s\n  config       %s\n  bot log      %s\n",
		remote, origin, strings.Join(found, ", "), config, logPath); err != nil {
		return err
	}

	// The bot is serve itself, with the made-up secrets and its log in dir.
	env := quickstartEnv(d.getenv, map[string]string{"PROMOTEBOT_WEBHOOK_SECRET": webhook,
		"PROMOTEBOT_SLACK_BOT_TOKEN": token, "PROMOTEBOT_SLACK_SIGNING_SECRET": signing})
	listening := &listenLine{w: out, addr: make(chan string, 1)}
	var serveErr error
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		serveErr = runServe(ctx, deps{getenv: env, stdout: listening, stderr: logFile}, config)
	}()
	var bot string
	select {
	case addr := <-listening.addr:
		bot = "http://" + dialable(addr)
	case <-stopped:
		return fmt.Errorf("the bot did not start (see %s): %w", logPath, serveErr)
	}
	slack.SetInteractionURL(bot + "/slack/interactions")
	if err := printNextSteps(out, nextSteps{page: pageURL, bot: bot, webhook: webhook, remote: remote,
		project: projects[0], head: head}); err != nil {
		return err
	}
	quickstart.WatchCommits(ctx, remote, head.Hash, out, stopped)
	<-stopped
	return serveErr
}

// nextSteps is what printNextSteps tells.
type nextSteps struct {
	page, bot, webhook, remote string
	project                    quickstart.Project
	head                       *object.Commit
}

// printNextSteps tells how to try the flow: the page, a curl that reports a
// build of the project that is new to the config repo (a repeat would
// answer 200 with the earlier build and change nothing), and where the
// bot's commits will show, with the git command to read them.
func printNextSteps(out io.Writer, n nextSteps) error {
	p := n.project
	body, err := json.Marshal(struct {
		Project string `json:"project"`
		Image   string `json:"image"`
		Type    string `json:"type"`
		Target  string `json:"target"`
	}{p.ID, p.Image + ":" + p.NextTag(), "branch", "feature/quickstart"})
	if err != nil {
		return fmt.Errorf("build body: %w", err)
	}
	_, err = fmt.Fprintf(out, "\n1. Open the local Slack: %s/\n"+
		"   %s approves at %s/?as=%s, %s deploys at %s/?as=%s\n"+
		"2. Report a build, as CI would (its tag is new to the config repo; reporting the same project, image\n"+
		"   and target again answers 200 with the earlier build and changes nothing: change the tag for another):\n"+
		"   curl -sS -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '%s' %s/v1/builds\n"+
		"3. The bot's commits to the config repo, as it makes them (main is at %s); the last one with its trailers:\n"+
		"   git --git-dir %s log -1 main\n",
		n.page, quickstartQA.Label, n.page, quickstartQA.ID, quickstartOwner.Label, n.page, quickstartOwner.ID,
		n.webhook, body, n.bot, strings.TrimPrefix(quickstart.CommitLine(n.head), "commit "), shellQuote(n.remote))
	return err
}

// shellQuote quotes s for a POSIX shell when it holds anything but letters,
// digits and /._-+:@,
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runServe runs the serve subcommand with --config config, as the command
// line would (newApp would be an initialization cycle: it lists quickstart).
func runServe(ctx context.Context, d deps, config string) error {
	cmd := serveCommand(d)
	bindEnv(cmd.Flags, &cmd.Before, d.getenv)
	app := &cli.App{Name: "promotebot", Writer: d.stdout, ErrWriter: d.stderr, Commands: []*cli.Command{cmd},
		ExitErrHandler: func(*cli.Context, error) {}}
	return app.RunContext(ctx, []string{"promotebot", "serve", "--config", config})
}

// quickstartDir makes (or finds) the working directory, as an absolute path.
func quickstartDir(dir string, getenv func(string) string) (string, error) {
	if dir == "" {
		tmp := getenv("TMPDIR")
		if tmp == "" {
			tmp = os.TempDir()
		}
		dir = filepath.Join(tmp, "promotebot-quickstart")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// quickstartEnv is getenv with the made-up secrets, and without the
// credentials of a real setup (a Socket Mode token, GitHub, git).
func quickstartEnv(getenv func(string) string, secrets map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := secrets[k]; ok {
			return v
		}
		if strings.HasPrefix(k, "PROMOTEBOT_SLACK_") || strings.HasPrefix(k, "PROMOTEBOT_GIT") ||
			k == "PROMOTEBOT_CONFIG" || k == "PROMOTEBOT_WEBHOOK_SECRET" {
			return ""
		}
		return getenv(k)
	}
}

func writeQuickstartConfig(file, listen, dir, remote, apiURL string, projects []quickstart.Project) error {
	type project struct {
		ID                string   `yaml:"id"`
		URL               string   `yaml:"url"`
		Channel           string   `yaml:"channel"`
		QA                []string `yaml:"qa,flow"`
		Owners            []string `yaml:"owners,flow"`
		Image             string   `yaml:"image"`
		Path              string   `yaml:"path"`
		RequiredApprovals int      `yaml:"requiredApprovals"`
	}
	cfg := struct {
		Listen  string `yaml:"listen"`
		DataDir string `yaml:"dataDir"`
		GitOps  struct {
			Repo   string `yaml:"repo"`
			Branch string `yaml:"branch"`
		} `yaml:"gitops"`
		Slack struct {
			APIURL string `yaml:"apiURL"`
		} `yaml:"slack"`
		Projects []project `yaml:"projects"`
	}{Listen: listen, DataDir: filepath.Join(dir, "data")}
	cfg.GitOps.Repo, cfg.GitOps.Branch, cfg.Slack.APIURL = remote, "main", apiURL
	for _, p := range projects {
		cfg.Projects = append(cfg.Projects, project{ID: p.ID, URL: "https://" + p.ID + ".example.com",
			Channel: quickstartChannel.ID, QA: []string{quickstartQA.ID}, Owners: []string{quickstartOwner.ID},
			Image: p.Image, Path: "apps/" + p.ID, RequiredApprovals: 1})
	}
	doc, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	header := "# Written by promotebot quickstart at each start; the local Slack's address changes each time.\n"
	return os.WriteFile(file, append([]byte(header), doc...), 0o600)
}

// serveLocal serves h on addr until stop is called; it returns the base URL.
func serveLocal(ctx context.Context, addr string, h http.Handler) (string, func() error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context {
		return context.WithoutCancel(ctx)
	}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stop := func() error {
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(shut)
		if errors.Is(err, context.DeadlineExceeded) {
			// A request still running after 5 s (a client that keeps its
			// connection busy) is cut: this is a local page, nothing to drain.
			err = srv.Close()
		} else if err != nil {
			err = errors.Join(err, srv.Close())
		}
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
	return "http://" + dialable(ln.Addr().String()), stop, nil
}

// dialable turns a listening address into one to connect to: a wildcard
// host becomes the loopback address.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// lockedWriter serializes writes from the bot and the commit watcher.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// listenLine passes serve's output on and reports the address of its
// "promotebot listening on HOST:PORT" line.
type listenLine struct {
	w    io.Writer
	addr chan string
	buf  []byte
}

func (l *listenLine) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := slices.Index(l.buf, '\n')
		if i < 0 {
			break
		}
		line := string(l.buf[:i])
		l.buf = l.buf[i+1:]
		if addr, ok := strings.CutPrefix(line, "promotebot listening on "); ok {
			select {
			case l.addr <- strings.TrimSpace(addr):
			default:
			}
		}
	}
	return l.w.Write(p)
}

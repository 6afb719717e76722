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
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

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
		Action: func(c *cli.Context) error { return quickstart(c.Context, c, d) },
	}
}

// quickstartProject is a project found in the config repo.
type quickstartProject struct {
	ID, Image, Tag string
}

func quickstart(ctx context.Context, c *cli.Context, d deps) (err error) {
	out := &lockedWriter{w: d.stdout}
	dir, err := quickstartDir(c.String("dir"), d.getenv)
	if err != nil {
		return err
	}
	remote := filepath.Join(dir, "config.git")
	origin, err := ensureQuickstartRemote(remote, c.String("seed"))
	if err != nil {
		return err
	}
	projects, head, err := quickstartProjects(remote)
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
	if err := printNextSteps(out, pageURL, bot, webhook, projects[0], head); err != nil {
		return err
	}
	watchCommits(ctx, remote, head.Hash, out, stopped)
	<-stopped
	return serveErr
}

// printNextSteps tells how to try the flow: the page, a curl that reports a
// build of p, and where the bot's commits will show.
func printNextSteps(out io.Writer, page, bot, webhook string, p quickstartProject, head *object.Commit) error {
	body, err := json.Marshal(struct {
		Project string `json:"project"`
		Image   string `json:"image"`
		Type    string `json:"type"`
		Target  string `json:"target"`
	}{p.ID, p.Image + ":" + nextTag(p.Tag), "branch", "feature/quickstart"})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "\n1. Open the local Slack: %s/\n"+
		"   %s approves at %s/?as=%s, %s deploys at %s/?as=%s\n"+
		"2. Report a build, as CI would:\n"+
		"   curl -sS -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '%s' %s/v1/builds\n"+
		"3. The bot's commits to the config repo, as it makes them (main is at %s):\n",
		page, quickstartQA.Label, page, quickstartQA.ID, quickstartOwner.Label, page, quickstartOwner.ID,
		webhook, body, bot, strings.TrimPrefix(commitLine(head), "commit "))
	return err
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

// ensureQuickstartRemote makes the bare config repo at remote from the seed
// files, unless it exists; it says which it did.
func ensureQuickstartRemote(remote, seed string) (string, error) {
	if _, err := git.PlainOpen(remote); err == nil {
		return "reused", nil
	}
	if seed == "" {
		for _, s := range quickstartSeeds {
			if fi, err := os.Stat(s); err == nil && fi.IsDir() {
				seed = s
				break
			}
		}
		if seed == "" {
			return "", fmt.Errorf("no files to seed the config repo with: run from promotebot's source tree or give --seed DIR (%s)",
				strings.Join(quickstartSeeds, ", "))
		}
	}
	repo, err := git.PlainInitWithOptions(remote, &git.PlainInitOptions{Bare: true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		return "", fmt.Errorf("config repo: %w", err)
	}
	tree, files, err := writeSeedTree(repo.Storer, seed)
	if err == nil && files == 0 {
		err = errors.New("no files")
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("seed %s: %w", seed, err), os.RemoveAll(remote))
	}
	sig := object.Signature{Name: "promotebot quickstart", Email: "quickstart@localhost", When: time.Now()}
	commit := &object.Commit{Author: sig, Committer: sig, TreeHash: tree,
		Message: "Seed the config repository from " + filepath.ToSlash(seed) + "\n"}
	h, err := storeObject(repo.Storer, commit)
	if err != nil {
		return "", err
	}
	if err := repo.Storer.SetReference(plumbing.NewHashReference(plumbing.Main, h)); err != nil {
		return "", err
	}
	return "new, seeded from " + filepath.ToSlash(seed), nil
}

// writeSeedTree stores the files below dir as a git tree; it returns the
// tree and how many files it holds. Symbolic links and .git are left out.
func writeSeedTree(st storage.Storer, dir string) (plumbing.Hash, int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return plumbing.ZeroHash, 0, err
	}
	var tree object.Tree
	files := 0
	for _, e := range entries {
		name := filepath.Join(dir, e.Name())
		switch {
		case e.Name() == ".git":
		case e.IsDir():
			h, n, err := writeSeedTree(st, name)
			if err != nil {
				return plumbing.ZeroHash, 0, err
			}
			if n > 0 { // git keeps no empty folders
				tree.Entries = append(tree.Entries, object.TreeEntry{Name: e.Name(), Mode: filemode.Dir, Hash: h})
				files += n
			}
		case e.Type().IsRegular():
			data, err := os.ReadFile(name)
			if err != nil {
				return plumbing.ZeroHash, 0, err
			}
			obj := st.NewEncodedObject()
			obj.SetType(plumbing.BlobObject)
			w, err := obj.Writer()
			if err == nil {
				_, err = w.Write(data)
				err = errors.Join(err, w.Close())
			}
			if err != nil {
				return plumbing.ZeroHash, 0, err
			}
			h, err := st.SetEncodedObject(obj)
			if err != nil {
				return plumbing.ZeroHash, 0, err
			}
			mode := filemode.Regular
			if info, err := e.Info(); err == nil && info.Mode()&0o111 != 0 {
				mode = filemode.Executable
			}
			tree.Entries = append(tree.Entries, object.TreeEntry{Name: e.Name(), Mode: mode, Hash: h})
			files++
		}
	}
	// git orders a tree's entries by name, a folder's name as if it ended in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	slices.SortFunc(tree.Entries, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })
	h, err := storeObject(st, &tree)
	return h, files, err
}

// storeObject encodes and stores a tree or commit.
func storeObject(st storage.Storer, o interface {
	Encode(plumbing.EncodedObject) error
}) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

var projectIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// quickstartProjects finds the projects on the config repo's main: every
// apps/<app> with an overlays/production/kustomization.yaml that lists an
// image. It also returns main's commit.
func quickstartProjects(remote string) ([]quickstartProject, *object.Commit, error) {
	repo, err := git.PlainOpen(remote)
	if err != nil {
		return nil, nil, err
	}
	ref, err := repo.Reference(plumbing.Main, true)
	if err != nil {
		return nil, nil, fmt.Errorf("config repo %s: main: %w", remote, err)
	}
	head, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, nil, err
	}
	root, err := head.Tree()
	if err != nil {
		return nil, nil, err
	}
	apps, err := root.Tree("apps")
	if err != nil {
		return nil, nil, fmt.Errorf("config repo %s has no apps/ folder", remote)
	}
	var projects []quickstartProject
	for _, e := range apps.Entries {
		if e.Mode != filemode.Dir || !projectIDPattern.MatchString(e.Name) {
			continue
		}
		f, err := apps.File(path.Join(e.Name, "overlays", "production", "kustomization.yaml"))
		if err != nil {
			continue
		}
		text, err := f.Contents()
		if err != nil {
			return nil, nil, err
		}
		if image, tag := productionImage(text, e.Name); image != "" {
			projects = append(projects, quickstartProject{ID: e.Name, Image: image, Tag: tag})
		}
	}
	if len(projects) == 0 {
		return nil, nil, fmt.Errorf("config repo %s: no apps/<app>/overlays/production/kustomization.yaml with an images: entry", remote)
	}
	return projects, head, nil
}

// productionImage picks the app's entry under images: (the one whose
// repository ends in /<app>, else the first) and returns its repository
// (newName, else name) and tag.
func productionImage(kustomization, app string) (image, tag string) {
	var k struct {
		Images []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	if yaml.Unmarshal([]byte(kustomization), &k) != nil || len(k.Images) == 0 {
		return "", ""
	}
	pick := k.Images[0]
	for _, im := range k.Images {
		if strings.HasSuffix(im.Name, "/"+app) || strings.HasSuffix(im.NewName, "/"+app) {
			pick = im
			break
		}
	}
	image = pick.Name
	if pick.NewName != "" {
		image = pick.NewName
	}
	return image, pick.NewTag
}

// nextTag is a new tag after tag: 1.3.0 → 1.4.0, else "quickstart".
func nextTag(tag string) string {
	v, rest := "", tag
	if strings.HasPrefix(rest, "v") {
		v, rest = "v", rest[1:]
	}
	parts := strings.Split(rest, ".")
	if len(parts) == 3 {
		if minor, err := strconv.Atoi(parts[1]); err == nil {
			return v + parts[0] + "." + strconv.Itoa(minor+1) + ".0"
		}
	}
	return "quickstart"
}

func writeQuickstartConfig(file, listen, dir, remote, apiURL string, projects []quickstartProject) error {
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
		if err != nil {
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

// watchCommits prints each new commit on the config repo's main, oldest
// first, every second until ctx ends or the bot stops.
func watchCommits(ctx context.Context, remote string, last plumbing.Hash, out io.Writer, stopped <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stopped:
			return
		case <-t.C:
		}
		commits, err := newCommits(remote, last)
		if err != nil || len(commits) == 0 {
			continue // a push in progress, or nothing new: look again next second
		}
		for _, c := range slices.Backward(commits) {
			if _, err := fmt.Fprintln(out, commitLine(c)); err != nil {
				return
			}
		}
		last = commits[0].Hash
	}
}

// newCommits lists main's commits after last, newest first (at most 100,
// along first parents).
func newCommits(remote string, last plumbing.Hash) ([]*object.Commit, error) {
	repo, err := git.PlainOpen(remote)
	if err != nil {
		return nil, err
	}
	ref, err := repo.Reference(plumbing.Main, true)
	if err != nil {
		return nil, err
	}
	var out []*object.Commit
	for h := ref.Hash(); h != last && len(out) < 100; {
		c, err := repo.CommitObject(h)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		if c.NumParents() == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	return out, nil
}

func commitLine(c *object.Commit) string {
	subject, _, _ := strings.Cut(c.Message, "\n")
	return "commit " + c.Hash.String()[:12] + " " + subject
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

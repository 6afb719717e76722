package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/promotebot/promotebot/gitops/gittest"
)

// quickstartSession is a running `promotebot quickstart` and what it printed.
type quickstartSession struct {
	dir, page, bot, bearer string
	build                  map[string]string // the curl's body
	gitLog                 string            // the git command it prints
	stop                   func()            // stops it (again: nothing)
	mu                     sync.Mutex
	lines                  []string
}

var curlLine = regexp.MustCompile(`curl -sS -H 'Authorization: Bearer ([^']+)' -H 'Content-Type: application/json' -d '([^']+)' (http://\S+)/v1/builds`)

// startQuickstart runs quickstart in this process, in dir (a fresh one when
// ""), on free ports, and reads the page's address, the curl and the git
// command it prints. It stops at the end of the test, or with s.stop.
func startQuickstart(t *testing.T, dir string) *quickstartSession {
	t.Helper()
	seed := filepath.Join("..", "..", "examples", "config-repo")
	if _, err := os.Stat(seed); err != nil {
		seed = filepath.Join("..", "..", "testdata", "configrepo")
	}
	if dir == "" {
		dir = t.TempDir()
	}
	s := &quickstartSession{dir: dir}
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	var stderr lockedLog
	go func() {
		done <- run(ctx, []string{"promotebot", "quickstart", "--dir", s.dir, "--seed", seed,
			"--listen", "127.0.0.1:0", "--page", "127.0.0.1:0"}, func(string) string { return "" }, w, &stderr)
		w.Close()
	}()
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("quickstart: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("quickstart did not stop")
			}
			if t.Failed() {
				logs, err := os.ReadFile(filepath.Join(s.dir, "promotebot.log"))
				t.Logf("quickstart printed:\n%s\nstderr: %s\nbot log (%v):\n%s", s.output(), stderr.String(), err, logs)
			}
		})
	}
	t.Cleanup(s.stop)
	curl := s.waitLine(t, "the curl", func(l string) bool { return curlLine.MatchString(l) })
	m := curlLine.FindStringSubmatch(curl)
	s.bearer, s.bot = m[1], m[3]
	if err := json.Unmarshal([]byte(m[2]), &s.build); err != nil {
		t.Fatalf("curl body %q: %v", m[2], err)
	}
	open := s.waitLine(t, "the page's address", func(l string) bool { return strings.HasPrefix(l, "1. Open the local Slack: ") })
	s.page = strings.TrimSuffix(strings.TrimPrefix(open, "1. Open the local Slack: "), "/")
	s.gitLog = strings.TrimSpace(s.waitLine(t, "the git command", func(l string) bool { return strings.HasPrefix(l, "   git ") }))
	return s
}

func (s *quickstartSession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// waitLine waits up to 30 s for a printed line that ok accepts.
func (s *quickstartSession) waitLine(t *testing.T, what string, ok func(string) bool) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		s.mu.Lock()
		for _, l := range s.lines {
			if ok(l) {
				s.mu.Unlock()
				return l
			}
		}
		s.mu.Unlock()
	}
	t.Fatalf("quickstart never printed %s", what)
	return ""
}

func (s *quickstartSession) remote() string { return filepath.Join(s.dir, "config.git") }

// postBuild reports a build as the printed curl does, with the bearer secret.
func (s *quickstartSession) postBuild(t *testing.T, build map[string]string) string {
	t.Helper()
	body, err := json.Marshal(build)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, s.bot+"/v1/builds", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.bearer)
	req.Header.Set("Content-Type", "application/json")
	code, out := do(t, req)
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/builds: %d %v", code, out)
	}
	return out["id"].(string)
}

// waitState polls the build until it is in state want.
func (s *quickstartSession) waitState(t *testing.T, id, want string) {
	t.Helper()
	var last map[string]any
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, err := http.NewRequest(http.MethodGet, s.bot+"/v1/builds/"+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+s.bearer)
		if _, last = do(t, req); last["state"] == want {
			return
		}
	}
	t.Fatalf("build %s: %v, want state %s", id, last, want)
}

// pageAs is the page as user sees it.
func (s *quickstartSession) pageAs(t *testing.T, user string) string {
	t.Helper()
	resp, err := http.Get(s.page + "/?as=" + user)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET page as %s: %d %v", user, resp.StatusCode, err)
	}
	return string(b)
}

var (
	actForm     = regexp.MustCompile(`(?s)<form class="act" method="post" action="/click">(.*?)</form>`)
	modalForm   = regexp.MustCompile(`(?s)<form method="post" action="/submit">(.*?)</form>`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

func formValues(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// waitButton waits until user's page has the button action for build id,
// and returns its form's fields and the button's markup.
func (s *quickstartSession) waitButton(t *testing.T, user, action, id string) (url.Values, string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, m := range actForm.FindAllStringSubmatch(s.pageAs(t, user), -1) {
			if v := formValues(m[1]); v.Get("action_id") == action && v.Get("value") == id {
				return v, m[1]
			}
		}
	}
	t.Fatalf("no %s button for build %s on the page of %s:\n%s", action, id, user, s.pageAs(t, user))
	return nil, ""
}

// submitForm posts a page form as the browser does, following the redirect
// back to the page.
func (s *quickstartSession) submitForm(t *testing.T, path string, v url.Values) {
	t.Helper()
	resp, err := http.PostForm(s.page+path, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("POST %s: %d at %s, %v: %s", path, resp.StatusCode, resp.Request.URL, err, b)
	}
}

// checkPromoted checks the bare repo: the production overlay holds image,
// with the trailers of Quinn's approval and Olive's promotion, and
// quickstart printed the commit.
func (s *quickstartSession) checkPromoted(t *testing.T, project, image string) {
	t.Helper()
	_, tag, _ := strings.Cut(image, ":")
	kust, ok := gittest.ReadFile(t, s.remote(), "main", "apps/"+project+"/overlays/production/kustomization.yaml")
	if !ok || !strings.Contains(kust, tag) {
		t.Fatalf("production overlay of %s does not hold %s:\n%s", project, tag, kust)
	}
	prod := gittest.Log(t, s.remote(), "main")[0]
	approved, promoted := prod.TrailerValues("Approved-by"), prod.TrailerValues("Promoted-by")
	if len(approved) != 1 || !strings.HasPrefix(approved[0], "Quinn <slack:ULOCALQA> ") ||
		len(promoted) != 1 || promoted[0] != "Olive <slack:ULOCALOWNER>" {
		t.Fatalf("trailers: Approved-by %q, Promoted-by %q", approved, promoted)
	}
	s.waitLine(t, "the production commit", func(l string) bool { return strings.HasPrefix(l, "commit "+prod.Hash[:12]+" ") })
}

// TestQuickstartFlow: the printed curl's build goes to QA; Quinn approves
// and Olive deploys on the page, whose buttons send signed interactions to
// the bot; the production overlay changes in the bare repo. A second build
// is rejected through the modal, with a reason that must reach the owner's
// page escaped.
func TestQuickstartFlow(t *testing.T) {
	s := startQuickstart(t, "")
	if !strings.Contains(s.output(), "(new, seeded from ") {
		t.Errorf("the config repo was not seeded:\n%s", s.output())
	}
	index := s.pageAs(t, "")
	for _, want := range []string{"Quinn (QA)", "Olive (owner)", "ULOCALQA", "ULOCALOWNER", "#deploys", "CLOCAL"} {
		if !strings.Contains(index, want) {
			t.Errorf("the index does not list %q", want)
		}
	}
	id := s.postBuild(t, s.build)

	approve, button := s.waitButton(t, "ULOCALQA", "qa_approve", id)
	if !strings.Contains(button, `>Approve</button>`) {
		t.Errorf("approve button: %s", button)
	}
	s.submitForm(t, "/click", approve)
	s.waitState(t, id, "approved")
	deploy, button := s.waitButton(t, "ULOCALOWNER", "prod_deploy", id)
	if !strings.Contains(button, `data-confirm="Deploy to production?`) {
		t.Errorf("the deploy button asks for no confirmation: %s", button)
	}
	s.submitForm(t, "/click", deploy)
	s.waitState(t, id, "promoted")
	s.checkPromoted(t, s.build["project"], s.build["image"])

	// The git command it printed reads the trailers, wherever it runs and
	// whatever TMPDIR is.
	if want := "git --git-dir " + s.remote() + " log -1 main"; s.gitLog != want {
		t.Errorf("printed %q, want %q", s.gitLog, want)
	}
	cmd := exec.Command("sh", "-c", s.gitLog)
	cmd.Dir, cmd.Env = t.TempDir(), []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Promoted-by: Olive <slack:ULOCALOWNER>") {
		t.Errorf("%s: %v\n%s", s.gitLog, err, out)
	}

	// Rejected through the dialog the bot opens with views.open.
	other := map[string]string{"project": s.build["project"], "image": s.build["image"] + "-rc",
		"type": "branch", "target": "feature/reject-me"}
	id2 := s.postBuild(t, other)
	reject, _ := s.waitButton(t, "ULOCALQA", "qa_reject", id2)
	s.submitForm(t, "/click", reject)
	var modal url.Values
	for deadline := time.Now().Add(20 * time.Second); modal == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := modalForm.FindStringSubmatch(s.pageAs(t, "ULOCALQA")); m != nil {
			if !strings.Contains(m[1], `name="v.reason.reason"`) {
				t.Fatalf("the dialog has no reason field: %s", m[1])
			}
			modal = formValues(m[1])
		}
	}
	if modal == nil {
		t.Fatal("the reject dialog never showed")
	}
	modal.Set("v.reason.reason", `<script>alert("x")</script> *broken* login`)
	s.submitForm(t, "/submit", modal)
	s.waitState(t, id2, "rejected")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		owner := s.pageAs(t, "ULOCALOWNER")
		if strings.Contains(owner, "<script>alert") {
			t.Fatalf("the reason reached the page unescaped")
		}
		if strings.Contains(owner, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; <b>broken</b> login`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the owner's page does not show the reason:\n%s", owner)
		}
	}
	if strings.Contains(s.pageAs(t, "ULOCALQA"), `action="/submit"`) {
		t.Error("the dialog is still open after it was submitted")
	}
	// The rejected build offers its owner no Deploy button: Close, and the
	// teardown of its QA environment.
	var buttons []string
	for _, m := range actForm.FindAllStringSubmatch(s.pageAs(t, "ULOCALOWNER"), -1) {
		if v := formValues(m[1]); v.Get("value") == id2 {
			buttons = append(buttons, v.Get("action_id"))
		}
	}
	if strings.Join(buttons, " ") != "build_close qa_teardown" {
		t.Errorf("the owner's buttons for the rejected build: %q, want build_close and qa_teardown", buttons)
	}
}

// TestQuickstartRunAgain: run again in the same directory after trying the
// printed curl (the build is on QA, production unchanged), quickstart
// prints a build that is new (202), not the first run's again (200, a
// duplicate that leaves the fresh page empty).
func TestQuickstartRunAgain(t *testing.T) {
	first := startQuickstart(t, "")
	first.waitState(t, first.postBuild(t, first.build), "qa-ready")
	first.stop()
	again := startQuickstart(t, first.dir)
	if !strings.Contains(again.output(), "(reused)") {
		t.Errorf("the second run did not reuse the config repo:\n%s", again.output())
	}
	if again.build["image"] == first.build["image"] {
		t.Errorf("the second run prints the build %s again", again.build["image"])
	}
	again.waitState(t, again.postBuild(t, again.build), "qa-ready")
}

// TestQuickstartInChromium drives the same flow through the real page in
// headless Chromium, over the DevTools protocol: the page refreshes by
// itself, the buttons submit their forms, and Deploy's confirmation dialog
// is accepted.
func TestQuickstartInChromium(t *testing.T) {
	skipIfShort(t, "a browser drives the local Slack page")
	chromium := findChromium(t)
	s := startQuickstart(t, "")
	b := startChromium(t, chromium)

	// The QA message appears on the open page without a reload.
	b.navigate(t, s.page+"/?as=ULOCALQA")
	b.eval(t, `window.notReloaded = true`)
	id := s.postBuild(t, s.build)
	approve := fmt.Sprintf(`document.querySelector('button[data-action=qa_approve][data-value=%q]')`, id)
	b.waitTrue(t, "the Approve button", approve+" !== null")
	if v := b.eval(t, `window.notReloaded === true`); string(v) != "true" {
		t.Error("the page was reloaded rather than refreshed in place")
	}
	b.eval(t, approve+".click(); true")
	s.waitState(t, id, "approved")

	b.navigate(t, s.page+"/?as=ULOCALOWNER")
	deploy := fmt.Sprintf(`document.querySelector('button[data-action=prod_deploy][data-value=%q]')`, id)
	b.waitTrue(t, "the Deploy button", deploy+" !== null")
	b.eval(t, deploy+".click(); true")
	select {
	case msg := <-b.dialogs:
		if !strings.Contains(msg, "Deploy to production?") {
			t.Errorf("confirmation dialog: %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Deploy asked for no confirmation")
	}
	s.waitState(t, id, "promoted")
	s.checkPromoted(t, s.build["project"], s.build["image"])
	b.waitTrue(t, "the page to say who deployed",
		`document.getElementById('feed').innerText.includes('@Olive deployed')`)
}

// findChromium returns a Chromium binary: $PROMOTEBOT_TEST_CHROMIUM, or
// one on PATH. Without one the test fails in CI (CI=true: .ci/run installs
// it) and skips elsewhere, naming the tool either way; tests install nothing.
func findChromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PROMOTEBOT_TEST_CHROMIUM"); p != "" {
		return p
	}
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("chromium is not installed (none of %s on PATH, no PROMOTEBOT_TEST_CHROMIUM); "+
		"install it, e.g. apt-get install chromium", strings.Join(names, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestQuickstartScriptHasItsOwnDirectory: examples/quickstart.sh and the
// quickstart subcommand keep their repository and configuration in
// different directories by default, so that one does not break the other.
func TestQuickstartScriptHasItsOwnDirectory(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^work=\$\{[A-Z_]+:-([^}]+)\}$`).FindSubmatch(script)
	if m == nil {
		t.Fatal("examples/quickstart.sh sets no default work directory (work=${VAR:-DIR})")
	}
	tmp := t.TempDir()
	dir, err := quickstartDir("", func(k string) string { return map[string]string{"TMPDIR": tmp}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(string(m[1])) == filepath.Base(dir) {
		t.Errorf("examples/quickstart.sh works in %s, the quickstart in %s: the same folder name", m[1], dir)
	}
}

// outcomeTB records how a helper ended the test it was given.
type outcomeTB struct {
	testing.TB
	fatal, skip string
}

func (o *outcomeTB) Helper() {}

func (o *outcomeTB) Fatal(args ...any) {
	o.fatal = fmt.Sprint(args...)
	runtime.Goexit()
}

func (o *outcomeTB) Skip(args ...any) {
	o.skip = fmt.Sprint(args...)
	runtime.Goexit()
}

// TestFindChromiumWithout: without chromium the browser test fails in CI
// and skips elsewhere, naming chromium either way, and installs nothing.
func TestFindChromiumWithout(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("PROMOTEBOT_TEST_CHROMIUM", "")
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		o := &outcomeTB{TB: t}
		done := make(chan string, 2) // the result, then "" when it returns or ends the test
		go func() {
			defer func() { done <- "" }()
			done <- findChromium(o)
		}()
		if got := <-done; got != "" {
			t.Fatalf("CI=%q: found %q on an empty PATH", ci, got)
		}
		ended := o.skip
		if ci == "true" {
			ended = o.fatal
			if o.skip != "" {
				t.Errorf("CI=true: skipped (%s), want a failure", o.skip)
			}
		} else if o.fatal != "" {
			t.Errorf("outside CI: failed (%s), want a skip", o.fatal)
		}
		if !strings.Contains(ended, "chromium is not installed") {
			t.Errorf("CI=%q: the message does not name chromium: %q (fatal %q, skip %q)", ci, ended, o.fatal, o.skip)
		}
	}
}

// browser is a headless Chromium page driven over the DevTools protocol.
type browser struct {
	conn    *websocket.Conn
	wmu     sync.Mutex // one writer at a time
	mu      sync.Mutex
	next    int
	pending map[int]chan cdpMessage
	dialogs chan string // the message of each JavaScript dialog, accepted
	closed  chan struct{}
	// problems are the page's console errors, uncaught exceptions and
	// (with Log.enable) browser errors such as a blocked load; requests the
	// URLs it asked for (with Network.enable). Both under mu.
	problems, requests []string
}

type cdpMessage struct {
	ID     int             `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

var devtoolsLine = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startChromium starts headless Chromium with a fresh profile and connects
// to its first page; both end with the test.
func startChromium(t *testing.T, bin string) *browser {
	t.Helper()
	cmd := exec.Command(bin, "--headless=new", "--remote-debugging-port=0", "--user-data-dir="+t.TempDir(),
		"--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-background-networking", "about:blank")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Logf("kill chromium: %v", err)
		}
		if err := cmd.Wait(); err != nil && !strings.Contains(err.Error(), "killed") {
			t.Logf("chromium: %v", err)
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	var browserWS string
	select {
	case browserWS = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not print its DevTools address")
	}
	t.Logf("chromium ready in %v", time.Since(start).Round(time.Millisecond))
	u, err := url.Parse(browserWS)
	if err != nil {
		t.Fatal(err)
	}
	var targets []struct{ Type, WebSocketDebuggerURL string }
	resp, err := http.Get("http://" + u.Host + "/json/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatal(err)
	}
	pageWS := ""
	for _, tg := range targets {
		if tg.Type == "page" {
			pageWS = tg.WebSocketDebuggerURL
			break
		}
	}
	if pageWS == "" {
		t.Fatalf("chromium has no page: %+v", targets)
	}
	conn, _, err := websocket.DefaultDialer.Dial(pageWS, nil)
	if err != nil {
		t.Fatalf("connect to the page: %v", err)
	}
	b := &browser{conn: conn, pending: map[int]chan cdpMessage{}, dialogs: make(chan string, 8),
		closed: make(chan struct{})}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Logf("close devtools: %v", err)
		}
		<-b.closed
	})
	go b.read()
	b.call(t, "Page.enable", nil)
	b.call(t, "Runtime.enable", nil)
	return b
}

// read delivers answers to their calls and accepts every dialog (a
// confirm() blocks the page, and the call that caused it, until then).
func (b *browser) read() {
	defer close(b.closed)
	for {
		var m cdpMessage
		if err := b.conn.ReadJSON(&m); err != nil {
			return
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.pending[m.ID]
			delete(b.pending, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		b.record(m)
		if m.Method == "Page.javascriptDialogOpening" {
			var d struct{ Message string }
			if json.Unmarshal(m.Params, &d) == nil {
				select {
				case b.dialogs <- d.Message:
				default:
				}
			}
			go b.send("Page.handleJavaScriptDialog", map[string]any{"accept": true})
		}
	}
}

// record keeps the events that tell what a page did besides rendering.
func (b *browser) record(m cdpMessage) {
	var e struct {
		Type             string `json:"type"`
		Args             []struct{ Value any }
		ExceptionDetails struct{ Text string } `json:"exceptionDetails"`
		Entry            struct{ Level, Text, URL string }
		Request          struct{ URL string }
	}
	if json.Unmarshal(m.Params, &e) != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case m.Method == "Runtime.exceptionThrown":
		b.problems = append(b.problems, "exception: "+e.ExceptionDetails.Text)
	case m.Method == "Runtime.consoleAPICalled" && (e.Type == "error" || e.Type == "assert" || e.Type == "warning"):
		b.problems = append(b.problems, fmt.Sprintf("console.%s: %v", e.Type, e.Args))
	case m.Method == "Log.entryAdded" && (e.Entry.Level == "error" || e.Entry.Level == "warning"):
		b.problems = append(b.problems, fmt.Sprintf("%s: %s %s", e.Entry.Level, e.Entry.Text, e.Entry.URL))
	case m.Method == "Network.requestWillBeSent":
		b.requests = append(b.requests, e.Request.URL)
	}
}

// seen returns the problems and requests recorded so far.
func (b *browser) seen() (problems, requests []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.problems), slices.Clone(b.requests)
}

// send sends a command and returns the channel its answer arrives on.
func (b *browser) send(method string, params any) (chan cdpMessage, error) {
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return ch, b.conn.WriteJSON(msg)
}

func (b *browser) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	res, err := b.tryCall(method, params)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return res
}

func (b *browser) tryCall(method string, params any) (json.RawMessage, error) {
	ch, err := b.send(method, params)
	if err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return nil, errors.New(m.Error.Message)
		}
		return m.Result, nil
	case <-b.closed:
		return nil, errors.New("chromium went away")
	case <-time.After(20 * time.Second):
		return nil, errors.New("no answer in 20 s")
	}
}

func (b *browser) navigate(t *testing.T, u string) {
	t.Helper()
	b.call(t, "Page.navigate", map[string]any{"url": u})
	b.waitTrue(t, "the page to load", `document.readyState === 'complete' && location.href === `+fmt.Sprintf("%q", u))
}

// tryEval evaluates expr in the page; an exception is an error.
func (b *browser) tryEval(expr string) (json.RawMessage, error) {
	res, err := b.tryCall("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return nil, err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, err
	}
	if e := r.ExceptionDetails; e != nil {
		return nil, fmt.Errorf("%s %s", e.Text, e.Exception.Description)
	}
	return r.Result.Value, nil
}

func (b *browser) eval(t *testing.T, expr string) json.RawMessage {
	t.Helper()
	v, err := b.tryEval(expr)
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitTrue waits up to 30 s for expr to be true (a page being replaced in
// between is not an error).
func (b *browser) waitTrue(t *testing.T, what, expr string) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		v, err := b.tryEval(expr)
		if err == nil && string(v) == "true" {
			return
		}
		last = err
	}
	body, err := b.tryEval(`document.documentElement.outerHTML`)
	t.Fatalf("timed out waiting for %s (%s; last error %v); the page (%v):\n%s", what, expr, last, err, body)
}

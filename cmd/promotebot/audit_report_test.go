package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/history"
)

var update = flag.Bool("update", false, "rewrite docs/audit-report.png (TestAuditReportScreenshot)")

// screenshotFile is the report's picture in the README.
const screenshotFile = "../../docs/audit-report.png"

// writeReportFile renders the report of bare over the DORA tests' window
// into a file and returns its file:// URL and the json listing of the
// same changes.
func writeReportFile(t *testing.T, bare string) (pageURL string, listing []history.Change) {
	t.Helper()
	page, _, err := runWith(t, nil, append([]string{"audit", "--repo", bare, "--format", "html"}, doraWindow...)...)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, []byte(page), 0o600); err != nil {
		t.Fatal(err)
	}
	js, _, err := runWith(t, nil, append([]string{"audit", "--repo", bare, "--format", "json"}, doraWindow...)...)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(js) {
		var c history.Change
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatal(err)
		}
		listing = append(listing, c)
	}
	return (&url.URL{Scheme: "file", Path: file}).String(), listing
}

// reportRowsJS reads the changes table as a person sees it: per row its
// image, environment, short commit, the full commit its title gives, and
// its class.
const reportRowsJS = `JSON.stringify([...document.querySelectorAll('#changes tbody tr.change')].map(r => [
	r.querySelector('td.image').textContent, r.querySelector('td.env').textContent,
	r.querySelector('td.commit code').textContent, r.querySelector('td.commit code').title, r.className]))`

// TestAuditReportInChromium: the HTML report of a real history renders in
// headless Chromium from a file, without an error, a script or a request
// beyond the file itself; its changes table lists the json listing's
// changes one by one, with --check's findings on their rows; its links go
// to rows, and the DORA figures are the ones --dora prints.
func TestAuditReportInChromium(t *testing.T) {
	skipIfShort(t, "a browser renders the audit report")
	chromium := findChromium(t)
	f := newDORAFixture(t)
	pageURL, listing := writeReportFile(t, f.bare)
	b := startChromium(t, chromium)
	b.call(t, "Log.enable", nil)
	b.call(t, "Network.enable", nil)
	b.navigate(t, pageURL)

	if title := string(b.eval(t, `document.title`)); title != fmt.Sprintf("%q", "promotebot audit: "+f.bare) {
		t.Errorf("title %s", title)
	}
	var rows [][5]string
	var raw string
	if err := json.Unmarshal(b.eval(t, reportRowsJS), &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(listing) || len(listing) < 15 {
		t.Fatalf("%d rows, %d changes in the json listing", len(rows), len(listing))
	}
	flagged := map[string]bool{f.commits["hotfix"]: true, f.commits["api-3"]: true}
	for i, c := range listing {
		want := [4]string{c.Image, c.Environment, c.Commit[:12], c.Commit}
		if got := [4]string(rows[i][:4]); got != want {
			t.Errorf("row %d: %q, want %q", i+1, got, want)
		}
		if has := strings.Contains(rows[i][4], "finding"); has != flagged[c.Commit] {
			t.Errorf("row %d (%s %s): class %q, findings want %v", i+1, c.Environment, c.Subject, rows[i][4], flagged[c.Commit])
		}
	}
	// The findings link to their rows, and the timeline's marks to theirs.
	links := string(b.eval(t, `[...document.querySelectorAll('#findings a, #timeline a')].every(a =>
		a.getAttribute('href').startsWith('#row-') && document.getElementById(a.getAttribute('href').slice(1)) !== null)`))
	production := 0
	for _, c := range listing {
		if c.Environment == "production" && !c.Root {
			production++
		}
	}
	marks := string(b.eval(t, `document.querySelectorAll('#timeline svg a').length`))
	if links != "true" || marks != fmt.Sprint(production) || production != 9 {
		t.Errorf("links to rows: %s; timeline marks %s, want one per production change (%d)", links, marks, production)
	}
	figure := string(b.eval(t, `[...document.querySelectorAll('.card .figure')].map(e => e.textContent).join(' | ')`))
	if figure != `"4 a week | median 3h, p90 4h | 50% | median 24h"` {
		t.Errorf("DORA cards: %s", figure)
	}

	if v := string(b.eval(t, `performance.getEntriesByType('resource').length + document.scripts.length`)); v != "0" {
		t.Errorf("%s resources or scripts", v)
	}
	time.Sleep(200 * time.Millisecond) // late events
	problems, requests := b.seen()
	if len(problems) > 0 {
		t.Errorf("the page reported problems: %q", problems)
	}
	for _, r := range requests {
		if r != pageURL {
			t.Errorf("the page requested %s", r)
		}
	}

	// What hostile commits say does not run either.
	hostileURL, _ := writeReportFile(t, hostileHistory(t))
	b.navigate(t, hostileURL)
	if v := string(b.eval(t, `typeof window.pwned + ' ' + document.scripts.length + ' ' + document.querySelectorAll('iframe, img, #changes svg').length`)); v != `"undefined 0 0"` {
		t.Errorf("the hostile report: %s", v)
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case msg := <-b.dialogs:
		t.Errorf("the hostile report opened a dialog: %q", msg)
	default:
	}
	problems, requests = b.seen()
	if len(problems) > 0 {
		t.Errorf("the hostile report: problems %q", problems)
	}
	for _, r := range requests {
		if r != pageURL && r != hostileURL {
			t.Errorf("the hostile report requested %s", r)
		}
	}
}

// hostileHistory adds, to the sample repository, commits whose trailers
// and messages try to inject markup, script and links into the report.
func hostileHistory(t *testing.T) string {
	t.Helper()
	bare := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	work := gittest.Clone(t, bare)
	kust, _ := gittest.ReadFile(t, bare, "main", "apps/hello/overlays/production/kustomization.yaml")
	write := func(path, data string) {
		if err := os.WriteFile(filepath.Join(work, path), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("apps/hello/notes.txt", "x\n")
	gitAt(t, work, march(3, 10, 0), "add", "-A")
	gitAt(t, work, march(3, 10, 0), "commit", "-q", "-m", "Deploy <b>bold</b>\n\n"+
		"Promotebot-Build: <script>window.pwned=1</script>\n"+
		"Promotebot-Project: \"><svg onload=window.pwned=2>\n"+
		"Promotebot-Environment: qa/<img src=x onerror=window.pwned=3>\n"+
		"Promotebot-Image: <script>window.pwned=4</script>\n"+
		"Promotebot-Source: branch x @ abc javascript:window.pwned=5\n"+
		"Approved-by: <iframe src=javascript:window.pwned=6> <slack:U1> 2026-03-03T09:00:00Z\n"+
		"Promoted-by: </td><script>window.pwned=7</script> <slack:U2>\n")
	write("apps/hello/overlays/production/kustomization.yaml", strings.Replace(kust, "1.3.0", "1.4.0", 1))
	gitAt(t, work, march(3, 11, 0), "commit", "-q", "-am", "Merge pull request #1 from x\n\n"+
		"Merges https://evil.example.com/\"><script>window.pwned=8</script>.\n\n"+
		"Promotebot-Build: b1\nPromotebot-Project: hello\nPromotebot-Environment: production\n"+
		"Promotebot-Image: registry.example.com/acme/hello:1.4.0\n"+
		"Promotebot-Source: tag v1 https://ci.example.com/\"onmouseover=\"window.pwned=9\n"+
		"Promoted-by: Mallory <slack:UMAL>\n")
	write("apps/hello/overlays/production/kustomization.yaml", strings.Replace(kust, "1.3.0", "1.5.0", 1))
	gitAt(t, work, march(3, 12, 0), "commit", "-q", "-am", "Merge\n\nMerges javascript:window.pwned=11.\n\n"+
		"Promotebot-Rollback-Of: b1\nPromotebot-Project: hello\nPromotebot-Environment: production\n"+
		"Promotebot-Image: registry.example.com/acme/hello:1.5.0\nPromoted-by: Mallory <slack:UMAL>\n"+
		"Promotebot-Reason: ]]></title><script>window.pwned=10</script>\n")
	gittest.Push(t, work)
	return bare
}

var (
	hrefAttr    = regexp.MustCompile(`(?i)\b(?:href|src|xlink:href|action)\s*=\s*"([^"]*)"`)
	handlerAttr = regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
)

// TestAuditReportEscapes: what commit messages say reaches the HTML report
// as text: no element, attribute, script or link of theirs (html/template
// escapes every value for where it lands, and the report links only
// http(s) URLs).
func TestAuditReportEscapes(t *testing.T) {
	bare := hostileHistory(t)
	page, _, err := runWith(t, nil, "audit", "--repo", bare, "--format", "html", "--since", "2026-03-01", "--until", "2026-03-31")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(page), "<script") || strings.Contains(page, "<iframe") || strings.Contains(page, "<img") ||
		strings.Contains(page, "<b>") || strings.Contains(page, "</td><script") {
		t.Errorf("markup from a commit reached the page:\n%s", page)
	}
	if n := strings.Count(page, "<svg"); n != 5 { // the four DORA charts and the timeline
		t.Errorf("%d <svg elements, want 5", n)
	}
	if m := handlerAttr.FindString(page); m != "" {
		t.Errorf("an event handler attribute: %s", m)
	}
	for _, m := range hrefAttr.FindAllStringSubmatch(page, -1) {
		if v := m[1]; !strings.HasPrefix(v, "#row-") && !strings.HasPrefix(v, "https://") && v != "data:," {
			t.Errorf("a link to %q", v)
		}
		if strings.ContainsAny(m[1], `<>"' `) {
			t.Errorf("a link that is not URL-encoded: %q", m[1])
		}
	}
	for _, text := range []string{
		`&lt;script&gt;window.pwned=4&lt;/script&gt;`,        // the image
		`branch x @ abc javascript:window.pwned=5`,           // the source: no link made of it
		`&#34;&gt;&lt;svg onload=window.pwned=2&gt;`,         // the project
		`qa/&lt;img src=x onerror=window.pwned=3&gt;`,        // the environment
		`rollback of b1: ]]&gt;&lt;/title&gt;&lt;script&gt;`, // a rollback's reason
	} {
		if !strings.Contains(page, text) {
			t.Errorf("the page does not show %s as text", text)
		}
	}
	// The CI link with a quote in it stays one attribute value.
	if !strings.Contains(page, `href="https://ci.example.com/%22onmouseover=%22window.pwned=9"`) {
		t.Errorf("the CI link:\n%s", page)
	}
}

// TestAuditReportCheck: with --check the report is written all the same,
// findings and all, and the exit status says there are findings.
func TestAuditReportCheck(t *testing.T) {
	f := newDORAFixture(t)
	for _, check := range []bool{false, true} {
		args := append([]string{"audit", "--repo", f.bare, "--format", "html"}, doraWindow...)
		if check {
			args = append(args, "--check")
		}
		page, _, err := runWith(t, nil, args...)
		if want := map[bool]int{false: -1, true: 1}[check]; exitCode(err) != want || (check && err.Error() != "audit: 2 findings") {
			t.Errorf("--check %v: err %v (exit %d), want exit %d", check, err, exitCode(err), want)
		}
		if !strings.HasPrefix(page, "<!DOCTYPE html>") || strings.Count(page, `<tr class="findings-of">`) != 2 ||
			!strings.Contains(page, `<span class="rule">not-by-bot</span>`) {
			t.Errorf("--check %v: the page lacks its findings:\n%s", check, page)
		}
	}
}

// TestAuditReportScreenshot renders the report of the DORA tests' history
// in headless Chromium and takes the picture the README shows. With
// -update it rewrites docs/audit-report.png:
//
//	go test ./cmd/promotebot -run TestAuditReportScreenshot -update
func TestAuditReportScreenshot(t *testing.T) {
	skipIfShort(t, "a browser takes a screenshot of the audit report")
	chromium := findChromium(t)
	f := newDORAFixture(t)
	pageURL, _ := writeReportFile(t, f.bare)
	b := startChromium(t, chromium)
	b.call(t, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false})
	b.navigate(t, pageURL)
	res := b.call(t, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": 1280, "height": 1400, "scale": 1}})
	var shot struct{ Data string }
	if err := json.Unmarshal(res, &shot); err != nil {
		t.Fatal(err)
	}
	data, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if size := img.Bounds().Size(); size.X != 1280 || size.Y != 1400 || len(data) > 300<<10 {
		t.Fatalf("screenshot %v, %d bytes: want 1280x1400 under 300 KB", size, len(data))
	}
	if !*update {
		return
	}
	if err := os.WriteFile(screenshotFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", screenshotFile, len(data))
}

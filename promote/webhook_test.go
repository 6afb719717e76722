package promote

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const testSecret = "wh-s3cret-value"

// fakeStore is an in-memory Store: idempotent on Build.Key, superseding like
// the real one, keeping the jobs it was given.
type fakeStore struct {
	mu        sync.Mutex
	builds    map[string]Build
	order     []string
	jobs      []Job
	approvals map[string][]Approval
	nextID    int
	history   map[string][]Transition
	pingErr   error
	createErr error
	getErr    error
	envs      map[string]Environment
}

var _ Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{builds: map[string]Build{}, approvals: map[string][]Approval{}, envs: map[string]Environment{}}
}

func envKey(project string, kind Kind, target string) string {
	return project + "\x00" + string(kind) + "\x00" + target
}

func (s *fakeStore) ReserveEnvironment(_ context.Context, e Environment, limit int, now time.Time) (Environment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.envs[envKey(e.Project, e.Kind, e.Target)]
	if (!ok || !cur.Live()) && limit > 0 {
		var live []Environment
		for _, x := range s.envs {
			if x.Project == e.Project && x.Live() {
				live = append(live, x)
			}
		}
		if len(live) >= limit {
			return Environment{}, &EnvLimitError{Limit: limit, Idle: live}
		}
	}
	e.CreatedAt, e.ActiveAt = now, now
	if ok && cur.Live() {
		e.CreatedAt = cur.CreatedAt
	}
	s.envs[envKey(e.Project, e.Kind, e.Target)] = e
	return e, nil
}

func (s *fakeStore) CreateInEnvironment(ctx context.Context, b Build, limit int, jobs ...Job) (Build, bool, []Build, error) {
	if _, err := s.ReserveEnvironment(ctx, Environment{Project: b.Project, Kind: b.Kind, Target: b.Target,
		Name: b.Environment, URL: b.URL, Image: b.Image}, limit, time.Now()); err != nil {
		return Build{}, false, nil, err
	}
	return s.Create(ctx, b, jobs...)
}

func (s *fakeStore) Environment(_ context.Context, project string, kind Kind, target string) (Environment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.envs[envKey(project, kind, target)]
	if !ok {
		return Environment{}, ErrNotFound
	}
	return e, nil
}

func (s *fakeStore) Environments(context.Context, string) ([]Environment, error) {
	return nil, errFakeUnused
}

func (s *fakeStore) FirstEnvironments(context.Context, string, int) ([]Environment, error) {
	return nil, errFakeUnused
}

func (s *fakeStore) CountEnvironments(context.Context, string) (map[string]int, error) {
	return nil, errFakeUnused
}

func (s *fakeStore) EditEnvironment(context.Context, string, Kind, string, func(*Environment) error, ...Job) (Environment, error) {
	return Environment{}, errFakeUnused
}

func (s *fakeStore) Create(_ context.Context, b Build, jobs ...Job) (Build, bool, []Build, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.createErr != nil {
		return Build{}, false, nil, s.createErr
	}
	for _, id := range s.order {
		if old := s.builds[id]; old.Key() == b.Key() {
			return old, false, nil, nil
		}
	}
	// Like promote/store: the store assigns the id and gives it to the jobs
	// without a BuildID.
	s.nextID++
	b.ID = fmt.Sprintf("B%04d", s.nextID)
	b.State = StateReceived
	b.CreatedAt, b.UpdatedAt = time.Now(), time.Now()
	var superseded []Build
	for _, id := range s.order {
		old := s.builds[id]
		if old.Project == b.Project && old.Kind == b.Kind && old.Target == b.Target && old.State.Active() {
			old.State, old.SupersededBy = StateSuperseded, b.ID
			s.builds[id] = old
			superseded = append(superseded, old)
		}
	}
	s.builds[b.ID] = b
	s.order = append(s.order, b.ID)
	for _, j := range jobs {
		j.ID = int64(len(s.jobs) + 1)
		if j.BuildID == "" {
			j.BuildID = b.ID
		}
		s.jobs = append(s.jobs, j)
	}
	return b, true, superseded, nil
}

func (s *fakeStore) Get(_ context.Context, id string) (Build, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return Build{}, s.getErr
	}
	b, ok := s.builds[id]
	if !ok {
		return Build{}, fmt.Errorf("build %s: %w", id, ErrNotFound)
	}
	return b, nil
}

func (s *fakeStore) Apply(_ context.Context, id string, ev Event, change func(*Build) error, jobs ...Job) (Build, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.builds[id]
	if !ok {
		return Build{}, ErrNotFound
	}
	to, err := Next(b.State, ev)
	if err != nil {
		return b, err
	}
	b.State = to
	if change != nil {
		if err := change(&b); err != nil {
			return Build{}, err
		}
	}
	s.builds[id] = b
	s.jobs = append(s.jobs, jobs...)
	return b, nil
}

func (s *fakeStore) History(_ context.Context, id string) ([]Transition, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.history[id], nil
}

func (s *fakeStore) AddApproval(_ context.Context, a Approval, _ ...Job) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range s.approvals[a.BuildID] {
		if old.User == a.User {
			return false, nil
		}
	}
	s.approvals[a.BuildID] = append(s.approvals[a.BuildID], a)
	return true, nil
}

func (s *fakeStore) Approvals(_ context.Context, buildID string) ([]Approval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.approvals[buildID]), nil
}

var errFakeUnused = errors.New("not used by these tests")

func (s *fakeStore) Claim(context.Context, string, time.Duration, time.Time) (Job, bool, error) {
	return Job{}, false, errFakeUnused
}
func (s *fakeStore) Complete(context.Context, int64, string) error { return errFakeUnused }
func (s *fakeStore) Retry(context.Context, int64, string, time.Time, string) error {
	return errFakeUnused
}
func (s *fakeStore) Fail(context.Context, int64, string, string) error { return errFakeUnused }
func (s *fakeStore) Postpone(context.Context, int64, string, time.Time, string) error {
	return errFakeUnused
}
func (s *fakeStore) Extend(context.Context, int64, string, time.Time) error { return errFakeUnused }
func (s *fakeStore) Hurry(context.Context, string, JobKind) (bool, error) {
	return false, errFakeUnused
}
func (s *fakeStore) Edit(_ context.Context, id string, change func(*Build) error, _ ...Job) (Build, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.builds[id]
	if !ok {
		return Build{}, ErrNotFound
	}
	if err := change(&b); err != nil {
		return Build{}, err
	}
	s.builds[id] = b
	return b, nil
}

func (s *fakeStore) Pending(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jobs), nil
}

func (s *fakeStore) FirstClick(context.Context, string, time.Time) (bool, error) {
	return true, nil
}

func (s *fakeStore) Find(_ context.Context, project string, states []State, limit int) ([]Build, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Build
	for i := len(s.order) - 1; i >= 0 && len(out) < limit; i-- {
		if b := s.builds[s.order[i]]; b.Project == project && slices.Contains(states, b.State) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (s *fakeStore) FindTarget(ctx context.Context, project string, kind Kind, target string, states []State,
	limit int) ([]Build, error) {
	all, err := s.Find(ctx, project, states, 1<<30)
	var out []Build
	for _, b := range all {
		if b.Kind == kind && b.Target == target && len(out) < limit {
			out = append(out, b)
		}
	}
	return out, err
}

func (s *fakeStore) CountByState(context.Context) (map[State]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[State]int{}
	for _, b := range s.builds {
		counts[b.State]++
	}
	return counts, nil
}

func (s *fakeStore) SaveMessage(context.Context, Message) (Message, bool, error) {
	return Message{}, false, errFakeUnused
}
func (s *fakeStore) Messages(context.Context, string) ([]Message, error) { return nil, errFakeUnused }

func (s *fakeStore) Ping(context.Context) error { return s.pingErr }
func (s *fakeStore) Close() error               { return nil }

// build returns the one stored build with id, for assertions.
func (s *fakeStore) build(t *testing.T, id string) Build {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.builds[id]
	if !ok {
		t.Fatalf("store has no build %q", id)
	}
	return b
}

// fakeRepo is a BuildChecker whose Check accepts the project's image with a
// tag or digest and refuses targets with "..", like the real one; err, when
// set, is returned as a failure of the repo's own.
type fakeRepo struct{ err error }

var _ BuildChecker = fakeRepo{}

var slugRun = regexp.MustCompile(`[^a-z0-9]+`)

func (f fakeRepo) Check(p Project, kind Kind, target, image string) (string, string, error) {
	if f.err != nil {
		return "", "", f.err
	}
	if !strings.HasPrefix(image, p.Image+":") && !strings.HasPrefix(image, p.Image+"@") {
		return "", "", Invalid(fmt.Errorf("image %q is foreign to project %s (%s)", image, p.ID, p.Image))
	}
	if strings.Contains(target, "..") || strings.HasPrefix(target, "-") {
		return "", "", Invalid(fmt.Errorf("target %q is not a valid %s name", target, kind))
	}
	slug := strings.Trim(slugRun.ReplaceAllString(strings.ToLower(target), "-"), "-")
	return fmt.Sprintf("qa/%s-%s", kind, slug), fmt.Sprintf("https://%s.%s.%s", slug, kind, p.Host()), nil
}

// Fallback names the target's other environment "<plain>-h".
func (f fakeRepo) Fallback(p Project, kind Kind, target string) (string, string, error) {
	slug := strings.Trim(slugRun.ReplaceAllString(strings.ToLower(target), "-"), "-") + "-h"
	return fmt.Sprintf("qa/%s-%s", kind, slug), fmt.Sprintf("https://%s.%s.%s", slug, kind, p.Host()), nil
}

// fixture is a server over fakes, with its log captured.
type fixture struct {
	srv     http.Handler
	store   *fakeStore
	metrics *Metrics
	logs    *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testConfig() *Config {
	return &Config{Projects: []Project{{
		ID: "hello", Name: "Hello Service", URL: "https://hello.example.com", Channel: "C0HELLO",
		QA: []string{"UQA1"}, Owners: []string{"UOWN1"}, Image: "registry.example.com/acme/hello",
		Path: "apps/hello", RequiredApprovals: 1,
	}}}
}

func newFixture(t testing.TB, secret string, repo BuildChecker) *fixture {
	t.Helper()
	st := newFakeStore()
	logs := &syncBuffer{}
	m := NewMetrics(WithQueueDepth(st.Pending))
	srv := NewServer(ServerDeps{
		Config:  testConfig(),
		Secrets: Secrets{WebhookSecret: secret},
		Store:   st,
		Repo:    repo,
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: m,
	})
	return &fixture{srv: srv, store: st, metrics: m, logs: logs}
}

// auth adds credentials to a request whose raw body is body.
type auth func(r *http.Request, body []byte)

func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func bearer(secret string) auth {
	return func(r *http.Request, _ []byte) { r.Header.Set("Authorization", "Bearer "+secret) }
}

func hmacAuth(secret string) auth {
	return func(r *http.Request, body []byte) { r.Header.Set(SignatureHeader, sign(secret, body)) }
}

func withHeader(name, value string) auth {
	return func(r *http.Request, _ []byte) { r.Header.Set(name, value) }
}

func noAuth(*http.Request, []byte) {}

// do serves one request and returns the recorded answer.
func (f *fixture) do(t testing.TB, method, path, contentType string, body []byte, a auth) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	a(r, body)
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

// jsonBuild is a valid JSON report, with fields changed by edit ("-" drops a field).
func jsonBuild(edit map[string]any) []byte {
	fields := map[string]any{
		"project": "hello", "image": "registry.example.com/acme/hello:1.4.0",
		"type": "branch", "target": "feature/Login",
		"commit": "0123456789abcdef", "author": "Ada", "buildURL": "https://ci.example.com/builds/42",
	}
	for k, v := range edit {
		if v == "-" {
			delete(fields, k)
			continue
		}
		fields[k] = v
	}
	body, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return body
}

func formBuild(edit map[string]string) []byte {
	v := url.Values{
		"project": {"hello"}, "image": {"registry.example.com/acme/hello:1.4.0"},
		"type": {"tag"}, "target": {"v1.4.0"},
	}
	for k, val := range edit {
		v.Set(k, val)
	}
	return []byte(v.Encode())
}

// manyFields adds n unknown fields, x00 to x<n-1>, to a valid report.
func manyFields(n int) map[string]any {
	extra := make(map[string]any, n)
	for i := range n {
		extra[fmt.Sprintf("x%02d", i)] = i
	}
	return extra
}

// paddedJSON is a valid report of exactly n bytes, padded in an unknown field.
func paddedJSON(n int) []byte {
	base := jsonBuild(nil)
	prefix := append(base[:len(base)-1:len(base)-1], []byte(`,"padding":"`)...)
	pad := n - len(prefix) - len(`"}`)
	return append(append(prefix, bytes.Repeat([]byte("x"), pad)...), `"}`...)
}

const (
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded"
)

type webhookCase struct {
	name        string
	noSecret    bool // the configured webhook secret is empty
	repo        BuildChecker
	method      string
	path        string
	contentType string
	body        []byte
	auth        auth
	want        int
	wantErr     string // substring of the JSON error
	wantAllow   string
	// wantWarnings are the warnings of a 2xx answer, in order.
	wantWarnings []string
}

func webhookCases() []webhookCase {
	valid := jsonBuild(nil)
	long := strings.Repeat("a", maxFieldBytes+1)
	return []webhookCase{
		{name: "bearer json", body: valid, auth: bearer(testSecret), want: 202},
		{name: "hmac json", body: valid, auth: hmacAuth(testSecret), want: 202},
		{name: "lower-case bearer scheme", body: valid, auth: withHeader("Authorization", "bearer "+testSecret), want: 202},
		{name: "json with charset", contentType: ctJSON + "; charset=utf-8", body: valid, auth: hmacAuth(testSecret), want: 202},
		{name: "unknown json fields warned about", body: jsonBuild(map[string]any{"extra": map[string]any{"a": 1}}), auth: bearer(testSecret), want: 202,
			wantWarnings: []string{`unknown field "extra" ignored; the fields are project, image, type, target, commit, author, buildURL, builtAt`}},
		{name: "common misnamed fields named", body: jsonBuild(map[string]any{"commit": "-", "buildURL": "-", "sha": "0123abc", "build_url": "https://ci/1", "branch": "x"}),
			auth: bearer(testSecret), want: 202, wantWarnings: []string{
				`unknown field "branch" ignored: send it as "target"`,
				`unknown field "build_url" ignored: send it as "buildURL"`,
				`unknown field "sha" ignored: send it as "commit"`,
			}},
		{name: "field names in another case are used", body: jsonBuild(map[string]any{"buildURL": "-", "BuildUrl": "https://ci/1"}), auth: bearer(testSecret), want: 202},
		{name: "unknown form fields warned about", contentType: ctForm, body: formBuild(map[string]string{"sha": "abc"}), auth: bearer(testSecret), want: 202,
			wantWarnings: []string{`unknown field "sha" ignored: send it as "commit"`}},
		{name: "many unknown fields, bounded", body: jsonBuild(manyFields(12)), auth: bearer(testSecret), want: 202, wantWarnings: append(
			slices.Collect(func(yield func(string) bool) {
				for i := range 10 {
					if !yield(fmt.Sprintf(`unknown field "x%02d" ignored; the fields are project, image, type, target, commit, author, buildURL, builtAt`, i)) {
						return
					}
				}
			}), "and 2 more unknown fields, ignored")},
		{name: "form build-complete", path: "/build-complete", contentType: ctForm, body: formBuild(nil), auth: hmacAuth(testSecret), want: 202},
		{name: "form v1", contentType: ctForm, body: formBuild(map[string]string{"commit": "abc", "buildURL": "http://ci/1"}), auth: bearer(testSecret), want: 202},
		{name: "json build-complete", path: "/build-complete", body: valid, auth: bearer(testSecret), want: 202},
		{name: "digest image", body: jsonBuild(map[string]any{"image": "registry.example.com/acme/hello@sha256:" + strings.Repeat("a", 64)}), auth: bearer(testSecret), want: 202},
		{name: "exactly 64 KiB", body: paddedJSON(maxBodyBytes), auth: hmacAuth(testSecret), want: 202,
			wantWarnings: []string{`unknown field "padding" ignored; the fields are project, image, type, target, commit, author, buildURL, builtAt`}},

		{name: "no credentials", body: valid, auth: noAuth, want: 401, wantErr: "credentials"},
		{name: "wrong bearer", body: valid, auth: bearer("nope"), want: 401},
		{name: "bearer with secret as prefix", body: valid, auth: bearer(testSecret + "x"), want: 401},
		{name: "empty bearer", body: valid, auth: withHeader("Authorization", "Bearer "), want: 401},
		{name: "basic auth", body: valid, auth: withHeader("Authorization", "Basic "+testSecret), want: 401},
		{name: "wrong hmac key", body: valid, auth: hmacAuth("nope"), want: 401},
		{name: "hmac of another body", body: valid, auth: withHeader(SignatureHeader, sign(testSecret, []byte("{}"))), want: 401},
		{name: "hmac without prefix", body: valid, auth: withHeader(SignatureHeader, strings.TrimPrefix(sign(testSecret, valid), "sha256=")), want: 401},
		{name: "hmac not hex", body: valid, auth: withHeader(SignatureHeader, "sha256=zz"), want: 401},
		{name: "unauthorized before media type", contentType: "text/plain", body: valid, auth: noAuth, want: 401},
		{name: "empty secret refuses empty bearer", noSecret: true, body: valid, auth: withHeader("Authorization", "Bearer "), want: 401},
		{name: "empty secret refuses hmac with empty key", noSecret: true, body: valid, auth: hmacAuth(""), want: 401},
		{name: "empty secret refuses any bearer", noSecret: true, body: valid, auth: bearer("anything"), want: 401},

		{name: "64 KiB + 1", body: paddedJSON(maxBodyBytes + 1), auth: hmacAuth(testSecret), want: 413, wantErr: "larger than"},
		{name: "too large even unauthenticated", body: paddedJSON(maxBodyBytes + 1), auth: noAuth, want: 413},

		{name: "text/plain", contentType: "text/plain", body: valid, auth: bearer(testSecret), want: 415, wantErr: "Content-Type"},
		{name: "json without content type", contentType: "-", body: valid, auth: bearer(testSecret), want: 415,
			wantErr: "no Content-Type header and the body is JSON: send Content-Type: application/json"},
		{name: "form without content type", contentType: "-", body: formBuild(nil), auth: bearer(testSecret), want: 415,
			wantErr: "no Content-Type header: send Content-Type: application/json (or application/x-www-form-urlencoded for form fields)"},
		{name: "json sent as a form (curl -d)", contentType: ctForm, body: valid, auth: bearer(testSecret), want: 415,
			wantErr: "the body is JSON but Content-Type is application/x-www-form-urlencoded (curl -d sends that): send Content-Type: application/json"},
		{name: "json as text/plain", contentType: "text/plain", body: valid, auth: bearer(testSecret), want: 415,
			wantErr: "Content-Type text/plain is not supported and the body is JSON: send Content-Type: application/json"},
		{name: "multipart", contentType: "multipart/form-data; boundary=x", body: valid, auth: bearer(testSecret), want: 415},
		{name: "bad media type", contentType: "application/json; ===", body: valid, auth: bearer(testSecret), want: 415,
			wantErr: `Content-Type "application/json; ===" does not parse and the body is JSON: send Content-Type: application/json`},

		{name: "malformed json", body: []byte(`{"project":`), auth: hmacAuth(testSecret), want: 400, wantErr: "malformed JSON"},
		{name: "json array", body: []byte(`[1]`), auth: hmacAuth(testSecret), want: 400, wantErr: "JSON object"},
		{name: "trailing garbage", body: append(jsonBuild(nil), "x"...), auth: hmacAuth(testSecret), want: 400, wantErr: "malformed JSON"},
		{name: "number field", body: jsonBuild(map[string]any{"project": 5}), auth: bearer(testSecret), want: 400, wantErr: `"project" must be a string`},
		{name: "malformed form", contentType: ctForm, body: []byte("project=%zz"), auth: bearer(testSecret), want: 400, wantErr: "malformed form body: percent-encode each value"},
		{name: "missing fields named", body: jsonBuild(map[string]any{"image": "-", "target": ""}), auth: bearer(testSecret), want: 400,
			wantErr: "missing required field(s): image, target; a build needs project, image, type (branch or tag) and target"},
		{name: "empty json object", body: []byte(`{}`), auth: bearer(testSecret), want: 400, wantErr: "project, image, type, target"},
		{name: "missing form fields", contentType: ctForm, body: []byte("project=hello"), auth: bearer(testSecret), want: 400, wantErr: "image, type, target"},
		{name: "type not branch or tag", body: jsonBuild(map[string]any{"type": "commit"}), auth: bearer(testSecret), want: 400, wantErr: `type must be "branch" or "tag"`},
		{name: "type case matters", body: jsonBuild(map[string]any{"type": "Branch"}), auth: bearer(testSecret), want: 400, wantErr: "type must be"},
		{name: "commit too long", body: jsonBuild(map[string]any{"commit": long}), auth: bearer(testSecret), want: 400, wantErr: "commit is longer than 512 bytes"},
		{name: "author too long", body: jsonBuild(map[string]any{"author": long}), auth: bearer(testSecret), want: 400, wantErr: "author is longer"},
		{name: "buildURL too long", body: jsonBuild(map[string]any{"buildURL": "https://ci/" + long}), auth: bearer(testSecret), want: 400, wantErr: "buildURL is longer"},
		{name: "image too long", body: jsonBuild(map[string]any{"image": long}), auth: bearer(testSecret), want: 400, wantErr: "image is longer"},
		{name: "author control character", body: jsonBuild(map[string]any{"author": "Ada\nBcc: x"}), auth: bearer(testSecret), want: 400, wantErr: "author contains control characters"},
		{name: "commit escape character", body: jsonBuild(map[string]any{"commit": "abc\x1b[31m"}), auth: bearer(testSecret), want: 400, wantErr: "commit contains control"},
		{name: "target newline", body: jsonBuild(map[string]any{"target": "main\n"}), auth: bearer(testSecret), want: 400, wantErr: "target contains control"},
		{name: "form invalid utf-8", contentType: ctForm, body: formBuild(map[string]string{"author": "\xff"}), auth: bearer(testSecret), want: 400, wantErr: "author is not valid UTF-8"},
		{name: "buildURL not a web url", body: jsonBuild(map[string]any{"buildURL": "javascript:alert(1)"}), auth: bearer(testSecret), want: 400, wantErr: "buildURL must be"},
		{name: "buildURL with user information", body: jsonBuild(map[string]any{"buildURL": "https://ci.example.com@evil.example.net/x"}), auth: bearer(testSecret), want: 400,
			wantErr: "buildURL must not carry user information (user:password@): it would be shown to people"},
		{name: "commit link with a password", body: jsonBuild(map[string]any{"commit": "https://bot:hunter2@git.example.com/c/1"}), auth: bearer(testSecret), want: 400,
			wantErr: "commit must not carry user information"},
		{name: "commit link not web", body: jsonBuild(map[string]any{"commit": "ftp://git.example.com/c/1"}), auth: bearer(testSecret), want: 400,
			wantErr: "commit must be an absolute http or https URL"},
		{name: "foreign image", body: jsonBuild(map[string]any{"image": "docker.io/evil/hello:1"}), auth: bearer(testSecret), want: 400,
			wantErr: `image "docker.io/evil/hello:1" is foreign to project hello (registry.example.com/acme/hello) (project hello takes a target that is a valid git branch name and an image of registry.example.com/acme/hello with a :tag or an @sha256: digest)`},
		{name: "invalid target", body: jsonBuild(map[string]any{"target": "a..b"}), auth: bearer(testSecret), want: 400,
			wantErr: `target "a..b" is not a valid branch name (project hello takes a target that is a valid git branch name`},
		{name: "invalid tag", body: jsonBuild(map[string]any{"type": "tag", "target": "-v1"}), auth: bearer(testSecret), want: 400,
			wantErr: `target "-v1" is not a valid tag name (project hello takes a target that is a valid git tag name`},

		{name: "unknown project", body: jsonBuild(map[string]any{"project": "nope"}), auth: bearer(testSecret), want: 404, wantErr: `unknown project "nope"; known projects: hello`},
		{name: "unknown project form", path: "/build-complete", contentType: ctForm, body: formBuild(map[string]string{"project": "nope"}), auth: hmacAuth(testSecret), want: 404},

		{name: "check fails", repo: fakeRepo{err: errors.New("fetch https://bot:hunter2@git.example.com: boom")}, body: valid, auth: bearer(testSecret), want: 500, wantErr: "could not check the build"},

		{name: "GET on builds", method: http.MethodGet, auth: bearer(testSecret), want: 405, wantAllow: "POST"},
		{name: "PUT on build-complete", method: http.MethodPut, path: "/build-complete", body: valid, auth: bearer(testSecret), want: 405, wantAllow: "POST"},
		{name: "POST on a build", method: http.MethodPost, path: "/v1/builds/01ABC", body: valid, auth: bearer(testSecret), want: 405, wantAllow: "GET, HEAD"},
	}
}

func TestWebhookStatus(t *testing.T) {
	for _, tc := range webhookCases() {
		t.Run(tc.name, func(t *testing.T) {
			secret := testSecret
			if tc.noSecret {
				secret = ""
			}
			var repo BuildChecker = fakeRepo{}
			if tc.repo != nil {
				repo = tc.repo
			}
			f := newFixture(t, secret, repo)
			method := cmp.Or(tc.method, http.MethodPost)
			path := cmp.Or(tc.path, "/v1/builds")
			ct := cmp.Or(tc.contentType, ctJSON)
			if ct == "-" {
				ct = ""
			}
			w := f.do(t, method, path, ct, tc.body, tc.auth)
			checkAnswer(t, w, tc.want, tc.wantErr)
			if tc.want < 300 {
				if got := decodeAnswer(t, w).Warnings; !slices.Equal(got, tc.wantWarnings) {
					t.Errorf("warnings = %q, want %q", got, tc.wantWarnings)
				}
			}
			// The adapters' messages already say what is invalid; the
			// marker must not say it again.
			if strings.Contains(w.Body.String(), "invalid: ") {
				t.Errorf("answer repeats the invalid marker: %s", w.Body)
			}
			if tc.wantAllow != "" && w.Header().Get("Allow") != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", w.Header().Get("Allow"), tc.wantAllow)
			}
			for _, leak := range []string{testSecret, "hunter2"} {
				if strings.Contains(w.Body.String(), leak) || strings.Contains(f.logs.String(), leak) {
					t.Errorf("answer or log holds %q:\n%s\n%s", leak, w.Body, f.logs)
				}
			}
		})
	}
}

// checkAnswer asserts the status and that the answer is JSON: an error
// holding wantErr, or a build answer.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder, want int, wantErr string) {
	t.Helper()
	if w.Code != want {
		t.Fatalf("status = %d, want %d; body %s", w.Code, want, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, w.Body)
	}
	if want >= 400 {
		msg, ok := body["error"].(string)
		if !ok || msg == "" || len(body) != 1 {
			t.Fatalf(`answer is not {"error": "…"}: %s`, w.Body)
		}
		if !strings.Contains(msg, wantErr) {
			t.Errorf("error %q does not contain %q", msg, wantErr)
		}
		return
	}
	for _, k := range []string{"id", "environment", "url", "state"} {
		if _, ok := body[k]; !ok {
			t.Errorf("answer lacks %q: %s", k, w.Body)
		}
	}
}

func decodeAnswer(t *testing.T, w *httptest.ResponseRecorder) buildAnswer {
	t.Helper()
	var a buildAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	return a
}

func TestProjectIDs(t *testing.T) {
	projects := func(n int) []Project {
		ps := make([]Project, n)
		for i := range ps {
			ps[i].ID = fmt.Sprintf("p%d", i)
		}
		return ps
	}
	for _, tc := range []struct {
		name string
		n    int
		want string
	}{
		{"none", 0, "none are configured"},
		{"two", 2, "p0, p1"},
		{"twenty", 20, "p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17, p18, p19"},
		{"more than twenty", 25, "p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17, p18, p19, … (25 in all)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := projectIDs(projects(tc.n)); got != tc.want {
				t.Errorf("projectIDs(%d projects) = %q, want %q", tc.n, got, tc.want)
			}
		})
	}
}

func TestWebhookRepeat(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	body := jsonBuild(nil)
	first := f.do(t, http.MethodPost, "/v1/builds", ctJSON, body, hmacAuth(testSecret))
	checkAnswer(t, first, http.StatusAccepted, "")
	a := decodeAnswer(t, first)
	want := buildAnswer{ID: a.ID, Environment: "qa/branch-feature-login", URL: "https://feature-login.branch.hello.example.com", State: StateReceived}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("answer = %+v, want %+v", a, want)
	}

	// The same build, form-encoded on the old route, is a repeat.
	form := []byte(url.Values{"project": {"hello"}, "image": {"registry.example.com/acme/hello:1.4.0"},
		"type": {"branch"}, "target": {"feature/Login"}}.Encode())
	again := f.do(t, http.MethodPost, "/build-complete", ctForm, form, bearer(testSecret))
	checkAnswer(t, again, http.StatusOK, "")
	if got := decodeAnswer(t, again); !reflect.DeepEqual(got, want) {
		t.Errorf("repeat answer = %+v, want %+v", got, want)
	}

	stored := f.store.build(t, a.ID)
	if stored.Commit != "0123456789abcdef" || stored.Author != "Ada" || stored.BuildURL != "https://ci.example.com/builds/42" || stored.Kind != KindBranch {
		t.Errorf("stored build = %+v", stored)
	}
	if len(f.store.jobs) != 2 || f.store.jobs[0].Kind != JobDeployQA || f.store.jobs[0].BuildID != a.ID ||
		f.store.jobs[1].Kind != JobNotify || f.store.jobs[1].BuildID != a.ID || !f.store.jobs[1].Coalesce {
		t.Errorf("jobs = %+v, want a %s and a coalescing %s job for %s", f.store.jobs, JobDeployQA, JobNotify, a.ID)
	}

	// Once deployed, a repeat tells where the build really is.
	if _, err := f.store.Apply(context.Background(), a.ID, EventDeploy, func(b *Build) error {
		b.Environment, b.URL = "qa/branch-feature-login-3f2a", "https://feature-login-3f2a.branch.hello.example.com"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	third := decodeAnswer(t, f.do(t, http.MethodPost, "/v1/builds", ctJSON, body, bearer(testSecret)))
	want.Environment, want.URL, want.State = "qa/branch-feature-login-3f2a", "https://feature-login-3f2a.branch.hello.example.com", StateDeploying
	if !reflect.DeepEqual(third, want) {
		t.Errorf("answer after deploy = %+v, want %+v", third, want)
	}
}

func TestWebhookSupersedes(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	old := decodeAnswer(t, f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer(testSecret)))
	w := f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(map[string]any{"image": "registry.example.com/acme/hello:1.4.1"}), bearer(testSecret))
	checkAnswer(t, w, http.StatusAccepted, "")
	newer := decodeAnswer(t, w)
	if newer.ID == old.ID {
		t.Fatalf("a new image got the old id %s", old.ID)
	}
	if b := f.store.build(t, old.ID); b.State != StateSuperseded || b.SupersededBy != newer.ID {
		t.Errorf("older build = %s superseded by %q, want superseded by %s", b.State, b.SupersededBy, newer.ID)
	}
}

func TestWebhookStoreFailure(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	f.store.createErr = errors.New("database is locked")
	w := f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer(testSecret))
	checkAnswer(t, w, http.StatusInternalServerError, "try again")
	if strings.Contains(w.Body.String(), "locked") {
		t.Errorf("answer shows the store's error: %s", w.Body)
	}
	if !strings.Contains(f.logs.String(), "database is locked") {
		t.Errorf("log lacks the store's error:\n%s", f.logs)
	}
}

// countingReader is an endless body that counts what was read of it.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	c.n += len(p)
	return len(p), nil
}

func TestWebhookReadsNoMoreThanTheLimit(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	body := &countingReader{}
	r := httptest.NewRequest(http.MethodPost, "/v1/builds", io.NopCloser(body))
	r.ContentLength = -1 // chunked: the size is only known by reading
	r.Header.Set("Content-Type", ctJSON)
	r.Header.Set("Authorization", "Bearer "+testSecret)
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	checkAnswer(t, w, http.StatusRequestEntityTooLarge, "larger than")
	if body.n > maxBodyBytes+1 {
		t.Errorf("read %d bytes of the body, want at most %d", body.n, maxBodyBytes+1)
	}
}

func TestWebhookLogs(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	a := decodeAnswer(t, f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer(testSecret)))
	f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer("wrong-"+testSecret))
	logs := f.logs.String()
	for _, want := range []string{"build=" + a.ID, "project=hello", "outcome=accepted", "outcome=unauthorized"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, testSecret) || strings.Contains(logs, "wrong-") {
		t.Errorf("log holds a credential:\n%s", logs)
	}
}

func TestGetBuild(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	id := decodeAnswer(t, f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer(testSecret))).ID
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, a := range []Approval{
		{BuildID: id, User: "UQA1", Name: "Quinn", Verdict: Approve, At: at},
		{BuildID: id, User: "UQA2", Name: "Rae", Verdict: Reject, Reason: "login broken", At: at.Add(time.Minute)},
	} {
		if _, err := f.store.AddApproval(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}

	f.store.mu.Lock()
	b := f.store.builds[id]
	b.CreatedAt, b.UpdatedAt = at.Add(-time.Hour), at.Add(-time.Hour+time.Second)
	committed, synced := at.Add(-time.Hour+2*time.Second), at.Add(-time.Hour+time.Minute)
	rev := strings.Repeat("ab", 20)
	b.Rollout.QA = &Rollout{Status: RolloutDegraded, Revision: rev, Message: "ImagePullBackOff", At: synced,
		Since: committed, Steps: []RolloutStep{
			{Status: RolloutPending, At: committed},
			{Status: RolloutDegraded, Revision: rev, Message: "ImagePullBackOff", Source: "flux", At: synced},
		}}
	f.store.builds[id] = b
	f.store.history = map[string][]Transition{id: {
		{From: StateReceived, To: StateDeploying, Event: EventDeploy, At: at.Add(-time.Hour + time.Second)},
	}}
	f.store.mu.Unlock()

	w := f.do(t, http.MethodGet, "/v1/builds/"+id, "", nil, bearer(testSecret))
	checkAnswer(t, w, http.StatusOK, "")
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": id, "project": "hello", "image": "registry.example.com/acme/hello:1.4.0", "type": "branch",
		"target": "feature/Login", "environment": "qa/branch-feature-login",
		"url": "https://feature-login.branch.hello.example.com", "state": "received", "qaCommit": "",
		"pullRequest": "", "productionCommit": "", "error": "",
		"createdAt": "2025-03-04T04:06:07Z", "updatedAt": "2025-03-04T04:06:08Z",
		"rollout": map[string]any{"qa": map[string]any{
			"status": "degraded", "revision": rev, "message": "ImagePullBackOff", "at": "2025-03-04T04:07:07Z",
			"since": "2025-03-04T04:06:09Z", "timedOut": false,
		}},
		"history": []any{
			map[string]any{"from": "received", "to": "deploying", "event": "deploy", "at": "2025-03-04T04:06:08Z"},
			map[string]any{"from": "deploying", "to": "deploying", "event": "rollout", "at": "2025-03-04T04:06:09Z",
				"environment": "qa", "status": "pending"},
			map[string]any{"from": "deploying", "to": "deploying", "event": "rollout", "at": "2025-03-04T04:07:07Z",
				"environment": "qa", "status": "degraded", "revision": rev, "message": "ImagePullBackOff"},
		},
		"approvals": []any{
			map[string]any{"user": "UQA1", "name": "Quinn", "verdict": "approved", "reason": "", "at": "2025-03-04T05:06:07Z"},
			map[string]any{"user": "UQA2", "name": "Rae", "verdict": "rejected", "reason": "login broken", "at": "2025-03-04T05:07:07Z"},
		},
	}
	if !jsonEqual(got, want) {
		t.Errorf("GET answer =\n%s\nwant\n%s", w.Body, mustJSON(want))
	}

	// A timestamped HMAC of the empty body authenticates a GET too.
	stamp, sig := stampedSign(testSecret, time.Now(), nil)
	w = f.do(t, http.MethodGet, "/v1/builds/"+id, "", nil, func(r *http.Request, _ []byte) {
		r.Header.Set(TimestampHeader, stamp)
		r.Header.Set(SignatureHeader, sig)
	})
	checkAnswer(t, w, http.StatusOK, "")
}

func TestGetBuildNoApprovals(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	id := decodeAnswer(t, f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer(testSecret))).ID
	w := f.do(t, http.MethodGet, "/v1/builds/"+id, "", nil, bearer(testSecret))
	if !strings.Contains(w.Body.String(), `"approvals":[]`) {
		t.Errorf("approvals are not an empty list: %s", w.Body)
	}
}

func TestGetBuildStatus(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	id := decodeAnswer(t, f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer(testSecret))).ID
	empty := newFixture(t, "", fakeRepo{})
	broken := newFixture(t, testSecret, fakeRepo{})
	broken.store.getErr = errors.New("disk I/O error")
	for _, tc := range []struct {
		name    string
		f       *fixture
		path    string
		auth    auth
		want    int
		wantErr string
	}{
		{"bearer", f, "/v1/builds/" + id, bearer(testSecret), 200, ""},
		{"unknown build", f, "/v1/builds/01HZZZZZZZZZZZZZZZZZZZZZZZ", bearer(testSecret), 404, "unknown build"},
		{"very long id", f, "/v1/builds/" + strings.Repeat("A", 1000), bearer(testSecret), 404, "unknown build"},
		{"no credentials", f, "/v1/builds/" + id, noAuth, 401, "credentials"},
		{"unknown build without credentials", f, "/v1/builds/nope", noAuth, 401, "credentials"},
		{"wrong bearer", f, "/v1/builds/" + id, bearer("x"), 401, ""},
		{"hmac of a body", f, "/v1/builds/" + id, withHeader(SignatureHeader, sign(testSecret, []byte("x"))), 401, ""},
		{"empty secret", empty, "/v1/builds/" + id, withHeader("Authorization", "Bearer "), 401, ""},
		{"empty secret hmac", empty, "/v1/builds/" + id, hmacAuth(""), 401, ""},
		{"store fails", broken, "/v1/builds/" + id, bearer(testSecret), 500, "try again"},
		{"trailing slash", f, "/v1/builds/" + id + "/", bearer(testSecret), 404, ""},
		{"no id", f, "/v1/builds/", bearer(testSecret), 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.f.do(t, http.MethodGet, tc.path, "", nil, tc.auth)
			checkAnswer(t, w, tc.want, tc.wantErr)
		})
	}
}

func jsonEqual(a, b any) bool {
	return bytes.Equal(mustJSON(a), mustJSON(b))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzWebhook(f *testing.F) {
	f.Add(uint8(0), jsonBuild(nil))
	f.Add(uint8(1), formBuild(nil))
	f.Add(uint8(2), []byte(`{"project":"hello","image":"registry.example.com/acme/hello:1","type":"tag","target":"v1"}`))
	f.Add(uint8(3), []byte(`{"project":"hello","type":"branch","target":"a..b","image":"x"}`))
	f.Add(uint8(4), []byte("project=hello&image=%ff&type=tag&target=v1"))
	f.Add(uint8(5), []byte(`{"project":null,"image":[],"type":{}}`))
	f.Add(uint8(6), []byte("\xff\xfe{}"))
	fx := newFixture(f, testSecret, fakeRepo{})
	contentTypes := []string{ctJSON, ctForm, ctJSON + "; charset=utf-8", "text/plain"}
	paths := []string{"/v1/builds", "/build-complete"}
	f.Fuzz(func(t *testing.T, sel uint8, body []byte) {
		ct := contentTypes[int(sel)%len(contentTypes)]
		path := paths[int(sel/4)%len(paths)]
		w := fx.do(t, http.MethodPost, path, ct, body, hmacAuth(testSecret))
		switch w.Code {
		case 200, 202, 400, 404, 413, 415:
		default:
			t.Fatalf("status %d for %q %q: %s", w.Code, ct, body, w.Body)
		}
		var answer map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer is not JSON: %s", w.Body)
		}
		if msg, ok := answer["error"].(string); w.Code >= 400 && (!ok || msg == "") {
			t.Fatalf("refusal without a reason: %s", w.Body)
		}
	})
}

func TestWebhookWakesWorker(t *testing.T) {
	wake := make(chan struct{}, 1)
	st := newFakeStore()
	srv := NewServer(ServerDeps{
		Config: testConfig(), Secrets: Secrets{WebhookSecret: testSecret}, Store: st, Repo: fakeRepo{}, Wake: wake,
	})
	f := &fixture{srv: srv, store: st}
	checkAnswer(t, f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer(testSecret)), http.StatusAccepted, "")
	select {
	case <-wake:
	default:
		t.Fatal("a new build did not wake the worker")
	}
	// A full channel (the worker is busy) does not hold up the answer.
	wake <- struct{}{}
	checkAnswer(t, f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(map[string]any{"target": "main"}), bearer(testSecret)), http.StatusAccepted, "")
	<-wake
	checkAnswer(t, f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer(testSecret)), http.StatusOK, "")
	select {
	case <-wake:
		t.Error("a repeat woke the worker")
	default:
	}
}

// TestWebhookAllowedCIHosts: with ci.allowedHosts, CI's links may point at
// those hosts only.
func TestWebhookAllowedCIHosts(t *testing.T) {
	cfg := testConfig()
	cfg.CI.AllowedHosts = []string{"ci.example.com", "*.github.example.com"}
	srv := NewServer(ServerDeps{Config: cfg, Secrets: Secrets{WebhookSecret: testSecret}, Store: newFakeStore(), Repo: fakeRepo{}})
	for _, tc := range []struct {
		field, link string
		want        int
	}{
		{"buildURL", "https://ci.example.com/b/1", http.StatusAccepted},
		{"buildURL", "https://CI.example.com/b/2", http.StatusAccepted},
		{"commit", "https://code.github.example.com/acme/hello/commit/1", http.StatusAccepted},
		{"commit", "0123abc", http.StatusAccepted}, // a hash is no link
		{"buildURL", "https://evil.example.net/b/1", http.StatusBadRequest},
		{"buildURL", "https://ci.example.com.evil.example.net/b/1", http.StatusBadRequest},
		{"commit", "https://github.example.com.evil.example.net/c", http.StatusBadRequest},
	} {
		body := jsonBuild(map[string]any{tc.field: tc.link, "target": "links-" + tc.field + "-" + tc.link})
		r := httptest.NewRequest(http.MethodPost, "/v1/builds", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		bearer(testSecret)(r, body)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.field, tc.link, w.Code, w.Body, tc.want)
		}
		if tc.want == http.StatusBadRequest && !strings.Contains(w.Body.String(), "ci.allowedHosts does not list") {
			t.Errorf("%s %s: %s does not name ci.allowedHosts", tc.field, tc.link, w.Body)
		}
	}
}

// TestWebhookSettlesTheEnvironment: the answer names the environment the
// build will be deployed to, and it is recorded on the build: a target
// keeps its environment, and a target whose plain name another target's
// build holds (feature/login and Feature/Login share branch-feature-login)
// gets its own hashed name, whichever deploys first.
func TestWebhookSettlesTheEnvironment(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	post := func(target, image string) buildAnswer {
		t.Helper()
		w := f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(map[string]any{"target": target, "image": image}), bearer(testSecret))
		var a buildAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || w.Code != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", target, w.Code, w.Body)
		}
		if b := f.store.builds[a.ID]; b.Environment != a.Environment || b.URL != a.URL {
			t.Fatalf("POST %s answered %s %s, recorded %s %s", target, a.Environment, a.URL, b.Environment, b.URL)
		}
		return a
	}
	first := post("feature/login", "registry.example.com/acme/hello:1")
	second := post("Feature/Login", "registry.example.com/acme/hello:1")
	again := post("feature/login", "registry.example.com/acme/hello:2")
	if first.Environment != "qa/branch-feature-login" || second.Environment != "qa/branch-feature-login-h" ||
		again.Environment != first.Environment || second.URL != "https://feature-login-h.branch.hello.example.com" {
		t.Fatalf("environments %s, %s, %s (%s)", first.Environment, second.Environment, again.Environment, second.URL)
	}
}

func TestBuiltAt(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	for _, bad := range []string{"yesterday", "2026-12-07 10:00", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)} {
		w := f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(map[string]any{"builtAt": bad}), bearer(testSecret))
		checkAnswer(t, w, http.StatusBadRequest, "builtAt")
	}
	at := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	w := f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(map[string]any{"builtAt": at.Format(time.RFC3339)}), bearer(testSecret))
	id := decodeAnswer(t, w).ID
	if got := f.store.build(t, id).BuiltAt; !got.Equal(at) {
		t.Errorf("BuiltAt = %v, want %v", got, at)
	}
}

func (s *fakeStore) Beat(context.Context, string, time.Time) error { return errFakeUnused }
func (s *fakeStore) ReleaseDead(context.Context, time.Duration, time.Time) (int, error) {
	return 0, errFakeUnused
}
func (s *fakeStore) Leave(context.Context, string) error { return errFakeUnused }

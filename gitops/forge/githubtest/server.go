// Package githubtest is a stateful fake of the parts of GitHub's REST API
// that promotebot uses — pull requests, their merge, branch refs, GitHub App
// installation tokens, deployments and their statuses — backed by a real
// bare git repository: merging a pull request really merges its head branch
// into its base branch there, and a deployment's ref must name a commit of
// its repository (the config repository, or one added with AddRepository).
//
// Point a go-github client at it the way go-github's own tests do:
//
//	c := github.NewClient(nil).WithAuthToken(token)
//	c.BaseURL, _ = url.Parse(s.URL) // ends in "/"
//
// Answers have the shapes of GitHub's documented JSON, errors included
// (401 Bad credentials, 404 Not Found, 405 not mergeable, 409 head moved, 422
// Validation Failed, 403 rate limits), so go-github turns them into the same
// error types it produces against GitHub.
package githubtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BotLogin is the login of whoever the API's tokens belong to: the author of
// pull requests opened through the API and merged_by of API merges.
const BotLogin = "promotebot[bot]"

// Route names for Fail.
const (
	RouteCreatePull        = "POST pulls"
	RouteListPulls         = "GET pulls"
	RouteGetPull           = "GET pull"
	RouteEditPull          = "PATCH pull"
	RouteMergePull         = "PUT merge"
	RouteGetRef            = "GET ref"
	RouteDeleteRef         = "DELETE ref"
	RouteInstallationToken = "POST installation token"
	// RouteCreateDeployment and the next two serve the config repository
	// and those added with AddRepository.
	RouteCreateDeployment       = "POST deployments"
	RouteListDeployments        = "GET deployments"
	RouteCreateDeploymentStatus = "POST deployment status"
)

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API root, ending in "/": a go-github client's BaseURL.
	URL string

	tb    testing.TB
	owner string
	repo  string
	git   bareRepo

	mu         sync.Mutex
	token      string
	prs        []*pullRequest
	failures   map[string][]Failure
	calls      []Call
	app        *app
	appTokens  map[string]time.Time // installation token → expiry
	appIssued  int
	nextPullID int64
	// repos are the repositories whose deployments the fake serves, by
	// lower-case "owner/name".
	repos            map[string]*repository
	deployments      []*deployment
	nextDeploymentID int64
	nextStatusID     int64
}

// Failure is an answer the fake gives instead of the real one (see Fail).
type Failure struct {
	// Status defaults to 500; a rate limit is always 403.
	Status int
	// Message defaults to the status text, or to GitHub's rate-limit message.
	Message string
	// RetryAfter sets the Retry-After header (seconds); for RateLimit it sets
	// X-RateLimit-Reset to now plus this many seconds. go-github refuses,
	// without a request, every call of the same client until that time.
	RetryAfter int
	// SecondaryRateLimit answers 403 as GitHub does when a secondary rate
	// limit is hit: go-github returns *github.AbuseRateLimitError.
	SecondaryRateLimit bool
	// RateLimit answers 403 with X-RateLimit-Remaining: 0: go-github returns
	// *github.RateLimitError.
	RateLimit bool
}

// Call is one request the fake received.
type Call struct {
	Method string
	Path   string // URL path, without the query
	Status int    // the answer's status
	Body   string // the request body
}

// NewServer starts the fake for owner/repo, backed by bare (a bare repository,
// e.g. from gittest.NewRemote), accepting token as "Bearer token" or
// "token token". It stops when the test ends.
func NewServer(tb testing.TB, bare, owner, repo, token string) *Server {
	tb.Helper()
	s := &Server{
		tb:        tb,
		owner:     owner,
		repo:      repo,
		git:       bareRepo{dir: bare, scratch: tb.TempDir()},
		token:     token,
		failures:  map[string][]Failure{},
		appTokens: map[string]time.Time{},
	}
	s.repos = map[string]*repository{strings.ToLower(owner + "/" + repo): {owner: owner, name: repo, git: s.git}}
	ts := httptest.NewServer(s.routes())
	tb.Cleanup(ts.Close)
	s.URL = ts.URL + "/"
	return s
}

// route is one endpoint of the fake.
type route struct {
	pattern string // http.ServeMux pattern
	name    string // what Fail calls it
	app     bool   // authenticated by an app JWT, not by a token
	// anyRepo serves every repository in repos, not only the config
	// repository.
	anyRepo bool
	handle  func(r *http.Request, body []byte) reply
}

// routes lists every endpoint; anything else is 404.
func (s *Server) routes() http.Handler {
	const repo = "/repos/{owner}/{repo}"
	mux := http.NewServeMux()
	for _, rt := range []route{
		{pattern: "POST " + repo + "/pulls", name: RouteCreatePull, handle: s.createPull},
		{pattern: "GET " + repo + "/pulls", name: RouteListPulls, handle: s.listPulls},
		{pattern: "GET " + repo + "/pulls/{number}", name: RouteGetPull, handle: s.getPull},
		{pattern: "PATCH " + repo + "/pulls/{number}", name: RouteEditPull, handle: s.editPull},
		{pattern: "PUT " + repo + "/pulls/{number}/merge", name: RouteMergePull, handle: s.mergePull},
		{pattern: "GET " + repo + "/git/ref/{ref...}", name: RouteGetRef, handle: s.getRef},
		{pattern: "DELETE " + repo + "/git/refs/{ref...}", name: RouteDeleteRef, handle: s.deleteRef},
		{pattern: "POST /app/installations/{id}/access_tokens", name: RouteInstallationToken, app: true, handle: s.createInstallationToken},
		{pattern: "POST " + repo + "/deployments", name: RouteCreateDeployment, anyRepo: true, handle: s.createDeployment},
		{pattern: "GET " + repo + "/deployments", name: RouteListDeployments, anyRepo: true, handle: s.listDeployments},
		{pattern: "POST " + repo + "/deployments/{id}/statuses", name: RouteCreateDeploymentStatus, anyRepo: true,
			handle: s.createDeploymentStatus},
	} {
		mux.HandleFunc(rt.pattern, s.serve(rt))
	}
	mux.HandleFunc("/", s.serve(route{handle: func(*http.Request, []byte) reply { return notFound() }}))
	return mux
}

// reply is an answer: a status, a JSON body (nil for none) and headers.
type reply struct {
	status int
	body   any
	header map[string]string
}

// message is GitHub's error body.
type message struct {
	Message          string         `json:"message"`
	Errors           []errorDetails `json:"errors,omitempty"`
	DocumentationURL string         `json:"documentation_url,omitempty"`
}

// errorDetails is one entry of a 422's "errors".
type errorDetails struct {
	Resource string `json:"resource,omitempty"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code,omitempty"`
	Message  string `json:"message,omitempty"`
}

func fail(status int, msg string) reply {
	return reply{status: status, body: message{Message: msg, DocumentationURL: "https://docs.github.com/rest"}}
}

func notFound() reply { return fail(http.StatusNotFound, "Not Found") }

func validationFailed(details ...errorDetails) reply {
	return reply{status: http.StatusUnprocessableEntity, body: message{
		Message: "Validation Failed", Errors: details, DocumentationURL: "https://docs.github.com/rest",
	}}
}

// serve authenticates, applies a queued failure, runs the handler under the
// lock and writes and records the answer.
func (s *Server) serve(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			s.write(w, r, body, fail(http.StatusBadRequest, "Problems reading the body"))
			return
		}
		s.write(w, r, body, s.dispatch(rt, r, body))
	}
}

func (s *Server) dispatch(rt route, r *http.Request, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt.app {
		if s.app == nil {
			return notFound()
		}
		if msg := s.app.verify(r.Header.Get("Authorization"), time.Now()); msg != "" {
			return fail(http.StatusUnauthorized, msg)
		}
	} else {
		if !s.authorized(r.Header.Get("Authorization")) {
			return fail(http.StatusUnauthorized, "Bad credentials")
		}
		switch owner := r.PathValue("owner"); {
		case owner == "":
		case rt.anyRepo && s.pathRepository(r) == nil,
			!rt.anyRepo && (!strings.EqualFold(owner, s.owner) || !strings.EqualFold(r.PathValue("repo"), s.repo)):
			return notFound()
		}
	}
	if q := s.failures[rt.name]; rt.name != "" && len(q) > 0 {
		s.failures[rt.name] = q[1:]
		return q[0].reply()
	}
	return rt.handle(r, body)
}

// authorized reports whether an Authorization header carries the token or a
// live installation token.
func (s *Server) authorized(header string) bool {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || tok == "" || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
		return false
	}
	if s.token != "" && tok == s.token {
		return true
	}
	exp, ok := s.appTokens[tok]
	return ok && time.Now().Before(exp)
}

// write is the one place that answers and records a call.
func (s *Server) write(w http.ResponseWriter, r *http.Request, body []byte, rep reply) {
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("X-GitHub-Request-Id", "githubtest")
	var out []byte
	if rep.body != nil {
		var err error
		if out, err = json.Marshal(rep.body); err != nil {
			s.tb.Errorf("githubtest: encode answer to %s %s: %v", r.Method, r.URL.Path, err)
			rep.status, out = http.StatusInternalServerError, []byte(`{"message":"Server Error"}`)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Status: rep.status, Body: string(body)})
	s.mu.Unlock()
	w.WriteHeader(rep.status)
	if _, err := w.Write(out); err != nil {
		s.tb.Logf("githubtest: write answer to %s %s: %v", r.Method, r.URL.Path, err)
	}
}

// internalError is a failure of the fake itself: it fails the test.
func (s *Server) internalError(err error) reply {
	s.tb.Errorf("githubtest: %v", err)
	return fail(http.StatusInternalServerError, "Server Error")
}

// reply is the answer a queued failure gives.
func (f Failure) reply() reply {
	switch {
	case f.SecondaryRateLimit:
		msg := f.Message
		if msg == "" {
			msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
		}
		return reply{status: http.StatusForbidden, header: map[string]string{"Retry-After": strconv.Itoa(f.RetryAfter)},
			body: message{Message: msg, DocumentationURL: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}}
	case f.RateLimit:
		msg := f.Message
		if msg == "" {
			msg = "API rate limit exceeded for installation."
		}
		return reply{status: http.StatusForbidden, header: map[string]string{
			"X-RateLimit-Limit":     "5000",
			"X-RateLimit-Remaining": "0",
			"X-RateLimit-Used":      "5000",
			"X-RateLimit-Reset":     strconv.FormatInt(time.Now().Unix()+int64(f.RetryAfter), 10),
			"X-RateLimit-Resource":  "core",
		}, body: message{Message: msg, DocumentationURL: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit"}}
	}
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	rep := fail(status, msg)
	if f.RetryAfter > 0 {
		rep.header = map[string]string{"Retry-After": strconv.Itoa(f.RetryAfter)}
	}
	return rep
}

// SetToken replaces the accepted token: the old one is then refused with 401.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// Fail queues f as the answer to the next request on route (one of the Route
// constants, e.g. "PUT merge"), after authentication. Failures on one route
// are used in the order they were queued.
func (s *Server) Fail(route string, f Failure) {
	s.tb.Helper()
	switch route {
	case RouteCreatePull, RouteListPulls, RouteGetPull, RouteEditPull, RouteMergePull,
		RouteGetRef, RouteDeleteRef, RouteInstallationToken,
		RouteCreateDeployment, RouteListDeployments, RouteCreateDeploymentStatus:
	default:
		s.tb.Fatalf("githubtest: Fail: unknown route %q", route)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[route] = append(s.failures[route], f)
}

// Calls returns every request received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// decode reads a JSON request body into v; an empty body leaves v alone.
func decode(body []byte, v any) bool {
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	return json.Unmarshal(body, v) == nil
}

// problemsParsingJSON is GitHub's answer to a body it cannot read.
func problemsParsingJSON() reply {
	return fail(http.StatusBadRequest, "Problems parsing JSON")
}

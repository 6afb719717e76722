package gittest

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Git services a request can address.
const (
	UploadPack  = "git-upload-pack"
	ReceivePack = "git-receive-pack"
)

// Request is one HTTP request the Server answered.
type Request struct {
	Method string
	// Path is the URL path, such as /config.git/info/refs.
	Path string
	// Service is UploadPack or ReceivePack, or "" for a dumb-protocol file.
	Service string
	// Authorized reports whether the request carried the right credentials.
	Authorized bool
	Status     int
}

// IsPush reports whether r is the POST that sends a pack to receive-pack.
func (r Request) IsPush() bool {
	return r.Method == http.MethodPost && r.Service == ReceivePack
}

// Server serves the bare repositories below a directory with git's smart
// HTTP protocol (git-http-backend through CGI) behind HTTP Basic auth. It
// records every request and can be told to fail pushes.
type Server struct {
	// URL is the server's base URL; a repository's clone URL is URL + "/" +
	// its directory name (see RepoURL).
	URL string

	user, password string
	srv            *httptest.Server
	backend        *cgi.Handler
	stderr         lockedBuffer

	mu         sync.Mutex
	requests   []Request
	failPushes int
	failStatus int
	intercept  func(http.ResponseWriter, *http.Request) bool
}

// StartServer starts a Server for the bare repositories below projectRoot
// that accepts user and password. Receive-pack is enabled (REMOTE_USER is
// set), and git-http-backend runs with the hermetic environment of Env. Call
// Close when done.
func StartServer(projectRoot, user, password string) (*Server, error) {
	execPath, err := RunGit("", "--exec-path")
	if err != nil {
		return nil, fmt.Errorf("start git server: %w", err)
	}
	root, err := filepath.Abs(projectRoot)
	if err != nil {
		return nil, fmt.Errorf("start git server: %w", err)
	}
	s := &Server{user: user, password: password}
	s.backend = &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Dir:  root,
		Env: append(hermeticVars(),
			"GIT_PROJECT_ROOT="+root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER="+user,
		),
		InheritEnv: []string{"TMPDIR"},
		Logger:     log.New(&s.stderr, "cgi: ", 0),
		Stderr:     &s.stderr,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s, nil
}

// NewServer is StartServer for a test; the server closes at the test's end.
func NewServer(tb testing.TB, projectRoot, user, password string) *Server {
	tb.Helper()
	s, err := StartServer(projectRoot, user, password)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// ServeHTTP starts a Server for the test (see NewServer) and returns its URL.
func ServeHTTP(tb testing.TB, projectRoot, user, password string) string {
	tb.Helper()
	return NewServer(tb, projectRoot, user, password).URL
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// RepoURL returns the clone URL of the repository in directory repo (a name
// such as "config.git", or a bare repository's path, whose base name is used).
func (s *Server) RepoURL(repo string) string {
	return s.URL + "/" + filepath.Base(repo)
}

// AuthURL is RepoURL with the server's credentials in it, for the git CLI.
func (s *Server) AuthURL(repo string) string {
	u, err := url.Parse(s.RepoURL(repo))
	if err != nil {
		// httptest URLs always parse.
		panic(fmt.Sprintf("gittest: parse %s: %v", s.RepoURL(repo), err))
	}
	u.User = url.UserPassword(s.user, s.password)
	return u.String()
}

// Requests returns the requests answered so far, in order. A request is
// recorded as soon as its status line is written, before the client has read
// the body, so it is visible once the git command that sent it has returned.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Pushes counts the authorized receive-pack POSTs answered 200. A push that a
// hook refused still counts: git reports the refusal inside a 200 answer.
func (s *Server) Pushes() int {
	n := 0
	for _, r := range s.Requests() {
		if r.IsPush() && r.Authorized && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// FailPushes makes the next n authorized receive-pack POSTs (the request that
// carries the pack) answer status without reaching git; the ref
// advertisement before them is served normally. Zero status means 500.
func (s *Server) FailPushes(n, status int) {
	if status == 0 {
		status = http.StatusInternalServerError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failPushes, s.failStatus = n, status
}

// Intercept installs f, called for every authorized request before git sees
// it; when f returns true it has answered the request itself (to delay,
// fail, or inspect it). Nil removes it. f runs on the server's goroutines.
func (s *Server) Intercept(f func(w http.ResponseWriter, r *http.Request) (handled bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.intercept = f
}

// Stderr returns what git-http-backend and the CGI host wrote to stderr.
func (s *Server) Stderr() string { return s.stderr.String() }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Service: service(r)}
	sw := &statusWriter{ResponseWriter: w, record: func(status int) {
		rec.Status = status
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests = append(s.requests, rec)
	}}
	defer sw.recordImplicitOK()
	if !s.authorized(r) {
		sw.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(sw, "authentication required", http.StatusUnauthorized)
		return
	}
	rec.Authorized = true
	if status, fail := s.takeFailure(rec); fail {
		http.Error(sw, "injected failure", status)
		return
	}
	s.mu.Lock()
	intercept := s.intercept
	s.mu.Unlock()
	if intercept != nil && intercept(sw, r) {
		return
	}
	// net/http/cgi refuses chunked bodies, which git sends for packs over
	// http.postBuffer (1 MiB): read the body so its length is known.
	if r.ContentLength < 0 || len(r.TransferEncoding) > 0 {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(sw, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.TransferEncoding = nil
	}
	s.backend.ServeHTTP(sw, r)
}

// authorized checks Basic credentials in constant time.
func (s *Server) authorized(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	if !ok {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(s.user))
	passwordOK := subtle.ConstantTimeCompare([]byte(password), []byte(s.password))
	return userOK&passwordOK == 1
}

// takeFailure consumes one injected push failure if rec is a push.
func (s *Server) takeFailure(rec Request) (int, bool) {
	if !rec.IsPush() {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPushes <= 0 {
		return 0, false
	}
	s.failPushes--
	return s.failStatus, true
}

// service names the git service a request addresses.
func service(r *http.Request) string {
	if strings.HasSuffix(r.URL.Path, "/info/refs") {
		return r.URL.Query().Get("service")
	}
	for _, svc := range []string{UploadPack, ReceivePack} {
		if strings.HasSuffix(r.URL.Path, "/"+svc) {
			return svc
		}
	}
	return ""
}

// statusWriter calls record once, with the status, before the header goes out.
type statusWriter struct {
	http.ResponseWriter
	record  func(status int)
	written bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.written {
		w.written = true
		w.record(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// recordImplicitOK records the 200 net/http sends for a handler that wrote
// nothing.
func (w *statusWriter) recordImplicitOK() {
	if !w.written {
		w.written = true
		w.record(http.StatusOK)
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

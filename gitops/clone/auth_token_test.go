package clone_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/clone/clonetest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/promote"
)

// tokenGate stands in front of a gittest server like GitHub in front of a
// repository: it accepts only the installation token of the moment (user
// x-access-token) and passes the request on with the server's own
// credentials. It records the token of every push.
type tokenGate struct {
	accepted atomic.Value // string
	// echo makes it refuse pushes with a 403 whose text quotes the token, as
	// a careless proxy might.
	echo atomic.Bool

	mu     sync.Mutex
	pushed []string // the token of each receive-pack POST let through
}

const backendSecret = "backend-secret"

func newTokenGate(t *testing.T, root, first string) (*tokenGate, string) {
	t.Helper()
	backend := gittest.NewServer(t, root, "x-access-token", backendSecret)
	target, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	g := &tokenGate{}
	g.accepted.Store(first)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, tok, _ := r.BasicAuth()
		receivePack := r.URL.Query().Get("service") == gittest.ReceivePack || strings.HasSuffix(r.URL.Path, "/"+gittest.ReceivePack)
		if g.echo.Load() && receivePack {
			http.Error(w, fmt.Sprintf("token %s may not push here", tok), http.StatusForbidden)
			return
		}
		if user != "x-access-token" || tok != g.accepted.Load().(string) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "Invalid username or token", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && receivePack {
			g.mu.Lock()
			g.pushed = append(g.pushed, tok)
			g.mu.Unlock()
		}
		r.SetBasicAuth("x-access-token", backendSecret)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return g, srv.URL
}

func (g *tokenGate) pushes() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.pushed...)
}

// syncBuffer is a log sink the writer goroutine and the test share.
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

func TestTokenAuthIsAskedBeforeEachPush(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	gate, base := newTokenGate(t, filepath.Dir(bare), "tok-1")
	var current atomic.Value
	current.Store("tok-1")
	var calls atomic.Int32
	var logs syncBuffer
	auth := clone.Auth{Token: func(context.Context) (string, error) {
		calls.Add(1)
		return current.Load().(string), nil
	}}
	if s := fmt.Sprint(auth); !strings.Contains(s, "token source set: true") {
		t.Errorf("Auth.String() = %s", s)
	}
	r := clonetest.Open(t, base+"/"+filepath.Base(bare), func(o *clone.Options) {
		o.Auth = auth
		o.MaxAttempts = 3
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})

	first := apply(t, r, writeFile("a.txt", "1"))
	if gittest.Head(t, bare, "main") != first.Commit {
		t.Fatal("the first change was not pushed")
	}
	before := calls.Load()

	// The token is refreshed: the old one is refused from now on.
	current.Store("tok-2")
	gate.accepted.Store("tok-2")
	second := apply(t, r, writeFile("b.txt", "2"))
	if gittest.Head(t, bare, "main") != second.Commit {
		t.Fatal("the change after the refresh was not pushed")
	}
	if calls.Load() == before {
		t.Fatal("the token source was not asked again before the second push")
	}
	branch, err := r.ApplyToBranch(context.Background(), "promotebot/hello/B1", writeFile("c.txt", "3"))
	if err != nil || gittest.Head(t, bare, "promotebot/hello/B1") != branch.Commit {
		t.Fatalf("branch push with the refreshed token: %+v, %v", branch, err)
	}
	if got := gate.pushes(); strings.Join(got, ",") != "tok-1,tok-2,tok-2" {
		t.Fatalf("pushes carried tokens %v, want tok-1, tok-2, tok-2", got)
	}

	// A remote that quotes the credentials back: the token must not get out.
	const leaky = "tok-3-leaky-secret"
	current.Store(leaky)
	gate.accepted.Store(leaky)
	gate.echo.Store(true)
	_, err = r.Apply(context.Background(), writeFile("d.txt", "4"))
	if !errors.Is(err, transport.ErrAuthorizationFailed) {
		t.Fatalf("push refused with 403 = %v, want ErrAuthorizationFailed", err)
	}
	if strings.Contains(err.Error(), leaky) || !strings.Contains(err.Error(), "token *** may not push") {
		t.Fatalf("push error %q: want the quoted token redacted", err)
	}
	if strings.Contains(logs.String(), leaky) {
		t.Fatalf("the token reached the log:\n%s", logs.String())
	}
}

func TestTokenSourceFailures(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	_, base := newTokenGate(t, filepath.Dir(bare), "tok-1")
	var fail atomic.Pointer[error] // nil: the token source works
	r := clonetest.Open(t, base+"/"+filepath.Base(bare), func(o *clone.Options) {
		o.MaxAttempts = 3
		o.Auth = clone.Auth{Token: func(context.Context) (string, error) {
			if err := fail.Load(); err != nil {
				return "", *err
			}
			return "tok-1", nil
		}}
	})

	// Refused app credentials cannot be fixed by retrying.
	refused := fmt.Errorf("github app: installation token: 401 Bad credentials: %w", promote.ErrInvalid)
	fail.Store(&refused)
	_, err := r.Apply(context.Background(), writeFile("a.txt", "1"))
	var exhausted *clone.RetriesExhaustedError
	if !errors.Is(err, promote.ErrInvalid) || errors.As(err, &exhausted) || !promote.IsPermanent(err) {
		t.Fatalf("Apply with refused app credentials = %v, want a terminal error at once", err)
	}

	// A token endpoint that is down is retried, then reported.
	down := errors.New("github app: installation token: 502 Bad Gateway")
	fail.Store(&down)
	_, err = r.Apply(context.Background(), writeFile("a.txt", "1"))
	if !errors.As(err, &exhausted) || promote.IsPermanent(err) {
		t.Fatalf("Apply with the token endpoint down = %v, want retries exhausted", err)
	}

	fail.Store(nil)
	res := apply(t, r, writeFile("a.txt", "1"))
	if gittest.Head(t, bare, "main") != res.Commit {
		t.Fatal("not pushed once the token endpoint recovered")
	}
}

// TestRevokedTokenIsReplacedOnce: the git server refuses (401) a token the
// source still hands out; the writer tells Forget, and the push goes
// through with the next token. A source that keeps handing out refused
// tokens gets one more try, then the refusal is the answer.
func TestRevokedTokenIsReplacedOnce(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "x-access-token", "ghs_good")
	var mu sync.Mutex
	current, forgotten := "ghs_good", []string{}
	replacement := "ghs_good"
	r := clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) {
		o.Auth = clone.Auth{
			Token: func(context.Context) (string, error) {
				mu.Lock()
				defer mu.Unlock()
				return current, nil
			},
			Forget: func(tok string) {
				mu.Lock()
				defer mu.Unlock()
				forgotten = append(forgotten, tok)
				if tok == current {
					current = replacement
				}
			},
		}
	})
	mu.Lock()
	current = "ghs_revoked" // GitHub revoked the cached token
	mu.Unlock()
	if res := apply(t, r, writeFile("after-revoke.txt", "1\n")); !res.Changed {
		t.Fatalf("Apply after the revocation: %+v", res)
	}
	mu.Lock()
	if !slices.Equal(forgotten, []string{"ghs_revoked"}) {
		t.Errorf("forgotten %v, want the revoked token once", forgotten)
	}
	current, replacement = "ghs_revoked", "ghs_also_revoked"
	mu.Unlock()
	_, err := r.Apply(context.Background(), writeFile("refused.txt", "1\n"))
	if !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Fatalf("Apply with tokens that keep being refused = %v, want the refusal", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(forgotten) != 2 {
		t.Errorf("forgotten %v, want one more token forgotten, then the refusal", forgotten)
	}
	if strings.Contains(err.Error(), "ghs_") {
		t.Errorf("the error shows a token: %v", err)
	}
}

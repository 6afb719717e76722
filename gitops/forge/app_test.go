package forge

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/forge/githubtest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/promote"
)

const (
	testAppID        = 1234
	testInstallation = 5678
)

// appKeys are two RSA keys made once: generating them dominates these tests.
var appKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return keys, err
		}
		keys[i] = k
	}
	return keys, nil
})

// appKey returns the app's key (0) or a stranger's (1).
func appKey(t *testing.T, i int) *rsa.PrivateKey {
	t.Helper()
	keys, err := appKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys[i]
}

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func pkcs8PEM(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// appFake serves a bare config repo, with a branch promotebot/hello/B1 one
// commit ahead of main, through the GitHub fake, which accepts no static
// token: only the app's installation tokens.
func appFake(t *testing.T) *githubtest.Server {
	t.Helper()
	bare := gittest.NewRemote(t, "../../testdata/configrepo")
	work := gittest.Clone(t, bare)
	gittest.Git(t, work, "checkout", "-q", "-b", "promotebot/hello/B1")
	gittest.CommitFiles(t, work, map[string]string{"apps/hello/overlays/production/note.txt": "x\n"}, "Promote")
	gittest.Git(t, work, "push", "-q", "origin", "promotebot/hello/B1")
	fake := githubtest.NewServer(t, bare, "acme", "deploy-config", "")
	der, err := x509.MarshalPKIXPublicKey(&appKey(t, 0).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	fake.EnableApp(testAppID, testInstallation, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return fake
}

func newAppTokens(t *testing.T, apiURL string, appID, installation int64, key []byte) *AppTokens {
	t.Helper()
	tokens, err := NewAppTokens(apiURL, appID, installation, key)
	if err != nil {
		t.Fatalf("NewAppTokens: %v", err)
	}
	return tokens
}

func TestAppTokensOpenAPullRequestAndRefresh(t *testing.T) {
	fake := appFake(t)
	ctx := context.Background()
	tokens := newAppTokens(t, fake.URL, testAppID, testInstallation, pkcs1PEM(appKey(t, 0)))
	c, err := New(Options{Repository: "acme/deploy-config", APIURL: fake.URL, Tokens: tokens.Token})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := c.OpenPR(ctx, promote.PRRequest{Head: "promotebot/hello/B1", Base: "main", Title: "Promote hello"})
	if err != nil || pr.Number != 1 || !pr.Open {
		t.Fatalf("OpenPR with an installation token = %+v, %v", pr, err)
	}
	if n := fake.InstallationTokens(); n != 1 {
		t.Fatalf("%d installation tokens for one PR's calls, want 1 (cached)", n)
	}
	first, err := tokens.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := fake.InstallationTokens(); n != 1 {
		t.Fatalf("%d installation tokens after another Token call, want 1 (cached)", n)
	}

	// GitHub lets the token lapse: until the clock says it is near its
	// expiry, the cache keeps it and GitHub refuses it.
	fake.ExpireInstallationTokens()
	if _, err := c.PR(ctx, 1); !promote.IsPermanent(err) {
		t.Fatalf("PR with a lapsed token = %v, want a refusal", err)
	}
	tokens.now = func() time.Time { return time.Now().Add(54 * time.Minute) } // six minutes left
	if _, err := c.PR(ctx, 1); !promote.IsPermanent(err) || fake.InstallationTokens() != 1 {
		t.Fatalf("PR with six minutes left = %v, %d tokens; want the cached token used", err, fake.InstallationTokens())
	}
	tokens.now = func() time.Time { return time.Now().Add(56 * time.Minute) } // four minutes left
	if pr, err := c.PR(ctx, 1); err != nil || pr.Number != 1 {
		t.Fatalf("PR once the token is near its expiry = %+v, %v; want a new token used", pr, err)
	}
	if n := fake.InstallationTokens(); n != 2 {
		t.Fatalf("%d installation tokens, want 2", n)
	}
	second, err := tokens.Token(ctx)
	if err != nil || second == first {
		t.Fatalf("Token after the refresh = %v (same as before: %t)", err, second == first)
	}
}

// TestAppTokenRefusedBeforeItsTime: GitHub answers 401 to a cached token
// that should still be good (revoked, clocks apart). The client forgets it,
// buys one new token, and sends the call again, body included; other calls
// refused with the same old token share that one new token.
func TestAppTokenRefusedBeforeItsTime(t *testing.T) {
	fake := appFake(t)
	ctx := context.Background()
	tokens := newAppTokens(t, fake.URL, testAppID, testInstallation, pkcs1PEM(appKey(t, 0)))
	c, err := New(Options{Repository: "acme/deploy-config", APIURL: fake.URL, Tokens: tokens.Token, Forget: tokens.Forget})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := c.OpenPR(ctx, promote.PRRequest{Head: "promotebot/hello/B1", Base: "main", Title: "Promote hello"})
	if err != nil {
		t.Fatal(err)
	}
	fake.ExpireInstallationTokens()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got, err := c.PR(ctx, pr.Number); err != nil || got.HeadSHA != pr.HeadSHA {
				t.Errorf("PR with a revoked token = %+v, %v", got, err)
			}
		})
	}
	wg.Wait()
	if n := fake.InstallationTokens(); n != 2 {
		t.Errorf("%d installation tokens after 8 refused calls, want 2 (one new token for all)", n)
	}
	fake.ExpireInstallationTokens()
	sha, err := c.Merge(ctx, pr.Number, pr.HeadSHA, "Promote hello", "Promotebot-Build: B1\n")
	if err != nil || sha == "" {
		t.Fatalf("Merge (a PUT with a body) with a revoked token = %q, %v; want it sent again with a new token", sha, err)
	}
	if got, err := c.PR(ctx, pr.Number); err != nil || !got.Merged {
		t.Fatalf("after the merge: %+v, %v", got, err)
	}
	if n := fake.InstallationTokens(); n != 3 {
		t.Errorf("%d installation tokens, want 3", n)
	}
}

// TestAppTokenRefusedAndNoNewOne: when no new token can be had (the app
// was uninstalled), GitHub's 401 is the answer: a refusal, not a retry.
func TestAppTokenRefusedAndNoNewOne(t *testing.T) {
	fake := appFake(t)
	ctx := context.Background()
	tokens := newAppTokens(t, fake.URL, testAppID, testInstallation, pkcs1PEM(appKey(t, 0)))
	c, err := New(Options{Repository: "acme/deploy-config", APIURL: fake.URL, Tokens: tokens.Token, Forget: tokens.Forget})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenPR(ctx, promote.PRRequest{Head: "promotebot/hello/B1", Base: "main", Title: "Promote hello"}); err != nil {
		t.Fatal(err)
	}
	fake.ExpireInstallationTokens()
	der, err := x509.MarshalPKIXPublicKey(&appKey(t, 1).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// The app is now another one: our key no longer buys tokens.
	fake.EnableApp(testAppID+1, testInstallation, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if _, err := c.PR(ctx, 1); !promote.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("PR = %v, want GitHub's 401 as a refusal", err)
	}
}

func TestAppTokensConcurrentCallersShareOneRefresh(t *testing.T) {
	fake := appFake(t)
	tokens := newAppTokens(t, fake.URL, testAppID, testInstallation, pkcs8PEM(t, appKey(t, 0)))
	got := make([]string, 8)
	errs := make([]error, len(got))
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i], errs[i] = tokens.Token(context.Background()) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("caller %d: %q, %v; want %q", i, got[i], errs[i], got[0])
		}
	}
	if n := fake.InstallationTokens(); n != 1 {
		t.Fatalf("%d installation tokens for %d concurrent callers, want 1", n, len(got))
	}
}

func TestAppTokensWaitingCallerHonoursItsContext(t *testing.T) {
	tokens := newAppTokens(t, "http://127.0.0.1:1/", testAppID, testInstallation, pkcs1PEM(appKey(t, 0)))
	tokens.sem <- struct{}{} // a refresh in flight
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tokens.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Token while another refresh runs, ctx done = %v", err)
	}
}

func TestAppTokensRefusedCredentials(t *testing.T) {
	fake := appFake(t)
	for _, tc := range []struct {
		name         string
		appID, inst  int64
		key          []byte
		wantInErrMsg string
	}{
		{"wrong private key", testAppID, testInstallation, pkcs1PEM(appKey(t, 1)), "401"},
		{"wrong app id", 999, testInstallation, pkcs1PEM(appKey(t, 0)), "401"},
		{"app not installed there", testAppID, 1, pkcs1PEM(appKey(t, 0)), "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokens := newAppTokens(t, fake.URL, tc.appID, tc.inst, tc.key)
			tok, err := tokens.Token(context.Background())
			if !promote.IsPermanent(err) || tok != "" {
				t.Fatalf("Token = %q, %v; want a permanent error", tok, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "github app: installation token: "+tc.wantInErrMsg) {
				t.Fatalf("error %q, want it to start with github app: installation token: %s", msg, tc.wantInErrMsg)
			}
		})
	}
	if n := fake.InstallationTokens(); n != 0 {
		t.Fatalf("%d tokens issued to refused credentials", n)
	}
}

func TestAppTokensTransientFailures(t *testing.T) {
	fake := appFake(t)
	ctx := context.Background()
	tokens := newAppTokens(t, fake.URL, testAppID, testInstallation, pkcs1PEM(appKey(t, 0)))

	fake.Fail(githubtest.RouteInstallationToken, githubtest.Failure{Status: http.StatusBadGateway})
	if _, err := tokens.Token(ctx); err == nil || promote.IsPermanent(err) {
		t.Fatalf("502: %v, want a transient error", err)
	}
	fake.Fail(githubtest.RouteInstallationToken, githubtest.Failure{SecondaryRateLimit: true, RetryAfter: 30})
	var ra *promote.RetryAfterError
	if _, err := tokens.Token(ctx); !errors.As(err, &ra) || ra.After != 30*time.Second || promote.IsPermanent(err) {
		t.Fatalf("secondary rate limit: %v, want retry after 30s", err)
	}
	if tok, err := tokens.Token(ctx); err != nil || tok == "" {
		t.Fatalf("Token once GitHub recovered = %q, %v", tok, err)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	unreachable := newAppTokens(t, down.URL+"/", testAppID, testInstallation, pkcs1PEM(appKey(t, 0)))
	if _, err := unreachable.Token(ctx); err == nil || promote.IsPermanent(err) {
		t.Fatalf("unreachable API: %v, want a transient error", err)
	}
}

func TestNewAppTokensKeys(t *testing.T) {
	fake := appFake(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := pkcs1PEM(appKey(t, 0))
	block, _ := pem.Decode(good)
	truncated := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: block.Bytes[:len(block.Bytes)/2]})
	for _, tc := range []struct {
		name string
		key  []byte
		ok   bool
	}{
		{"PKCS #1", good, true},
		{"PKCS #8", pkcs8PEM(t, appKey(t, 0)), true},
		{"not PEM", []byte("MIIEowIBAAKCAQEAsecretsecretsecret"), false},
		{"empty", nil, false},
		{"truncated PKCS #1", truncated, false},
		{"PKCS #8 EC key", pkcs8PEM(t, ec), false},
		{"public key", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&appKey(t, 0).PublicKey)}), false},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: block.Bytes}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokens, err := NewAppTokens(fake.URL, testAppID, testInstallation, tc.key)
			if !tc.ok {
				if err == nil || !strings.HasPrefix(err.Error(), "github app: private key: ") {
					t.Fatalf("NewAppTokens = %v, want a private key error", err)
				}
				if b, _ := pem.Decode(tc.key); b != nil && len(b.Bytes) > 8 &&
					(strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(b.Bytes[:8])) || strings.Contains(err.Error(), string(b.Bytes[:8]))) {
					t.Fatalf("the error quotes the key: %v", err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("the error quotes the input: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewAppTokens: %v", err)
			}
			if tok, err := tokens.Token(context.Background()); err != nil || tok == "" {
				t.Fatalf("Token with a %s key = %q, %v", tc.name, tok, err)
			}
		})
	}
	for _, bad := range []string{"https://api.github.com", "::"} {
		if _, err := NewAppTokens(bad, testAppID, testInstallation, good); err == nil {
			t.Errorf("apiURL %q accepted", bad)
		}
	}
	if _, err := NewAppTokens(fake.URL, 0, testInstallation, good); err == nil {
		t.Error("app id 0 accepted")
	}
}

func TestSignJWT(t *testing.T) {
	key := appKey(t, 0)
	now := time.Unix(1_700_000_000, 0)
	jwt, err := signJWT(key, "1234", now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT %q: want three parts", jwt)
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || string(header) != `{"alg":"RS256","typ":"JWT"}` {
		t.Fatalf("header %q, %v", header, err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"iat": float64(now.Unix() - 60), "exp": float64(now.Unix() + 540), "iss": "1234"}
	if len(claims) != len(want) {
		t.Fatalf("claims %v, want %v", claims, want)
	}
	for k, v := range want {
		if claims[k] != v {
			t.Fatalf("claim %s = %#v, want %#v (claims %s)", k, claims[k], v, payload)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
}

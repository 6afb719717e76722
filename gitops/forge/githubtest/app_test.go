package githubtest_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

// signJWT is a GitHub App JWT (RS256) with claims.
func signJWT(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	seg := func(v any) string {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(data)
	}
	signed := seg(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + seg(claims)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestInstallationToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	const appID, installation = 1234, 5678

	appClient := func(jwt string) *github.Client { return newClient(t, f.s, jwt) }
	now := time.Now().Unix()
	good := signJWT(t, key, map[string]any{"iat": now - 60, "exp": now + 540, "iss": "1234"})

	// Before EnableApp the endpoint does not exist.
	if _, _, err := appClient(good).Apps.CreateInstallationToken(ctx, installation, nil); status(err) != http.StatusNotFound {
		t.Errorf("app not enabled: %v", err)
	}
	f.s.EnableApp(appID, installation, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, jwt := range map[string]string{
		"other key":     signJWT(t, other, map[string]any{"iat": now - 60, "exp": now + 540, "iss": "1234"}),
		"other app":     signJWT(t, key, map[string]any{"iat": now - 60, "exp": now + 540, "iss": "999"}),
		"expired":       signJWT(t, key, map[string]any{"iat": now - 700, "exp": now - 100, "iss": 1234}),
		"too long":      signJWT(t, key, map[string]any{"iat": now, "exp": now + 3600, "iss": 1234}),
		"static token":  token,
		"garbled token": good[:len(good)-4] + "AAAA",
	} {
		if _, _, err := appClient(jwt).Apps.CreateInstallationToken(ctx, installation, nil); status(err) != http.StatusUnauthorized {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := appClient(good).Apps.CreateInstallationToken(ctx, 1, nil); status(err) != http.StatusNotFound {
		t.Errorf("other installation: %v", err)
	}
	// A JWT is not a token for the repository's endpoints.
	if _, _, err := appClient(good).PullRequests.List(ctx, owner, repo, nil); status(err) != http.StatusUnauthorized {
		t.Errorf("JWT on pulls: %v", err)
	}

	tok, resp, err := appClient(good).Apps.CreateInstallationToken(ctx, installation, nil)
	if err != nil || resp.StatusCode != http.StatusCreated || !strings.HasPrefix(tok.GetToken(), "ghs_") ||
		time.Until(tok.GetExpiresAt().Time) < 59*time.Minute {
		t.Fatalf("installation token: %+v, %v", tok, err)
	}
	if f.s.InstallationTokens() != 1 {
		t.Errorf("issued %d tokens", f.s.InstallationTokens())
	}
	installed := newClient(t, f.s, tok.GetToken())
	if _, _, err := installed.PullRequests.List(ctx, owner, repo, nil); err != nil {
		t.Errorf("with the installation token: %v", err)
	}
	f.s.ExpireInstallationTokens()
	if _, _, err := installed.PullRequests.List(ctx, owner, repo, nil); status(err) != http.StatusUnauthorized {
		t.Errorf("expired installation token: %v", err)
	}
	if _, _, err := f.c.PullRequests.List(ctx, owner, repo, nil); err != nil {
		t.Errorf("static token after expiry: %v", err)
	}
}

package forge

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
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// GitHub App authentication is written here rather than taken from
// github.com/bradleyfalzon/ghinstallation/v2: its current releases require
// go-github v88 (a second go-github major beside the v60 this module is fixed
// on), and the one release on v60 (v2.10.0) refreshes only a minute before
// expiry, cannot be given a clock and needs golang-jwt/jwt/v4. What is needed
// is one RS256 signature and one POST.

const (
	// refreshBefore is how long before its expiry a cached installation token
	// is replaced: long enough for a slow push that starts with it to finish.
	refreshBefore = 5 * time.Minute
	// jwtBackdate and jwtLifetime follow GitHub's advice for app JWTs: issued
	// a minute in the past against clock drift, valid under ten minutes.
	jwtBackdate = 60 * time.Second
	jwtLifetime = 9 * time.Minute
)

// AppTokens gives the installation access tokens of a GitHub App: each is
// bought with a JWT signed by the app's private key, cached, and replaced
// when it has less than five minutes left. It is safe for concurrent use;
// one refresh runs at a time and the other callers wait for it.
type AppTokens struct {
	endpoint string // POST here for a token
	appID    string
	key      *rsa.PrivateKey
	hc       *http.Client
	// now decides whether the cached token is still fresh (time.Now; tests
	// move it). The JWT is stamped with the wall clock regardless: GitHub
	// checks it against its own.
	now func() time.Time

	sem     chan struct{} // holds the right to read, refresh and write the cache
	token   string
	expires time.Time
}

// NewAppTokens prepares the installation tokens of app appID for
// installationID, asking the API at apiURL (ending in "/", like
// Options.APIURL). privateKeyPEM is the app's RSA private key as GitHub hands
// it out (PKCS #1, "RSA PRIVATE KEY") or in PKCS #8 ("PRIVATE KEY"). It calls
// nothing yet.
func NewAppTokens(apiURL string, appID, installationID int64, privateKeyPEM []byte) (*AppTokens, error) {
	base, err := url.Parse(apiURL)
	if err != nil || !strings.HasSuffix(base.Path, "/") {
		return nil, fmt.Errorf("github apiURL %q: want a URL ending in /", apiURL)
	}
	if appID <= 0 || installationID <= 0 {
		return nil, fmt.Errorf("github app: app id %d, installation id %d: want positive numbers", appID, installationID)
	}
	key, err := parseRSAPrivateKey(privateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("github app: private key: %w", err)
	}
	return &AppTokens{
		endpoint: base.JoinPath("app", "installations", strconv.FormatInt(installationID, 10), "access_tokens").String(),
		appID:    strconv.FormatInt(appID, 10),
		key:      key,
		hc:       &http.Client{Timeout: callTimeout},
		now:      time.Now,
		sem:      make(chan struct{}, 1),
	}, nil
}

// parseRSAPrivateKey reads a PEM-encoded RSA private key. Its errors describe
// the input's shape and never quote it.
func parseRSAPrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS #1: %w", err)
		}
		return key, nil
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS #8: %w", err)
		}
		rsaKey, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("PKCS #8: a %T, want an RSA key", key)
		}
		return rsaKey, nil
	default:
		return nil, fmt.Errorf("PEM block %q: want \"RSA PRIVATE KEY\" or \"PRIVATE KEY\" (unencrypted)", block.Type)
	}
}

// Token returns an installation token with more than five minutes to live,
// buying a new one when the cached one is missing or about to expire. Refused
// credentials (401, 403, 404: a wrong key or app id, an uninstalled app) are
// permanent (promote.IsPermanent); a rate limit is a *promote.RetryAfterError; other
// failures are transient.
func (a *AppTokens) Token(ctx context.Context) (string, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("github app: installation token: %w", ctx.Err())
	}
	defer func() { <-a.sem }()
	if a.token != "" && a.now().Before(a.expires.Add(-refreshBefore)) {
		return a.token, nil
	}
	token, expires, err := a.fetch(ctx)
	if err != nil {
		return "", err
	}
	a.token, a.expires = token, expires
	return token, nil
}

// Forget drops token from the cache when it is the cached one: GitHub
// refused it before its time (revoked, or clocks that disagree), and the
// next Token buys a new one. A token already replaced is left alone, so
// that callers refused with the same old token buy one new token between
// them, not one each.
func (a *AppTokens) Forget(token string) {
	a.sem <- struct{}{}
	defer func() { <-a.sem }()
	if a.token == token {
		a.token, a.expires = "", time.Time{}
	}
}

// fetch buys an installation token.
func (a *AppTokens) fetch(ctx context.Context) (string, time.Time, error) {
	jwt, err := signJWT(a.key, a.appID, time.Now())
	if err != nil {
		return "", time.Time{}, fmt.Errorf("github app: sign JWT: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, nil)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("github app: installation token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+jwt)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("github app: installation token: %w", err)
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := errors.Join(rerr, resp.Body.Close()); err != nil {
		return "", time.Time{}, fmt.Errorf("github app: installation token: read answer: %w", err)
	}
	if err := tokenStatusErr(resp, body); err != nil {
		return "", time.Time{}, err
	}
	var answer struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", time.Time{}, fmt.Errorf("github app: installation token: decode answer: %w", err)
	}
	if answer.Token == "" || answer.ExpiresAt.IsZero() {
		return "", time.Time{}, errors.New("github app: installation token: answer without token or expires_at")
	}
	return answer.Token, answer.ExpiresAt, nil
}

// tokenStatusErr sorts a failed answer of the token endpoint: refused
// credentials are permanent, rate limits say when to retry, the rest is
// transient. It returns nil for a success.
func tokenStatusErr(resp *http.Response, body []byte) error {
	code := resp.StatusCode
	if code == http.StatusCreated || code == http.StatusOK {
		return nil
	}
	var msg struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Message == "" {
		msg.Message = http.StatusText(code)
	}
	if len(msg.Message) > 200 {
		msg.Message = msg.Message[:200] + "…"
	}
	err := fmt.Errorf("github app: installation token: %d %s", code, msg.Message)
	if after, ok := retryAfter(resp); ok && (code == http.StatusForbidden || code == http.StatusTooManyRequests) {
		return &promote.RetryAfterError{After: after, Err: err}
	}
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return promote.Permanent(err)
	}
	return err
}

// retryAfter reads GitHub's rate-limit headers: Retry-After (secondary
// limits) or an exhausted X-RateLimit-Remaining with its reset time.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		return max(time.Duration(s)*time.Second, time.Second), true
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return max(time.Until(time.Unix(reset, 0)), time.Second), true
		}
		return time.Minute, true
	}
	return 0, false
}

// signJWT makes the app's JWT: RS256 over {"alg":"RS256","typ":"JWT"} and
// claims iat (a minute ago, against clock drift), exp (in nine minutes, under
// GitHub's ten) and iss (the app id, as a string).
func signJWT(key *rsa.PrivateKey, appID string, now time.Time) (string, error) {
	claims, err := json.Marshal(struct {
		Iat int64  `json:"iat"`
		Exp int64  `json:"exp"`
		Iss string `json:"iss"`
	}{Iat: now.Add(-jwtBackdate).Unix(), Exp: now.Add(jwtLifetime).Unix(), Iss: appID})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signed + "." + enc.EncodeToString(sig), nil
}

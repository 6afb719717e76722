package githubtest

import (
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
	"net/http"
	"strconv"
	"strings"
	"time"
)

// InstallationTokenTTL is how long an installation token lives, as on GitHub.
const InstallationTokenTTL = time.Hour

// app is the GitHub App whose JWTs the fake accepts.
type app struct {
	id           int64
	installation int64
	key          *rsa.PublicKey
}

// EnableApp makes the fake accept GitHub App authentication: a JWT signed
// with RS256 by the private key matching publicKeyPEM (a PKIX or PKCS #1
// public key, or the app's private key itself), iss appID, buys an
// installation token for installationID at
// POST /app/installations/{id}/access_tokens; that token is then accepted
// like the static one until it expires.
func (s *Server) EnableApp(appID, installationID int64, publicKeyPEM []byte) {
	s.tb.Helper()
	key, err := parseRSAPublicKey(publicKeyPEM)
	if err != nil {
		s.tb.Fatalf("githubtest: EnableApp: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.app = &app{id: appID, installation: installationID, key: key}
}

// InstallationTokens returns how many installation tokens were issued.
func (s *Server) InstallationTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appIssued
}

// ExpireInstallationTokens makes every installation token issued so far
// expire now: requests with one answer 401 Bad credentials.
func (s *Server) ExpireInstallationTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.appTokens)
}

func parseRSAPublicKey(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "RSA PRIVATE KEY":
		var priv *rsa.PrivateKey
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		if err == nil {
			key = &priv.PublicKey
		}
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if priv, ok := key.(*rsa.PrivateKey); ok {
			key = &priv.PublicKey
		}
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("not an RSA key: %T", key)
	}
	return pub, nil
}

// verify checks an Authorization header holding the app's JWT and returns
// GitHub's complaint, or "" when the JWT is good.
func (a *app) verify(header string, now time.Time) string {
	const undecodable = "A JSON web token could not be decoded"
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return undecodable
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return undecodable
	}
	var head struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat int64           `json:"iat"`
		Exp int64           `json:"exp"`
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || decodeSegment(parts[0], &head) != nil || decodeSegment(parts[1], &claims) != nil {
		return undecodable
	}
	if head.Alg != "RS256" {
		return undecodable
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(a.key, crypto.SHA256, digest[:], sig) != nil {
		return undecodable
	}
	iss := strings.Trim(string(claims.Iss), `"`)
	if iss != strconv.FormatInt(a.id, 10) {
		return "'Issuer' claim ('iss') must be the ID of the GitHub App"
	}
	// GitHub allows a minute of clock drift and JWTs of ten minutes at most.
	switch {
	case claims.Iat == 0 || time.Unix(claims.Iat, 0).After(now.Add(time.Minute)):
		return "'Issued at' claim ('iat') must be an Integer representing a time in the past."
	case claims.Exp == 0 || !time.Unix(claims.Exp, 0).After(now):
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires."
	case time.Unix(claims.Exp, 0).After(now.Add(11 * time.Minute)):
		return "'Expiration time' claim ('exp') is too far in the future."
	}
	return ""
}

func decodeSegment(seg string, v any) error {
	data, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func (s *Server) createInstallationToken(r *http.Request, _ []byte) reply {
	if r.PathValue("id") != strconv.FormatInt(s.app.installation, 10) {
		return notFound()
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	buf := make([]byte, 36)
	if _, err := rand.Read(buf); err != nil {
		return s.internalError(err)
	}
	for i, b := range buf {
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	token := "ghs_" + string(buf)
	expires := time.Now().Add(InstallationTokenTTL).Truncate(time.Second)
	s.appTokens[token] = expires
	s.appIssued++
	return reply{status: http.StatusCreated, body: map[string]any{
		"token":                token,
		"expires_at":           timestamp(expires),
		"permissions":          map[string]string{"contents": "write", "pull_requests": "write", "metadata": "read"},
		"repository_selection": "all",
	}}
}

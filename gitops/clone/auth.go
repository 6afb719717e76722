package clone

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// Auth holds the credentials for the config repository's remote. Values come
// from the environment, never from the config file, and never reach a log.
type Auth struct {
	// Username and Password are used for https remotes. A token alone is sent
	// with the user name "x-access-token", as GitHub expects.
	Username, Password string
	// SSHKeyFile is a private key for ssh remotes; SSHPassphrase decrypts it.
	SSHKeyFile, SSHPassphrase string
	// KnownHostsFile pins the ssh server's host keys. Empty uses the system's
	// known_hosts files.
	KnownHostsFile string
	// Token, when set, gives the password of https remotes instead of
	// Password, asked again before each connection (a GitHub App installation
	// token, which lives an hour: see forge.AppTokens). The user name is
	// Username, or "x-access-token" when that is empty. An error that
	// promote.IsPermanent holds for is final; others are retried like a
	// network failure.
	Token func(ctx context.Context) (string, error)
	// Forget, with Token, is told of a token the git server answered 401
	// to although it should still be good (revoked, clocks apart): the
	// change is then tried once more, with the token Token gives next
	// (forge.AppTokens.Forget). A second refusal is terminal.
	Forget func(token string)

	// handedOut remembers the tokens Token gave, for redaction; copies of an
	// Auth share it. Open sets it.
	handedOut *tokenLog
}

// String describes the credentials without revealing them.
func (a Auth) String() string {
	return fmt.Sprintf("clone.Auth{username set: %t, password set: %t, token source set: %t, ssh key: %q}",
		a.Username != "", a.Password != "", a.Token != nil, a.SSHKeyFile)
}

// withTokenLog returns a with somewhere to remember the tokens it hands out.
func (a Auth) withTokenLog() Auth {
	if a.Token != nil && a.handedOut == nil {
		a.handedOut = &tokenLog{}
	}
	return a
}

// usesToken reports whether connections to ep take their password from Token.
func (a Auth) usesToken(ep *transport.Endpoint) bool {
	return a.Token != nil && (ep.Protocol == "http" || ep.Protocol == "https")
}

// tokenMethod asks Token for the current token and returns it as go-git's
// Basic auth, remembering it so that errors can be cleaned of it.
func (a Auth) tokenMethod(ctx context.Context) (transport.AuthMethod, error) {
	tok, err := a.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("git token: %w", err)
	}
	if tok == "" {
		return nil, errors.New("git token: the token source gave an empty token")
	}
	a.handedOut.add(tok)
	user := a.Username
	if user == "" {
		user = "x-access-token"
	}
	return &githttp.BasicAuth{Username: user, Password: tok}, nil
}

// tokenLog holds the last few tokens handed out: an error may come from a
// connection made with the one before the latest refresh.
type tokenLog struct {
	mu     sync.Mutex
	tokens []string
	last   string // the latest handed out
}

// maxTokensLogged bounds tokenLog; installation tokens expire after an hour,
// so older ones are worthless anyway.
const maxTokensLogged = 4

func (l *tokenLog) add(tok string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = tok
	if slices.Contains(l.tokens, tok) {
		return
	}
	l.tokens = append(l.tokens, tok)
	if len(l.tokens) > maxTokensLogged {
		l.tokens = slices.Delete(l.tokens, 0, len(l.tokens)-maxTokensLogged)
	}
}

func (l *tokenLog) latest() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

func (l *tokenLog) list() []string {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.tokens)
}

// method returns the go-git auth method for an endpoint. When usesToken, it
// is nil: the method then comes from tokenMethod, per connection.
func (a Auth) method(ep *transport.Endpoint) (transport.AuthMethod, error) {
	switch ep.Protocol {
	case "http", "https":
		if a.Token != nil || (a.Username == "" && a.Password == "") {
			return nil, nil
		}
		user := a.Username
		if user == "" {
			user = "x-access-token"
		}
		return &githttp.BasicAuth{Username: user, Password: a.Password}, nil
	case "ssh":
		user := ep.User
		if user == "" {
			user = "git"
		}
		if a.SSHKeyFile == "" {
			agent, err := gitssh.NewSSHAgentAuth(user)
			if err != nil {
				return nil, fmt.Errorf("ssh auth: no gitops.sshKeyFile and no ssh agent: %w", err)
			}
			return agent, nil
		}
		m, err := gitssh.NewPublicKeysFromFile(user, a.SSHKeyFile, a.SSHPassphrase)
		if err != nil {
			return nil, fmt.Errorf("ssh key %s: %w", a.SSHKeyFile, err)
		}
		var files []string
		if a.KnownHostsFile != "" {
			files = append(files, a.KnownHostsFile)
		}
		cb, err := gitssh.NewKnownHostsCallback(files...)
		if err != nil {
			return nil, fmt.Errorf("ssh known hosts: %w", err)
		}
		m.HostKeyCallback = cb
		return m, nil
	default:
		return nil, nil
	}
}

// secrets lists the strings that must never leave the package in an error.
func (a Auth) secrets() []string {
	var s []string
	for _, v := range append([]string{a.Password, a.SSHPassphrase}, a.handedOut.list()...) {
		if len(v) >= 4 {
			s = append(s, v)
		}
	}
	// A server that echoes the request back (an error page, a hook) shows
	// the Basic credentials base64-encoded: redact that form too.
	for _, p := range append([]string{a.Password}, a.handedOut.list()...) {
		if len(p) < 4 {
			continue
		}
		for _, user := range []string{a.Username, "x-access-token"} {
			if user != "" {
				s = append(s, base64.StdEncoding.EncodeToString([]byte(user+":"+p)))
			}
		}
	}
	return s
}

// RedactURL removes any user information from a remote URL.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// redactedError carries an error whose text had credentials removed, keeping
// the chain for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact removes the remote URL's credentials and every configured secret
// from an error's text.
func redact(err error, remote string, a Auth) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	orig := msg
	if u, perr := url.Parse(remote); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "***")
		}
		msg = strings.ReplaceAll(msg, u.User.String()+"@", "")
	}
	for _, s := range a.secrets() {
		msg = strings.ReplaceAll(msg, s, "***")
	}
	if msg == orig {
		return err
	}
	var re *redactedError
	if errors.As(err, &re) {
		return &redactedError{msg: msg, err: re.err}
	}
	return &redactedError{msg: msg, err: err}
}

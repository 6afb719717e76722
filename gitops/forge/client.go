// Package forge promotes through pull requests on GitHub (or GitHub
// Enterprise): it is the promote.Forge, on go-github.
package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/promotebot/promotebot/promote"
)

// callTimeout bounds one API call.
const callTimeout = 20 * time.Second

// Options configure a Client.
type Options struct {
	// Repository is "owner/name" of the config repository.
	Repository string
	// APIURL is the REST API root, ending in "/" (https://api.github.com/).
	APIURL string
	// MergeMethod is merge, squash or rebase.
	MergeMethod string
	// Token authenticates the calls (a token, or a GitHub App's installation
	// token source: see Tokens).
	Token string
	// Tokens, when set, gives the token for each call instead of Token (a
	// GitHub App installation token, refreshed before it expires).
	Tokens func(ctx context.Context) (string, error)
	// Forget, with Tokens, is told of a token GitHub answered 401 to: the
	// call is then made once more with the token Tokens gives next
	// (AppTokens.Forget).
	Forget func(token string)
}

// Client is a promote.Forge on one GitHub repository.
type Client struct {
	api         *gh.Client
	owner, repo string
	method      string
}

var _ promote.Forge = (*Client)(nil)

// New makes a client; it calls nothing yet.
func New(o Options) (*Client, error) {
	owner, repo, err := splitRepository(o.Repository)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(o.APIURL)
	if err != nil || !strings.HasSuffix(base.Path, "/") {
		return nil, fmt.Errorf("github apiURL %q: want a URL ending in /", o.APIURL)
	}
	tokens := o.Tokens
	if tokens == nil {
		static := o.Token
		tokens = func(context.Context) (string, error) { return static, nil }
	}
	var forget func(string)
	if o.Tokens != nil {
		forget = o.Forget
	}
	hc := &http.Client{Timeout: callTimeout, Transport: &tokenTransport{tokens: tokens, forget: forget, next: http.DefaultTransport}}
	api := gh.NewClient(hc)
	api.BaseURL = base
	method := o.MergeMethod
	if method == "" {
		method = "merge"
	}
	return &Client{api: api, owner: owner, repo: repo, method: method}, nil
}

// tokenTransport adds the current token to each request and, when it can
// get another, tries a request GitHub answered 401 once more with a new one.
type tokenTransport struct {
	tokens func(ctx context.Context) (string, error)
	forget func(token string) // nil: the token cannot change
	next   http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := t.tokens(r.Context())
	if err != nil {
		return nil, fmt.Errorf("github token: %w", err)
	}
	resp, err := t.send(r, tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || t.forget == nil || (r.Body != nil && r.GetBody == nil) {
		return resp, err
	}
	t.forget(tok)
	fresh, err := t.tokens(r.Context())
	if err != nil || fresh == tok {
		return resp, nil //nolint:nilerr // no new token: GitHub's 401 is the answer
	}
	if err := resp.Body.Close(); err != nil {
		return nil, fmt.Errorf("github: close refused answer: %w", err)
	}
	return t.send(r, fresh)
}

// send sends a copy of r (with a fresh body) with token.
func (t *tokenTransport) send(r *http.Request, token string) (*http.Response, error) {
	c := r.Clone(r.Context())
	if r.GetBody != nil {
		body, err := r.GetBody()
		if err != nil {
			return nil, fmt.Errorf("github: request body: %w", err)
		}
		c.Body = body
	}
	c.Header.Set("Authorization", "Bearer "+token)
	return t.next.RoundTrip(c)
}

// OpenPR implements promote.Forge: the pull request head already has (open
// or merged, or closed by a person) is returned rather than a second one.
func (c *Client) OpenPR(ctx context.Context, r promote.PRRequest) (promote.PR, error) {
	if pr, ok, err := c.byHead(ctx, r.Head); err != nil || ok {
		return pr, err
	}
	pr, _, err := c.api.PullRequests.Create(ctx, c.owner, c.repo, &gh.NewPullRequest{
		Title: &r.Title, Head: &r.Head, Base: &r.Base, Body: &r.Body,
	})
	if err != nil {
		var er *gh.ErrorResponse
		if errors.As(err, &er) && er.Response.StatusCode == http.StatusUnprocessableEntity && strings.Contains(er.Error(), "already exists") {
			if found, ok, ferr := c.byHead(ctx, r.Head); ferr == nil && ok {
				return found, nil // opened by an earlier attempt meanwhile
			}
		}
		return promote.PR{}, apiError("open pull request", err)
	}
	return toPR(pr), nil
}

// byHead finds the newest pull request from branch head.
func (c *Client) byHead(ctx context.Context, head string) (promote.PR, bool, error) {
	prs, _, err := c.api.PullRequests.List(ctx, c.owner, c.repo, &gh.PullRequestListOptions{
		Head: c.owner + ":" + head, State: "all",
	})
	if err != nil {
		return promote.PR{}, false, apiError("find pull request", err)
	}
	if len(prs) == 0 {
		return promote.PR{}, false, nil
	}
	newest := prs[0]
	for _, p := range prs[1:] {
		if p.GetNumber() > newest.GetNumber() {
			newest = p
		}
	}
	pr, err := c.PR(ctx, newest.GetNumber()) // the list leaves out merged and mergeable
	return pr, err == nil, err
}

// PR implements promote.Forge.
func (c *Client) PR(ctx context.Context, number int) (promote.PR, error) {
	pr, _, err := c.api.PullRequests.Get(ctx, c.owner, c.repo, number)
	if err != nil {
		return promote.PR{}, apiError(fmt.Sprintf("read pull request #%d", number), err)
	}
	return toPR(pr), nil
}

// Merge implements promote.Forge.
func (c *Client) Merge(ctx context.Context, number int, headSHA, title, message string) (string, error) {
	res, _, err := c.api.PullRequests.Merge(ctx, c.owner, c.repo, number, message, &gh.PullRequestOptions{
		CommitTitle: title, SHA: headSHA, MergeMethod: c.method,
	})
	if err == nil {
		return res.GetSHA(), nil
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		switch er.Response.StatusCode {
		case http.StatusConflict:
			return "", fmt.Errorf("merge #%d: %w: %s", number, promote.ErrHeadMoved, er.Message)
		case http.StatusMethodNotAllowed:
			if pr, perr := c.PR(ctx, number); perr == nil && pr.Mergeable == "dirty" {
				return "", fmt.Errorf("merge #%d: %w: conflicts with its base", number, promote.ErrHeadMoved)
			}
			return "", fmt.Errorf("merge #%d: %w: %s", number, promote.ErrNotMergeable, er.Message)
		}
	}
	return "", apiError(fmt.Sprintf("merge #%d", number), err)
}

// Close implements promote.Forge: the pull request is closed and its branch
// deleted; either already done is fine.
func (c *Client) Close(ctx context.Context, number int, branch string) error {
	if number > 0 {
		closed := "closed"
		if _, _, err := c.api.PullRequests.Edit(ctx, c.owner, c.repo, number, &gh.PullRequest{State: &closed}); err != nil {
			return apiError(fmt.Sprintf("close #%d", number), err)
		}
	}
	_, err := c.api.Git.DeleteRef(ctx, c.owner, c.repo, "heads/"+branch)
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil &&
		(er.Response.StatusCode == http.StatusUnprocessableEntity || er.Response.StatusCode == http.StatusNotFound) {
		return nil // gone already
	}
	if err != nil {
		return apiError("delete branch "+branch, err)
	}
	return nil
}

func toPR(p *gh.PullRequest) promote.PR {
	return promote.PR{
		Number: p.GetNumber(), URL: p.GetHTMLURL(), HeadSHA: p.GetHead().GetSHA(),
		Open: p.GetState() == "open", Merged: p.GetMerged() || p.MergedAt != nil, MergeSHA: p.GetMergeCommitSHA(),
		MergedBy: p.GetMergedBy().GetLogin(), Mergeable: p.GetMergeableState(),
	}
}

// apiError turns a go-github failure into the domain's terms where it
// enters: rate limits say when to retry, bad credentials and refusals are
// permanent (promote.Permanent), the rest (5xx, timeouts) is retried.
func apiError(what string, err error) error {
	var rl *gh.RateLimitError
	if errors.As(err, &rl) {
		return &promote.RetryAfterError{After: max(time.Until(rl.Rate.Reset.Time), time.Second), Err: fmt.Errorf("github %s: %w", what, err)}
	}
	var ab *gh.AbuseRateLimitError
	if errors.As(err, &ab) {
		after := time.Minute
		if ab.RetryAfter != nil {
			after = max(*ab.RetryAfter, time.Second)
		}
		return &promote.RetryAfterError{After: after, Err: fmt.Errorf("github %s: %w", what, err)}
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		switch code := er.Response.StatusCode; {
		case code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusNotFound,
			code == http.StatusUnprocessableEntity:
			return promote.Permanent(fmt.Errorf("github %s: %d %s: %w", what, code, er.Message, err))
		}
	}
	return fmt.Errorf("github %s: %w", what, err)
}

package githubtest

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// PR is a pull request as the fake holds it.
type PR struct {
	Number  int
	Head    string // branch
	Base    string // branch
	HeadSHA string // the head branch's commit (its last one once closed)
	Title   string
	Body    string
	State   string // "open" or "closed"
	Merged  bool
	// MergeSHA is the commit the merge left the base branch at.
	MergeSHA string
	// MergedBy is the login that merged: BotLogin through the API.
	MergedBy string
	// MergeMethod, CommitTitle and CommitMessage are what the merge used,
	// GitHub's defaults filled in.
	MergeMethod   string
	CommitTitle   string
	CommitMessage string
}

// pullRequest is a PR with what only the fake sees.
type pullRequest struct {
	PR
	id        int64
	mergeable string // what SetMergeable set; "" is clean
	created   time.Time
	updated   time.Time
	closed    time.Time
	merged    time.Time
}

// PRs returns every pull request, in the order they were opened.
func (s *Server) PRs() []PR {
	s.mu.Lock()
	defer s.mu.Unlock()
	prs := make([]PR, 0, len(s.prs))
	for _, p := range s.prs {
		if err := s.refresh(p); err != nil {
			s.tb.Errorf("githubtest: %v", err)
		}
		prs = append(prs, p.PR)
	}
	return prs
}

// SetMergeable sets what GitHub computes for pull request number:
// "clean" (the default), "blocked", "behind", "unstable", "dirty" or
// "unknown" (mergeable null, as while GitHub computes it). A merge of a
// blocked or behind pull request answers 405 for a missing required status
// check; of a dirty one, 405 not mergeable. A real conflict with the base
// branch is always dirty.
func (s *Server) SetMergeable(number int, state string) {
	s.tb.Helper()
	switch state {
	case "clean", "blocked", "behind", "unstable", "dirty", "unknown":
	default:
		s.tb.Fatalf("githubtest: SetMergeable: unknown state %q", state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.find(number)
	if p == nil {
		s.tb.Fatalf("githubtest: SetMergeable: no pull request #%d", number)
		return
	}
	p.mergeable = state
}

// MergeByHand merges pull request number as user would on github.com: a
// merge commit with GitHub's default message, whatever the checks say.
func (s *Server) MergeByHand(number int, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.find(number)
	if p == nil {
		return fmt.Errorf("no pull request #%d", number)
	}
	if err := s.refresh(p); err != nil {
		return err
	}
	if p.State != "open" {
		return fmt.Errorf("pull request #%d is %s", number, p.State)
	}
	_, err := s.merge(p, "merge", "", nil, user)
	return err
}

// CloseByHand closes pull request number without merging it.
func (s *Server) CloseByHand(number int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.find(number)
	if p == nil {
		return fmt.Errorf("no pull request #%d", number)
	}
	if p.State != "open" {
		return fmt.Errorf("pull request #%d is %s", number, p.State)
	}
	if err := s.refresh(p); err != nil {
		return err
	}
	s.close(p)
	return nil
}

func (s *Server) find(number int) *pullRequest {
	for _, p := range s.prs {
		if p.Number == number {
			return p
		}
	}
	return nil
}

// pathPull is the pull request the URL names.
func (s *Server) pathPull(r *http.Request) *pullRequest {
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil {
		return nil
	}
	return s.find(n)
}

// refresh re-reads an open pull request's head from its branch: a push or a
// force-push moves it.
func (s *Server) refresh(p *pullRequest) error {
	if p.State != "open" {
		return nil
	}
	sha, ok, err := s.git.branch(p.Head)
	if err != nil {
		return err
	}
	if ok {
		p.HeadSHA = sha
	}
	return nil
}

func (s *Server) close(p *pullRequest) {
	now := time.Now()
	p.State, p.closed, p.updated = "closed", now, now
}

// headBranch reads "branch" or "owner:branch"; false for another owner's.
func (s *Server) headBranch(head string) (string, bool) {
	owner, branch, ok := strings.Cut(head, ":")
	if !ok {
		return head, true
	}
	return branch, strings.EqualFold(owner, s.owner)
}

func (s *Server) createPull(_ *http.Request, body []byte) reply {
	var req struct {
		Title string `json:"title"`
		Head  string `json:"head"`
		Base  string `json:"base"`
		Body  string `json:"body"`
		Draft bool   `json:"draft"`
	}
	if !decode(body, &req) {
		return problemsParsingJSON()
	}
	head, ours := s.headBranch(req.Head)
	headSHA, ok, err := s.git.branch(head)
	if err != nil {
		return s.internalError(err)
	}
	if !ours || !ok {
		return validationFailed(errorDetails{Resource: "PullRequest", Field: "head", Code: "invalid"})
	}
	baseSHA, ok, err := s.git.branch(req.Base)
	if err != nil {
		return s.internalError(err)
	}
	if !ok {
		return validationFailed(errorDetails{Resource: "PullRequest", Field: "base", Code: "invalid"})
	}
	if req.Title == "" {
		return validationFailed(errorDetails{Resource: "PullRequest", Field: "title", Code: "missing_field"})
	}
	for _, p := range s.prs {
		if p.State == "open" && p.Head == head {
			return validationFailed(errorDetails{Resource: "PullRequest", Code: "custom",
				Message: fmt.Sprintf("A pull request already exists for %s:%s.", s.owner, head)})
		}
	}
	if n, err := s.git.ahead(baseSHA, headSHA); err != nil {
		return s.internalError(err)
	} else if n == 0 {
		return validationFailed(errorDetails{Resource: "PullRequest", Code: "custom",
			Message: fmt.Sprintf("No commits between %s and %s", req.Base, head)})
	}
	now := time.Now()
	s.nextPullID++
	p := &pullRequest{
		PR: PR{Number: len(s.prs) + 1, Head: head, Base: req.Base, HeadSHA: headSHA,
			Title: req.Title, Body: req.Body, State: "open"},
		id: 1000 + s.nextPullID, created: now, updated: now,
	}
	s.prs = append(s.prs, p)
	// GitHub computes mergeability in the background: the creation's answer
	// says "unknown".
	out := s.detail(p)
	out.Mergeable, out.MergeableState = nil, "unknown"
	return reply{status: http.StatusCreated, body: out,
		header: map[string]string{"Location": out.URL}}
}

func (s *Server) listPulls(r *http.Request, _ []byte) reply {
	q := r.URL.Query()
	state := q.Get("state")
	switch state {
	case "":
		state = "open"
	case "open", "closed", "all":
	default:
		return validationFailed(errorDetails{Resource: "PullRequest", Field: "state", Code: "invalid"})
	}
	// GitHub ignores a head filter without an owner.
	headOwner, headBranch, byHead := strings.Cut(q.Get("head"), ":")
	base := q.Get("base")
	out := []pullJSON{}
	for i := len(s.prs) - 1; i >= 0; i-- { // newest first
		p := s.prs[i]
		if err := s.refresh(p); err != nil {
			return s.internalError(err)
		}
		switch {
		case state != "all" && p.State != state,
			byHead && (!strings.EqualFold(headOwner, s.owner) || headBranch != p.Head),
			base != "" && base != p.Base:
			continue
		}
		out = append(out, s.summary(p))
	}
	return reply{status: http.StatusOK, body: out}
}

func (s *Server) getPull(r *http.Request, _ []byte) reply {
	p := s.pathPull(r)
	if p == nil {
		return notFound()
	}
	if err := s.refresh(p); err != nil {
		return s.internalError(err)
	}
	return reply{status: http.StatusOK, body: s.detail(p)}
}

func (s *Server) editPull(r *http.Request, body []byte) reply {
	p := s.pathPull(r)
	if p == nil {
		return notFound()
	}
	var req struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
		State *string `json:"state"`
		Base  *string `json:"base"`
	}
	if !decode(body, &req) {
		return problemsParsingJSON()
	}
	if err := s.refresh(p); err != nil {
		return s.internalError(err)
	}
	if req.State != nil && *req.State != "open" && *req.State != "closed" {
		return validationFailed(errorDetails{Resource: "PullRequest", Field: "state", Code: "invalid"})
	}
	if req.Base != nil {
		if _, ok, err := s.git.branch(*req.Base); err != nil {
			return s.internalError(err)
		} else if !ok {
			return validationFailed(errorDetails{Resource: "PullRequest", Field: "base", Code: "invalid"})
		}
		p.Base = *req.Base
	}
	if req.Title != nil {
		p.Title = *req.Title
	}
	if req.Body != nil {
		p.Body = *req.Body
	}
	if req.State != nil && *req.State != p.State && !p.Merged {
		if *req.State == "closed" {
			s.close(p)
		} else {
			p.State, p.closed = "open", time.Time{}
		}
	}
	p.updated = time.Now()
	return reply{status: http.StatusOK, body: s.detail(p)}
}

// notMergeable is GitHub's 405 for a pull request it will not merge.
func notMergeable() reply { return fail(http.StatusMethodNotAllowed, "Pull Request is not mergeable") }

func (s *Server) mergePull(r *http.Request, body []byte) reply {
	p := s.pathPull(r)
	if p == nil {
		return notFound()
	}
	var req struct {
		CommitTitle   string  `json:"commit_title"`
		CommitMessage *string `json:"commit_message"`
		SHA           string  `json:"sha"`
		MergeMethod   string  `json:"merge_method"`
	}
	if !decode(body, &req) {
		return problemsParsingJSON()
	}
	switch req.MergeMethod {
	case "":
		req.MergeMethod = "merge"
	case "merge", "squash", "rebase":
	default:
		return validationFailed(errorDetails{Resource: "PullRequest", Field: "merge_method", Code: "invalid"})
	}
	if err := s.refresh(p); err != nil {
		return s.internalError(err)
	}
	if p.State != "open" {
		return notMergeable()
	}
	if req.SHA != "" && req.SHA != p.HeadSHA {
		return fail(http.StatusConflict, "Head branch was modified. Review and try the merge again.")
	}
	switch p.mergeable {
	case "blocked", "behind":
		return fail(http.StatusMethodNotAllowed, `Required status check "ci" is expected.`)
	case "dirty":
		return notMergeable()
	}
	sha, err := s.merge(p, req.MergeMethod, req.CommitTitle, req.CommitMessage, BotLogin)
	switch {
	case errors.Is(err, errConflict) && req.MergeMethod == "rebase":
		return fail(http.StatusMethodNotAllowed, "This branch can't be rebased")
	case errors.Is(err, errConflict):
		return notMergeable()
	case err != nil:
		return s.internalError(err)
	}
	return reply{status: http.StatusOK, body: map[string]any{
		"sha": sha, "merged": true, "message": "Pull Request successfully merged",
	}}
}

// merge merges p into its base branch in the bare repository with method,
// GitHub's default title and message standing in for empty ones, records it
// and returns the base branch's new commit.
func (s *Server) merge(p *pullRequest, method, title string, msg *string, user string) (string, error) {
	for range 5 {
		base, ok, err := s.git.branch(p.Base)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("merge #%d: base branch %s does not exist", p.Number, p.Base)
		}
		subject, body, err := s.mergeMessage(p, method, base, title, msg)
		if err != nil {
			return "", err
		}
		full := subject
		if body != "" {
			full += "\n\n" + body
		}
		var next string
		if method == "rebase" {
			next, err = s.git.rebase(base, p.HeadSHA)
		} else {
			var tree string
			if tree, err = s.git.mergeTree(base, p.HeadSHA); err != nil {
				return "", err
			}
			parents := []string{base, p.HeadSHA}
			if method == "squash" {
				parents = parents[:1]
			}
			next, err = s.git.commitTree(tree, parents, full, userIdentity(user))
		}
		if err != nil {
			return "", err
		}
		if err := s.git.updateBranch(p.Base, next, base); err != nil {
			// Someone pushed to the base branch meanwhile: merge again.
			if now, _, rerr := s.git.branch(p.Base); rerr == nil && now != base {
				continue
			}
			return "", err
		}
		now := time.Now()
		p.State, p.Merged, p.MergeSHA, p.MergedBy = "closed", true, next, user
		p.MergeMethod, p.CommitTitle, p.CommitMessage = method, subject, body
		p.closed, p.merged, p.updated = now, now, now
		return next, nil
	}
	return "", fmt.Errorf("merge #%d: base branch %s keeps moving", p.Number, p.Base)
}

// mergeMessage returns the title and body of the merge's commit, with
// GitHub's defaults for the missing ones. A rebase keeps the commits'
// messages: GitHub ignores the title and message then.
func (s *Server) mergeMessage(p *pullRequest, method, base, title string, msg *string) (string, string, error) {
	if method == "rebase" {
		return "", "", nil
	}
	body := ""
	if msg != nil {
		body = *msg
	}
	switch method {
	case "squash":
		if title == "" {
			title = fmt.Sprintf("%s (#%d)", p.Title, p.Number)
		}
		if msg == nil {
			subjects, err := s.git.subjects(base, p.HeadSHA)
			if err != nil {
				return "", "", err
			}
			for i, sub := range subjects {
				subjects[i] = "* " + sub
			}
			body = strings.Join(subjects, "\n\n")
		}
	default:
		if title == "" {
			title = fmt.Sprintf("Merge pull request #%d from %s/%s", p.Number, s.owner, p.Head)
		}
		if msg == nil {
			body = p.Title
		}
	}
	return title, body, nil
}

package githubtest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// userJSON is GitHub's simple user.
type userJSON struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Type  string `json:"type"`
}

// repoJSON is the repository in a pull request's head and base.
type repoJSON struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	FullName string   `json:"full_name"`
	Owner    userJSON `json:"owner"`
	HTMLURL  string   `json:"html_url"`
	URL      string   `json:"url"`
}

// branchJSON is a pull request's head or base.
type branchJSON struct {
	Label string   `json:"label"`
	Ref   string   `json:"ref"`
	SHA   string   `json:"sha"`
	User  userJSON `json:"user"`
	Repo  repoJSON `json:"repo"`
}

// pullJSON is a pull request as GitHub lists it.
type pullJSON struct {
	URL            string     `json:"url"`
	ID             int64      `json:"id"`
	NodeID         string     `json:"node_id"`
	HTMLURL        string     `json:"html_url"`
	Number         int        `json:"number"`
	State          string     `json:"state"`
	Locked         bool       `json:"locked"`
	Title          string     `json:"title"`
	User           userJSON   `json:"user"`
	Body           *string    `json:"body"`
	CreatedAt      string     `json:"created_at"`
	UpdatedAt      string     `json:"updated_at"`
	ClosedAt       *string    `json:"closed_at"`
	MergedAt       *string    `json:"merged_at"`
	MergeCommitSHA *string    `json:"merge_commit_sha"`
	Head           branchJSON `json:"head"`
	Base           branchJSON `json:"base"`
	Draft          bool       `json:"draft"`
}

// pullDetailJSON is a single pull request: the listed fields and the merge
// state, which GitHub's list leaves out.
type pullDetailJSON struct {
	pullJSON
	Merged         bool      `json:"merged"`
	Mergeable      *bool     `json:"mergeable"`
	MergeableState string    `json:"mergeable_state"`
	MergedBy       *userJSON `json:"merged_by"`
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func optionalTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	ts := timestamp(t)
	return &ts
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Server) user(login string) userJSON {
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return userJSON{Login: login, ID: int64(len(login)) * 1000, Type: typ}
}

func (s *Server) branchJSON(branch, sha string) branchJSON {
	owner := s.user(s.owner)
	owner.Type = "Organization"
	return branchJSON{
		Label: s.owner + ":" + branch, Ref: branch, SHA: sha, User: owner,
		Repo: repoJSON{
			ID: 42, Name: s.repo, FullName: s.owner + "/" + s.repo, Owner: owner,
			HTMLURL: fmt.Sprintf("https://github.example.com/%s/%s", s.owner, s.repo),
			URL:     fmt.Sprintf("%srepos/%s/%s", s.URL, s.owner, s.repo),
		},
	}
}

// summary is p as GitHub lists it.
func (s *Server) summary(p *pullRequest) pullJSON {
	baseSHA, _, err := s.git.branch(p.Base)
	if err != nil {
		s.tb.Errorf("githubtest: %v", err)
	}
	return pullJSON{
		URL:            fmt.Sprintf("%srepos/%s/%s/pulls/%d", s.URL, s.owner, s.repo, p.Number),
		ID:             p.id,
		NodeID:         fmt.Sprintf("PR_githubtest%d", p.id),
		HTMLURL:        fmt.Sprintf("https://github.example.com/%s/%s/pull/%d", s.owner, s.repo, p.Number),
		Number:         p.Number,
		State:          p.State,
		Title:          p.Title,
		User:           s.user(BotLogin),
		Body:           optional(p.Body),
		CreatedAt:      timestamp(p.created),
		UpdatedAt:      timestamp(p.updated),
		ClosedAt:       optionalTime(p.closed),
		MergedAt:       optionalTime(p.merged),
		MergeCommitSHA: optional(p.MergeSHA),
		Head:           s.branchJSON(p.Head, p.HeadSHA),
		Base:           s.branchJSON(p.Base, baseSHA),
	}
}

// detail is p as GitHub answers for one pull request.
func (s *Server) detail(p *pullRequest) pullDetailJSON {
	out := pullDetailJSON{pullJSON: s.summary(p), Merged: p.Merged}
	if p.MergedBy != "" {
		by := s.user(p.MergedBy)
		out.MergedBy = &by
	}
	out.Mergeable, out.MergeableState = s.mergeability(p)
	return out
}

// mergeability is what GitHub reports as mergeable and mergeable_state.
func (s *Server) mergeability(p *pullRequest) (*bool, string) {
	yes, no := true, false
	if p.State != "open" || p.mergeable == "unknown" {
		return nil, "unknown"
	}
	base, ok, err := s.git.branch(p.Base)
	if err != nil {
		s.tb.Errorf("githubtest: %v", err)
	}
	if ok {
		_, err := s.git.mergeTree(base, p.HeadSHA)
		if errors.Is(err, errConflict) {
			return &no, "dirty"
		}
		if err != nil {
			s.tb.Errorf("githubtest: %v", err)
		}
	}
	switch p.mergeable {
	case "":
		return &yes, "clean"
	case "dirty":
		return &no, "dirty"
	default:
		return &yes, p.mergeable
	}
}

// refJSON is a git reference.
type refJSON struct {
	Ref    string `json:"ref"`
	NodeID string `json:"node_id"`
	URL    string `json:"url"`
	Object struct {
		SHA  string `json:"sha"`
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"object"`
}

func (s *Server) getRef(r *http.Request, _ []byte) reply {
	ref := "refs/" + r.PathValue("ref")
	sha, ok, err := s.git.resolve(ref)
	if err != nil {
		return s.internalError(err)
	}
	if !ok {
		return notFound()
	}
	typ, err := s.git.objectType(sha)
	if err != nil {
		return s.internalError(err)
	}
	var out refJSON
	out.Ref, out.NodeID = ref, "REF_githubtest_"+ref
	out.URL = fmt.Sprintf("%srepos/%s/%s/git/%s", s.URL, s.owner, s.repo, ref)
	out.Object.SHA, out.Object.Type = sha, typ
	out.Object.URL = fmt.Sprintf("%srepos/%s/%s/git/%ss/%s", s.URL, s.owner, s.repo, typ, sha)
	return reply{status: http.StatusOK, body: out}
}

// deleteRef deletes a branch; like GitHub, it closes the open pull requests
// whose head it was.
func (s *Server) deleteRef(r *http.Request, _ []byte) reply {
	branch, isBranch := strings.CutPrefix(r.PathValue("ref"), "heads/")
	sha, ok, err := s.git.branch(branch)
	if err != nil {
		return s.internalError(err)
	}
	if !isBranch || !ok {
		return fail(http.StatusUnprocessableEntity, "Reference does not exist")
	}
	if err := s.git.deleteBranch(branch, sha); err != nil {
		return s.internalError(err)
	}
	for _, p := range s.prs {
		if p.State == "open" && p.Head == branch {
			p.HeadSHA = sha
			s.close(p)
		}
	}
	return reply{status: http.StatusNoContent}
}

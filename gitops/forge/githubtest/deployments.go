package githubtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Deployment is a deployment as the fake holds it.
type Deployment struct {
	ID int64
	// Repository is "owner/name".
	Repository  string
	Ref         string // as asked
	SHA         string // the commit Ref resolved to
	Task        string
	Environment string
	Description string
	// Payload is the payload's JSON ("{}" when none was sent).
	Payload    string
	Transient  bool
	Production bool
	// AutoMerge and RequiredContexts are as the request sent them; nil
	// when it left them out (GitHub then merges the default branch in,
	// and requires every status check of the commit).
	AutoMerge        *bool
	RequiredContexts []string
	// Statuses are the statuses posted, oldest first; those auto_inactive
	// added included.
	Statuses []DeploymentStatus
}

// DeploymentStatus is a status of a Deployment.
type DeploymentStatus struct {
	ID             int64
	State          string
	EnvironmentURL string
	LogURL         string
	Description    string
	// AutoInactive is as the request sent it; nil when it left it out
	// (GitHub's default: true).
	AutoInactive *bool
	// ByAutoInactive marks a status GitHub added itself: a later
	// deployment to the same environment succeeded with auto_inactive.
	ByAutoInactive bool
}

// deploymentStates are the states GitHub accepts for a status.
var deploymentStates = []string{"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}

// maxDescription is GitHub's limit on a deployment's or a status's
// description, in characters.
const maxDescription = 140

// repository is a repository whose deployments the fake serves.
type repository struct {
	owner, name string
	git         bareRepo
}

func (r *repository) fullName() string { return r.owner + "/" + r.name }

// deployment is a Deployment with what only the fake sees.
type deployment struct {
	Deployment
	repo    *repository
	created time.Time
	updated time.Time
}

// AddRepository makes the fake serve the deployments of owner/name too (a
// project's source repository), backed by the bare repository bare, in
// which a deployment's ref is resolved. Pull requests stay the config
// repository's.
func (s *Server) AddRepository(owner, name, bare string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[strings.ToLower(owner+"/"+name)] = &repository{owner: owner, name: name,
		git: bareRepo{dir: bare, scratch: s.tb.TempDir()}}
}

// Deployments returns the deployments of repo ("owner/name"), in the order
// they were created.
func (s *Server) Deployments(repo string) []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Deployment
	for _, d := range s.deployments {
		if strings.EqualFold(d.repo.fullName(), repo) {
			c := d.Deployment
			c.Statuses = slices.Clone(d.Statuses)
			out = append(out, c)
		}
	}
	return out
}

// pathRepository is the repository the URL names, nil for one the fake
// does not serve.
func (s *Server) pathRepository(r *http.Request) *repository {
	return s.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))]
}

// resolveCommit is the commit ref (a branch, a tag or a commit) names in
// repo, as GitHub resolves a deployment's ref; false when there is none.
func (repo *repository) resolveCommit(ref string) (string, bool, error) {
	if ref == "" || strings.HasPrefix(ref, "-") {
		return "", false, nil
	}
	for _, full := range []string{"refs/heads/" + ref, "refs/tags/" + ref, ref} {
		sha, ok, err := repo.git.resolve(full + "^{commit}")
		if err != nil || ok {
			return sha, ok, err
		}
	}
	return "", false, nil
}

// invalidRequest is GitHub's answer to a body its schema refuses.
func invalidRequest(detail string) reply {
	return fail(http.StatusUnprocessableEntity, "Invalid request.\n\n"+detail)
}

func (s *Server) createDeployment(r *http.Request, body []byte) reply {
	repo := s.pathRepository(r)
	var req struct {
		Ref                   *string         `json:"ref"`
		Task                  *string         `json:"task"`
		AutoMerge             *bool           `json:"auto_merge"`
		RequiredContexts      *[]string       `json:"required_contexts"`
		Payload               json.RawMessage `json:"payload"`
		Environment           *string         `json:"environment"`
		Description           *string         `json:"description"`
		TransientEnvironment  *bool           `json:"transient_environment"`
		ProductionEnvironment *bool           `json:"production_environment"`
	}
	if !decode(body, &req) {
		return problemsParsingJSON()
	}
	if req.Ref == nil {
		return invalidRequest(`"ref" wasn't supplied.`)
	}
	sha, ok, err := repo.resolveCommit(*req.Ref)
	if err != nil {
		return s.internalError(err)
	}
	if !ok {
		return fail(http.StatusUnprocessableEntity, "No ref found for: "+*req.Ref)
	}
	d := &deployment{repo: repo, Deployment: Deployment{Repository: repo.fullName(), Ref: *req.Ref, SHA: sha,
		Task: value(req.Task, "deploy"), Environment: value(req.Environment, "production"),
		Description: value(req.Description, ""), Payload: "{}", AutoMerge: req.AutoMerge}}
	if utf8.RuneCountInString(d.Description) > maxDescription {
		return validationFailed(errorDetails{Resource: "Deployment", Field: "description", Code: "custom",
			Message: fmt.Sprintf("description is too long (maximum is %d characters)", maxDescription)})
	}
	if req.RequiredContexts != nil {
		d.RequiredContexts = append([]string{}, *req.RequiredContexts...)
	}
	if p := bytes.TrimSpace(req.Payload); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		d.Payload = string(p)
	}
	d.Transient = req.TransientEnvironment != nil && *req.TransientEnvironment
	d.Production = d.Environment == "production"
	if req.ProductionEnvironment != nil {
		d.Production = *req.ProductionEnvironment
	}
	now := time.Now()
	s.nextDeploymentID++
	d.ID, d.created, d.updated = s.nextDeploymentID, now, now
	s.deployments = append(s.deployments, d)
	out := s.deploymentJSON(d)
	return reply{status: http.StatusCreated, body: out, header: map[string]string{"Location": out.URL}}
}

func (s *Server) listDeployments(r *http.Request, _ []byte) reply {
	repo := s.pathRepository(r)
	q := r.URL.Query()
	perPage, page := 30, 1
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		perPage = min(n, 100)
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		page = n
	}
	out := []deploymentJSON{}
	for i := len(s.deployments) - 1; i >= 0; i-- { // newest first
		d := s.deployments[i]
		switch {
		case d.repo != repo,
			q.Has("sha") && q.Get("sha") != d.SHA,
			q.Has("ref") && q.Get("ref") != d.Ref,
			q.Has("task") && q.Get("task") != d.Task,
			q.Has("environment") && q.Get("environment") != d.Environment:
			continue
		}
		out = append(out, s.deploymentJSON(d))
	}
	from := min((page-1)*perPage, len(out))
	return reply{status: http.StatusOK, body: out[from:min(from+perPage, len(out))]}
}

func (s *Server) createDeploymentStatus(r *http.Request, body []byte) reply {
	d := s.pathDeployment(r)
	if d == nil {
		return notFound()
	}
	var req struct {
		State          *string `json:"state"`
		TargetURL      *string `json:"target_url"`
		LogURL         *string `json:"log_url"`
		Description    *string `json:"description"`
		EnvironmentURL *string `json:"environment_url"`
		AutoInactive   *bool   `json:"auto_inactive"`
	}
	if !decode(body, &req) {
		return problemsParsingJSON()
	}
	if req.State == nil {
		return invalidRequest(`"state" wasn't supplied.`)
	}
	if !slices.Contains(deploymentStates, *req.State) {
		return invalidRequest(fmt.Sprintf(`For 'properties/state', %q is not a member of ["%s"].`,
			*req.State, strings.Join(deploymentStates, `", "`)))
	}
	st := DeploymentStatus{State: *req.State, EnvironmentURL: value(req.EnvironmentURL, ""),
		LogURL: value(req.LogURL, value(req.TargetURL, "")), Description: value(req.Description, ""),
		AutoInactive: req.AutoInactive}
	if utf8.RuneCountInString(st.Description) > maxDescription {
		return validationFailed(errorDetails{Resource: "DeploymentStatus", Field: "description", Code: "custom",
			Message: fmt.Sprintf("description is too long (maximum is %d characters)", maxDescription)})
	}
	s.addStatus(d, st)
	if st.State == "success" && (st.AutoInactive == nil || *st.AutoInactive) {
		// GitHub's auto_inactive: earlier successful deployments to the
		// same environment, unless transient or production, go inactive.
		for _, old := range s.deployments {
			if old != d && old.repo == d.repo && old.Environment == d.Environment && !old.Transient && !old.Production &&
				len(old.Statuses) > 0 && old.Statuses[len(old.Statuses)-1].State == "success" {
				s.addStatus(old, DeploymentStatus{State: "inactive", ByAutoInactive: true})
			}
		}
	}
	return reply{status: http.StatusCreated, body: s.statusJSON(d, d.Statuses[len(d.Statuses)-1])}
}

// addStatus appends st to d, giving it the next id.
func (s *Server) addStatus(d *deployment, st DeploymentStatus) {
	s.nextStatusID++
	st.ID = s.nextStatusID
	d.Statuses = append(d.Statuses, st)
	d.updated = time.Now()
}

// pathDeployment is the deployment the URL names in its repository.
func (s *Server) pathDeployment(r *http.Request) *deployment {
	repo := s.pathRepository(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil
	}
	for _, d := range s.deployments {
		if d.ID == id && d.repo == repo {
			return d
		}
	}
	return nil
}

func value[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// deploymentJSON is GitHub's deployment.
type deploymentJSON struct {
	URL                   string          `json:"url"`
	ID                    int64           `json:"id"`
	NodeID                string          `json:"node_id"`
	SHA                   string          `json:"sha"`
	Ref                   string          `json:"ref"`
	Task                  string          `json:"task"`
	Payload               json.RawMessage `json:"payload"`
	OriginalEnvironment   string          `json:"original_environment"`
	Environment           string          `json:"environment"`
	Description           *string         `json:"description"`
	Creator               userJSON        `json:"creator"`
	CreatedAt             string          `json:"created_at"`
	UpdatedAt             string          `json:"updated_at"`
	StatusesURL           string          `json:"statuses_url"`
	RepositoryURL         string          `json:"repository_url"`
	TransientEnvironment  bool            `json:"transient_environment"`
	ProductionEnvironment bool            `json:"production_environment"`
}

// deploymentStatusJSON is GitHub's deployment status.
type deploymentStatusJSON struct {
	URL            string   `json:"url"`
	ID             int64    `json:"id"`
	NodeID         string   `json:"node_id"`
	State          string   `json:"state"`
	Creator        userJSON `json:"creator"`
	Description    string   `json:"description"`
	Environment    string   `json:"environment"`
	TargetURL      string   `json:"target_url"`
	CreatedAt      string   `json:"created_at"`
	UpdatedAt      string   `json:"updated_at"`
	DeploymentURL  string   `json:"deployment_url"`
	RepositoryURL  string   `json:"repository_url"`
	EnvironmentURL string   `json:"environment_url"`
	LogURL         string   `json:"log_url"`
}

func (s *Server) repositoryURL(repo *repository) string {
	return fmt.Sprintf("%srepos/%s/%s", s.URL, repo.owner, repo.name)
}

func (s *Server) deploymentJSON(d *deployment) deploymentJSON {
	url := fmt.Sprintf("%s/deployments/%d", s.repositoryURL(d.repo), d.ID)
	return deploymentJSON{
		URL: url, ID: d.ID, NodeID: fmt.Sprintf("DE_githubtest%d", d.ID), SHA: d.SHA, Ref: d.Ref, Task: d.Task,
		Payload: json.RawMessage(d.Payload), OriginalEnvironment: d.Environment, Environment: d.Environment,
		Description: optional(d.Description), Creator: s.user(BotLogin),
		CreatedAt: timestamp(d.created), UpdatedAt: timestamp(d.updated),
		StatusesURL: url + "/statuses", RepositoryURL: s.repositoryURL(d.repo),
		TransientEnvironment: d.Transient, ProductionEnvironment: d.Production,
	}
}

func (s *Server) statusJSON(d *deployment, st DeploymentStatus) deploymentStatusJSON {
	deploymentURL := fmt.Sprintf("%s/deployments/%d", s.repositoryURL(d.repo), d.ID)
	now := timestamp(time.Now())
	return deploymentStatusJSON{
		URL: fmt.Sprintf("%s/statuses/%d", deploymentURL, st.ID), ID: st.ID,
		NodeID: fmt.Sprintf("DES_githubtest%d", st.ID), State: st.State, Creator: s.user(BotLogin),
		Description: st.Description, Environment: d.Environment, TargetURL: st.LogURL,
		CreatedAt: now, UpdatedAt: now, DeploymentURL: deploymentURL, RepositoryURL: s.repositoryURL(d.repo),
		EnvironmentURL: st.EnvironmentURL, LogURL: st.LogURL,
	}
}

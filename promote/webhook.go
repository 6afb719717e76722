package promote

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256, keyed with
// the webhook secret, of "<timestamp>.<raw body>" when the call carries
// TimestampHeader, else of the raw body alone (the weaker form: it never
// expires, and is not accepted for GET). It is one of the two ways CI
// authenticates; the other is "Authorization: Bearer <secret>".
const SignatureHeader = "X-Promotebot-Signature-256"

// maxBodyBytes bounds a webhook body; the contract (docs/contracts.md)
// answers 413 beyond it.
const maxBodyBytes = 64 << 10

// maxIDBytes bounds the id of GET /v1/builds/{id}; longer ids are unknown
// without asking the store.
const maxIDBytes = 128

// refusal is a request the webhook turns down: the status, the outcome it
// is counted as, a message for the client and, for the log only, the cause.
type refusal struct {
	status  int
	outcome string
	msg     string // shown to the client: never a secret or an internal detail
	cause   error  // logged, never shown
	// extra, when set, is the answer's body, with msg as its "error".
	extra map[string]any
}

func (r *refusal) Error() string { return r.msg }

func refuse(status int, outcome, format string, args ...any) *refusal {
	return &refusal{status: status, outcome: outcome, msg: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *refusal {
	return refuse(http.StatusBadRequest, outcomeInvalid, format, args...)
}

// internal is a failure of the server's own: the client learns only that.
func internal(msg string, cause error) *refusal {
	return &refusal{status: http.StatusInternalServerError, outcome: outcomeError, msg: msg, cause: cause}
}

var errUnauthorized = &refusal{
	status:  http.StatusUnauthorized,
	outcome: outcomeUnauthorized,
	msg: "missing or invalid credentials: send Authorization: Bearer <secret>, or " + TimestampHeader +
		": <Unix seconds> with " + SignatureHeader + ": sha256=<HMAC of \"<timestamp>.<body>\">",
}

// webhook serves CI: it records builds and tells their state. It never does
// the slow work itself; the deploy job it enqueues does.
type webhook struct {
	cfg       *Config
	secret    string
	store     Store
	repo      BuildChecker
	log       *slog.Logger
	metrics   *Metrics
	wake      chan<- struct{}
	tearDowns TearDowns // may be nil
}

// buildAnswer is the answer to a webhook call (docs/contracts.md).
type buildAnswer struct {
	ID          string `json:"id"`
	Environment string `json:"environment"`
	URL         string `json:"url"`
	State       State  `json:"state"`
	// Warnings name what the bot ignored in the call, such as unknown
	// fields; absent when there is nothing to say.
	Warnings []string `json:"warnings,omitempty"`
}

// recorded is what the webhook did with a reported build.
type recorded struct {
	answer  buildAnswer
	project string
	created bool
}

// create serves POST /v1/builds and POST /build-complete: 202 for a new
// build, 200 with the same id for a repeat.
func (h *webhook) create(w http.ResponseWriter, r *http.Request) {
	rec, err := h.record(w, r)
	if err != nil {
		h.metrics.webhookRequest(h.refuse(w, r, err))
		return
	}
	status, outcome := http.StatusAccepted, outcomeAccepted
	if !rec.created {
		status, outcome = http.StatusOK, outcomeDuplicate
	}
	h.metrics.webhookRequest(outcome)
	h.log.Info("webhook", "outcome", outcome, "build", rec.answer.ID, "project", rec.project,
		"state", rec.answer.State, "env", rec.answer.Environment, "warnings", len(rec.answer.Warnings))
	writeJSON(w, status, rec.answer)
}

// record verifies the call on its raw body, decodes and validates the build,
// and stores it with its deploy job.
func (h *webhook) record(w http.ResponseWriter, r *http.Request) (recorded, error) {
	// The route's gate has authenticated the call (h.gate).
	body, err := readBody(w, r)
	if err != nil {
		return recorded{}, err
	}
	req, warnings, err := decodeBuildRequest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return recorded{}, err
	}
	if err := req.validate(); err != nil {
		return recorded{}, err
	}
	if err := req.checkLinks(h.cfg.CI); err != nil {
		return recorded{}, err
	}
	p, ok := h.cfg.Project(req.Project)
	if !ok {
		return recorded{}, refuse(http.StatusNotFound, outcomeUnknownProject,
			"unknown project %q; known projects: %s", req.Project, projectIDs(h.cfg.Projects))
	}
	kind := Kind(req.Type)
	env, qaURL, err := h.repo.Check(p, kind, req.Target, req.Image)
	switch {
	case errors.Is(err, ErrInvalid):
		return recorded{}, invalid("%s (project %s takes a target that is a valid git %s name and an image of %s with a :tag or an @sha256: digest)",
			err, p.ID, kind, p.Image)
	case err != nil:
		return recorded{}, internal("could not check the build; the server log has the details",
			fmt.Errorf("check %s %s %s: %w", p.ID, kind, req.Target, err))
	}
	env, qaURL, err = h.settleEnv(r.Context(), p, kind, req.Target, env, qaURL)
	if err != nil {
		return recorded{}, internal("could not record the build; try again", err)
	}
	builtAt, err := req.builtAt(time.Now())
	if err != nil {
		return recorded{}, err
	}
	b := Build{
		Project: p.ID, Image: req.Image, Kind: kind, Target: req.Target,
		Commit: req.Commit, Author: req.Author, BuildURL: req.BuildURL, BuiltAt: builtAt,
		Environment: env, URL: qaURL,
	}
	rec, err := h.save(r.Context(), p, b)
	rec.answer.Warnings = warnings
	return rec, err
}

// maxListedIdle bounds the environments a 409 lists.
const maxListedIdle = 10

// idleView is one environment a 409 lists.
type idleView struct {
	Environment  string    `json:"environment"`
	Type         Kind      `json:"type"`
	Target       string    `json:"target"`
	Image        string    `json:"image"`
	LastActivity time.Time `json:"lastActivity"`
}

// limitRefusal is the 409 of a build for a new target when the project has
// maxQAEnvironments already: nothing was stored, committed or posted.
func limitRefusal(p Project, limit *EnvLimitError) *refusal {
	idle := make([]idleView, 0, min(len(limit.Idle), maxListedIdle))
	for _, e := range limit.Idle[:min(len(limit.Idle), maxListedIdle)] {
		idle = append(idle, idleView{Environment: e.Name, Type: e.Kind, Target: e.Target, Image: e.Image,
			LastActivity: e.ActiveAt.UTC()})
	}
	ref := refuse(http.StatusConflict, outcomeEnvironmentLimit,
		"project %s has %d QA environments, its limit (projects[].maxQAEnvironments): tear one down "+
			"(DELETE /v1/environments/%s/<type>/<target>, or its Slack button) before a new target can deploy",
		p.ID, limit.Limit, p.ID)
	ref.extra = map[string]any{"limit": limit.Limit, "idle": idle}
	return ref
}

// maxListedProjects bounds the project ids an unknown-project answer lists.
const maxListedProjects = 20

// projectIDs lists the configured project ids for an answer; ids are not
// secrets, and naming them is the quickest way to show a typo.
func projectIDs(projects []Project) string {
	if len(projects) == 0 {
		return "none are configured"
	}
	ids := make([]string, 0, min(len(projects), maxListedProjects))
	for _, p := range projects[:min(len(projects), maxListedProjects)] {
		ids = append(ids, p.ID)
	}
	list := strings.Join(ids, ", ")
	if len(projects) > maxListedProjects {
		list += fmt.Sprintf(", … (%d in all)", len(projects))
	}
	return list
}

// save stores b, as received, with the jobs that deploy it to QA and tell
// Slack (the builds it supersedes are told too), and answers with the
// stored build, whose environment is the one it will be deployed to.
func (h *webhook) save(ctx context.Context, p Project, b Build) (recorded, error) {
	// The store assigns the id, and gives it to the jobs that have no
	// BuildID, in the same transaction (promote/store, and its conformance
	// suite); so the job names no build here, and its RunAt is left to the
	// store's clock.
	// The build's QA environment is recorded with it, within the project's
	// limit, in the same transaction.
	stored, created, superseded, err := h.store.CreateInEnvironment(ctx, b, p.MaxQAEnvironments,
		Job{Kind: JobDeployQA}, Job{Kind: JobNotify, Coalesce: true})
	var limit *EnvLimitError
	if errors.As(err, &limit) {
		return recorded{}, limitRefusal(p, limit)
	}
	if err != nil {
		return recorded{}, internal("could not record the build; try again",
			fmt.Errorf("create build %s %s: %w", b.Project, b.Image, err))
	}
	for _, old := range superseded {
		h.log.Info("superseded", "build", old.ID, "by", stored.ID, "project", old.Project)
	}
	if created {
		if stored, err = h.yieldEnv(ctx, p, stored); err != nil {
			// The build is stored and will be deployed: only its announced
			// name may be the other target's.
			h.log.Warn("second look at the environment", "build", stored.ID, "err", err)
		}
		// Create named the build on its environment; a name the second look
		// changed is told to the environment too.
		if stored.Environment != b.Environment {
			if _, err := h.store.EditEnvironment(ctx, p.ID, stored.Kind, stored.Target, func(e *Environment) error {
				e.Name, e.URL = stored.Environment, stored.URL
				return nil
			}); err != nil {
				h.log.Warn("record the environment's name", "build", stored.ID, "err", err)
			}
		}
		h.wakeWorker()
	}
	ans := buildAnswer{ID: stored.ID, Environment: stored.Environment, URL: stored.URL, State: stored.State}
	return recorded{answer: ans, project: stored.Project, created: created}, nil
}

// wakeWorker tells an idle worker that there is new work, without waiting:
// a worker that is busy, or none at all, finds the job when it next polls.
func (h *webhook) wakeWorker() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// refuse logs and writes the answer to a refused call and returns the
// outcome it counts as.
func (h *webhook) refuse(w http.ResponseWriter, r *http.Request, err error) string {
	var ref *refusal
	if !errors.As(err, &ref) {
		ref = internal("internal error", err)
	}
	attrs := []any{"outcome", ref.outcome, "status", ref.status, "method", r.Method,
		"path", r.URL.Path, "remote", r.RemoteAddr}
	if ref.cause != nil {
		h.log.Error("webhook", append(attrs, "err", redactCredentials(ref.cause.Error()))...)
	} else {
		h.log.Info("webhook", append(attrs, "reason", ref.msg)...)
	}
	if ref.extra != nil {
		body := map[string]any{"error": ref.msg}
		for k, v := range ref.extra {
			body[k] = v
		}
		writeJSON(w, ref.status, body)
		return ref.outcome
	}
	writeError(w, ref.status, ref.msg)
	return ref.outcome
}

// readBody reads at most maxBodyBytes+1 bytes of the body: one more than
// allowed is enough to know the body is too large.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooLarge := refuse(http.StatusRequestEntityTooLarge, outcomeTooLarge,
		"body larger than %d bytes: report only the build's fields", maxBodyBytes)
	if r.ContentLength > maxBodyBytes {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, tooLarge
	case err != nil:
		return nil, invalid("could not read the body")
	}
	return body, nil
}

// gate is the CI routes' Gate: a bearer token proves a call by itself; a
// signature must be well formed, and fresh when it carries a timestamp,
// before the body is read. A GET, which has no body to sign, needs the
// bearer token or a timestamped signature: an HMAC of the empty body alone
// would be a credential that never expires.
func (h *webhook) gate(get bool) Gate {
	limit := int64(maxBodyBytes)
	if get {
		limit = 0
	}
	return Gate{
		MaxBody: limit,
		Headers: func(hd http.Header) (bool, error) { return credentials(hd, h.secret, get, time.Now()) },
		Verify: func(hd http.Header, body []byte) error {
			if !validSignature(hd.Get(SignatureHeader), hd.Get(TimestampHeader), body, h.secret) {
				return errUnauthorized
			}
			return nil
		},
	}
}

// credentials judges a call's headers: true when a bearer token proves it,
// an error when nothing in them can.
func credentials(h http.Header, secret string, get bool, now time.Time) (bool, error) {
	if secret == "" {
		return false, errUnauthorized
	}
	if token, ok := bearerToken(h.Get("Authorization")); ok && equalSecret(token, secret) {
		return true, nil
	}
	sig := h.Get(SignatureHeader)
	if _, ok := signatureMAC(sig); !ok {
		return false, errUnauthorized
	}
	stamp := h.Get(TimestampHeader)
	switch {
	case stamp != "":
		if err := freshTimestamp(stamp, now); err != nil {
			return false, refuse(http.StatusUnauthorized, outcomeUnauthorized, "%s", err.Error())
		}
	case get:
		return false, refuse(http.StatusUnauthorized, outcomeUnauthorized,
			"send Authorization: Bearer <secret>, or %s with %s: sha256=<HMAC of \"<timestamp>.\">", TimestampHeader, SignatureHeader)
	}
	return false, nil
}

func bearerToken(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// equalSecret compares in constant time; hashing first keeps the length of
// the secret from showing either.
func equalSecret(got, secret string) bool {
	g, s := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(g[:], s[:]) == 1
}

// signatureMAC decodes "sha256=<64 hex digits>".
func signatureMAC(header string) ([]byte, bool) {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSum) != 2*sha256.Size {
		return nil, false
	}
	mac, err := hex.DecodeString(hexSum)
	return mac, err == nil
}

// validSignature checks header against the HMAC-SHA256 of body, or of
// "<stamp>.<body>" when the call carries a timestamp.
func validSignature(header, stamp string, body []byte, secret string) bool {
	got, ok := signatureMAC(header)
	if !ok {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	if stamp != "" {
		mac.Write([]byte(stamp + "."))
	}
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// buildView is the answer to GET /v1/builds/{id} (docs/contracts.md).
type buildView struct {
	ID               string         `json:"id"`
	Project          string         `json:"project"`
	Image            string         `json:"image"`
	Type             Kind           `json:"type"`
	Target           string         `json:"target"`
	Environment      string         `json:"environment"`
	URL              string         `json:"url"`
	State            State          `json:"state"`
	QACommit         string         `json:"qaCommit"`
	Approvals        []approvalView `json:"approvals"`
	PullRequest      string         `json:"pullRequest"`
	ProductionCommit string         `json:"productionCommit"`
	Error            string         `json:"error"`
	CreatedAt        time.Time      `json:"createdAt"`
	UpdatedAt        time.Time      `json:"updatedAt"`
	Rollout          rolloutsView   `json:"rollout"`
	Rollback         *Rollback      `json:"rollback,omitempty"`
	History          []stepView     `json:"history"`
}

// rolloutsView is what Argo CD or Flux reported of the build's commits
// (docs/contracts.md, Cluster feedback): absent until committed.
type rolloutsView struct {
	QA         *rolloutView `json:"qa,omitempty"`
	Production *rolloutView `json:"production,omitempty"`
}

type rolloutView struct {
	Status   RolloutStatus `json:"status"`
	Revision string        `json:"revision"`
	Message  string        `json:"message"`
	At       time.Time     `json:"at"`
	Since    time.Time     `json:"since"`
	TimedOut bool          `json:"timedOut"`
}

func newRolloutView(r *Rollout) *rolloutView {
	if r == nil {
		return nil
	}
	return &rolloutView{Status: r.Status, Revision: r.Revision, Message: r.Message,
		At: r.At.UTC(), Since: r.Since.UTC(), TimedOut: r.TimedOut}
}

// stepView is one change of a build's state, oldest first, or one step of
// a rollout (event "rollout", state unchanged, with environment and status).
type stepView struct {
	From        State         `json:"from"`
	To          State         `json:"to"`
	Event       Event         `json:"event"`
	At          time.Time     `json:"at"`
	Environment RolloutEnv    `json:"environment,omitempty"`
	Status      RolloutStatus `json:"status,omitempty"`
	Revision    string        `json:"revision,omitempty"`
	Message     string        `json:"message,omitempty"`
}

// eventRollout marks the steps of a rollout in a build's history.
const eventRollout Event = "rollout"

// withRollouts merges the rollout steps of b into its state history, in
// time order; each takes the state the build was in at the time.
func withRollouts(steps []stepView, b Build) []stepView {
	for _, env := range []RolloutEnv{RolloutQA, RolloutProduction} {
		r := b.Rollout.Of(env)
		if r == nil {
			continue
		}
		for _, st := range r.Steps {
			at := st.At.UTC()
			state := StateReceived
			for _, t := range steps {
				if t.Event != eventRollout && !t.At.After(at) {
					state = t.To
				}
			}
			steps = append(steps, stepView{From: state, To: state, Event: eventRollout, At: at,
				Environment: env, Status: st.Status, Revision: st.Revision, Message: st.Message})
		}
	}
	slices.SortStableFunc(steps, func(a, b stepView) int { return a.At.Compare(b.At) })
	return steps
}

type approvalView struct {
	User    string    `json:"user"`
	Name    string    `json:"name"`
	Verdict Verdict   `json:"verdict"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// get serves GET /v1/builds/{id}, behind h.gate(true): a bearer token, or
// a timestamped signature of the empty body.
func (h *webhook) get(w http.ResponseWriter, r *http.Request) {
	view, err := h.view(r)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

func (h *webhook) view(r *http.Request) (buildView, error) {
	// GET calls are not counted as webhook calls; the outcome is for the log.
	unknown := refuse(http.StatusNotFound, "unknown_build",
		"unknown build: use the id that POST /v1/builds answered")
	id := r.PathValue("id")
	if len(id) > maxIDBytes {
		return buildView{}, unknown
	}
	b, err := h.store.Get(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		return buildView{}, unknown
	case err != nil:
		return buildView{}, internal("could not read the build; try again", fmt.Errorf("get build: %w", err))
	}
	approvals, err := h.store.Approvals(r.Context(), b.ID)
	if err != nil {
		return buildView{}, internal("could not read the build; try again",
			fmt.Errorf("approvals of %s: %w", b.ID, err))
	}
	history, err := h.store.History(r.Context(), b.ID)
	if err != nil {
		return buildView{}, internal("could not read the build; try again",
			fmt.Errorf("history of %s: %w", b.ID, err))
	}
	v := newBuildView(b, approvals)
	v.History = make([]stepView, 0, len(history))
	for _, t := range history {
		v.History = append(v.History, stepView{From: t.From, To: t.To, Event: t.Event, At: t.At.UTC()})
	}
	v.History = withRollouts(v.History, b)
	return v, nil
}

func newBuildView(b Build, approvals []Approval) buildView {
	views := make([]approvalView, 0, len(approvals))
	for _, a := range approvals {
		views = append(views, approvalView{User: a.User, Name: a.Name, Verdict: a.Verdict, Reason: a.Reason, At: a.At.UTC()})
	}
	return buildView{
		ID: b.ID, Project: b.Project, Image: b.Image, Type: b.Kind, Target: b.Target,
		Environment: b.Environment, URL: b.URL, State: b.State, QACommit: b.QACommit,
		Approvals: views, PullRequest: b.PullRequest, ProductionCommit: b.ProductionCommit, Error: b.Error,
		CreatedAt: b.CreatedAt.UTC(), UpdatedAt: b.UpdatedAt.UTC(), History: []stepView{},
		Rollout:  rolloutsView{QA: newRolloutView(b.Rollout.QA), Production: newRolloutView(b.Rollout.Production)},
		Rollback: b.Rollback,
	}
}

// envAnswer is the answer to DELETE /v1/environments/…: the environment and
// whether its removal is under way or done.
type envAnswer struct {
	Environment string `json:"environment"`
	State       string `json:"state"`
}

// deleteEnvironment serves DELETE /v1/environments/{project}/{kind}/{target},
// behind h.gate(true): the environment is marked torn down at once and
// removed from the queue (202); a repeat answers the same; an environment
// that never existed is 404.
func (h *webhook) deleteEnvironment(w http.ResponseWriter, r *http.Request) {
	project, kind, target := r.PathValue("project"), Kind(r.PathValue("kind")), r.PathValue("target")
	p, ok := h.cfg.Project(project)
	if !ok {
		h.refuse(w, r, refuse(http.StatusNotFound, outcomeUnknownProject,
			"unknown project %q; known projects: %s", project, projectIDs(h.cfg.Projects)))
		return
	}
	if kind != KindBranch && kind != KindTag {
		h.refuse(w, r, invalid("kind %q must be branch or tag", kind))
		return
	}
	e, err := h.tearDowns.TearDown(r.Context(), p.ID, kind, target, TeardownByCI)
	switch {
	case errors.Is(err, ErrNotFound):
		h.refuse(w, r, refuse(http.StatusNotFound, "unknown_environment",
			"project %s has no QA environment for %s %q", p.ID, kind, target))
		return
	case err != nil:
		h.refuse(w, r, internal("could not tear the environment down; try again", err))
		return
	}
	state := "tearing-down"
	if e.Removed {
		state = "torn-down"
	}
	h.log.Info("environment teardown", "project", p.ID, "env", e.Name, "state", state)
	writeJSON(w, http.StatusAccepted, envAnswer{Environment: e.Name, State: state})
}

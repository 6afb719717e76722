package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/promotebot/promotebot/promote"
)

const buildColumns = `id, project, image, kind, target, commit_sha, author, build_url,
	state, environment, url, qa_commit, pull_request, production_commit, error_message,
	superseded_by, created_at, updated_at, promoted_by, closed_by, merged_by, rollout, rollback, built_at, deployments`

// activeStates is the SQL list of the states a newer build supersedes,
// as parameters from $5 on (see supersede).
var activeStates, activeArgs = func() (string, []any) {
	var ps []string
	var args []any
	for _, st := range promote.States {
		if st.Active() {
			args = append(args, string(st))
			ps = append(ps, fmt.Sprintf("$%d", 4+len(args)))
		}
	}
	return strings.Join(ps, ", "), args
}()

func scanBuild(row scanner) (promote.Build, error) {
	var b promote.Build
	err := row.Scan(&b.ID, &b.Project, &b.Image, &b.Kind, &b.Target, &b.Commit, &b.Author, &b.BuildURL,
		&b.State, &b.Environment, &b.URL, &b.QACommit, &b.PullRequest, &b.ProductionCommit, &b.Error,
		&b.SupersededBy, timeCol{&b.CreatedAt}, timeCol{&b.UpdatedAt}, &b.PromotedBy, &b.ClosedBy, &b.MergedBy,
		jsonCol[promote.Rollouts]{"rollout", &b.Rollout}, jsonCol[*promote.Rollback]{"rollback", &b.Rollback},
		timeCol{&b.BuiltAt}, jsonCol[promote.BuildDeployments]{"deployments", &b.Deployments})
	if errors.Is(err, sql.ErrNoRows) {
		return promote.Build{}, promote.ErrNotFound
	}
	return b, err
}

// jsonCol scans a column that holds a value as JSON, empty for the zero
// value: the rollout, rollback and deployments records of a build.
type jsonCol[T comparable] struct {
	name string
	v    *T
}

func (c jsonCol[T]) Scan(src any) error {
	var data []byte
	switch src := src.(type) {
	case string:
		data = []byte(src)
	case []byte:
		data = src
	case nil:
	default:
		return fmt.Errorf("%s column: unexpected %T", c.name, src)
	}
	var zero T
	*c.v = zero
	if len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, c.v); err != nil {
		return fmt.Errorf("%s column: %w", c.name, err)
	}
	return nil
}

// jsonValue is what a JSON column holds for v: empty for the zero value.
func jsonValue[T comparable](name string, v T) (string, error) {
	var zero T
	if v == zero {
		return "", nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("%s column: %w", name, err)
	}
	return string(data), nil
}

// recordColumns are the values of b's JSON columns: rollout, rollback and
// deployments.
func recordColumns(b promote.Build) (rollout, rollback, deployments string, err error) {
	if rollout, err = jsonValue("rollout", b.Rollout); err != nil {
		return "", "", "", err
	}
	if rollback, err = jsonValue("rollback", b.Rollback); err != nil {
		return "", "", "", err
	}
	deployments, err = jsonValue("deployments", b.Deployments)
	return rollout, rollback, deployments, err
}

// Create stores b as received with jobs, or returns the build with the same
// Key; see promote.Builds. Jobs without a BuildID get the new build's id.
func (s *db) Create(ctx context.Context, b promote.Build, jobs ...promote.Job) (promote.Build, bool, []promote.Build, error) {
	return s.create(ctx, b, -1, jobs)
}

// CreateInEnvironment is Create that also records b's QA environment, as
// ReserveEnvironment does within limit, in the same transaction: a build
// refused by the limit (*promote.EnvLimitError) is not stored.
func (s *db) CreateInEnvironment(ctx context.Context, b promote.Build, limit int, jobs ...promote.Job) (promote.Build, bool, []promote.Build, error) {
	return s.create(ctx, b, max(limit, 0), jobs)
}

// create is Create; with limit ≥ 0 it reserves the build's environment too.
func (s *db) create(ctx context.Context, b promote.Build, limit int, jobs []promote.Job) (promote.Build, bool, []promote.Build, error) {
	var (
		stored     promote.Build
		created    bool
		superseded []promote.Build
	)
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// Creates for one target take turns, so that of two new builds one
		// always sees, and supersedes, the other; the id and time are taken
		// in turn too, so the newer build is the one created later.
		if err := s.d.lockKey(ctx, tx, "target:"+b.Project+"/"+string(b.Kind)+"/"+b.Target); err != nil {
			return err
		}
		now := s.clock()
		id, err := s.ids.next(now)
		if err != nil {
			return err
		}
		b.ID, b.State, b.SupersededBy = id, promote.StateReceived, ""
		b.CreatedAt, b.UpdatedAt = now, now
		existing, err := s.buildByKey(ctx, tx, b)
		if err == nil {
			stored = existing
			return nil
		}
		if !errors.Is(err, promote.ErrNotFound) {
			return err
		}
		if limit >= 0 {
			e := promote.Environment{Project: b.Project, Kind: b.Kind, Target: b.Target, Name: b.Environment,
				URL: b.URL, BuildID: b.ID, Image: b.Image}
			if _, err := s.reserveIn(ctx, tx, e, limit, now); err != nil {
				return err
			}
		}
		inserted, err := s.insertBuild(ctx, tx, b)
		if err != nil {
			return err
		}
		if !inserted { // a writer that skipped the target lock won the key
			stored, err = s.buildByKey(ctx, tx, b)
			return err
		}
		if superseded, err = s.supersede(ctx, tx, b); err != nil {
			return err
		}
		// The target's environment, when recorded, names its newest build.
		if _, err := tx.ExecContext(ctx, `UPDATE environments SET build_id = $4, name = $5, url = $6, image = $7
			WHERE project = $1 AND kind = $2 AND target = $3`,
			b.Project, string(b.Kind), b.Target, b.ID, b.Environment, b.URL, b.Image); err != nil {
			return fmt.Errorf("environment of %s: %w", b.ID, err)
		}
		if err := s.insertJobs(ctx, tx, b.ID, now, jobs); err != nil {
			return err
		}
		for _, old := range superseded {
			if err := s.insertJobs(ctx, tx, old.ID, now, notifyJobs(jobs)); err != nil {
				return err
			}
		}
		stored, created = b, true
		return nil
	})
	var limitErr *promote.EnvLimitError
	if errors.As(err, &limitErr) {
		return promote.Build{}, false, nil, limitErr
	}
	if err != nil {
		return promote.Build{}, false, nil, fmt.Errorf("create build %s %s: %w", b.Project, b.Image, err)
	}
	return stored, created, superseded, nil
}

// notifyJobs returns the JobNotify jobs of jobs, without their BuildID: a
// superseded build gets them too, so that its messages say so.
func notifyJobs(jobs []promote.Job) []promote.Job {
	var out []promote.Job
	for _, j := range jobs {
		if j.Kind == promote.JobNotify {
			j.BuildID = ""
			out = append(out, j)
		}
	}
	return out
}

func (s *db) buildByKey(ctx context.Context, tx *sql.Tx, b promote.Build) (promote.Build, error) {
	return scanBuild(tx.QueryRowContext(ctx, `SELECT `+buildColumns+` FROM builds
		WHERE project = $1 AND image = $2 AND kind = $3 AND target = $4`,
		b.Project, b.Image, string(b.Kind), b.Target))
}

// insertBuild inserts b; false when a build with its key already exists.
func (s *db) insertBuild(ctx context.Context, tx *sql.Tx, b promote.Build) (bool, error) {
	rollout, rollback, deployments, err := recordColumns(b)
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO builds (`+buildColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)
		ON CONFLICT (project, image, kind, target) DO NOTHING`,
		b.ID, b.Project, b.Image, string(b.Kind), b.Target, b.Commit, b.Author, b.BuildURL,
		string(b.State), b.Environment, b.URL, b.QACommit, b.PullRequest, b.ProductionCommit, b.Error,
		b.SupersededBy, s.d.time(b.CreatedAt), s.d.time(b.UpdatedAt), b.PromotedBy, b.ClosedBy, b.MergedBy, rollout, rollback, s.optTime(b.BuiltAt), deployments)
	if err != nil {
		return false, fmt.Errorf("insert build: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert build: %w", err)
	}
	return n == 1, nil
}

// supersede moves the other active builds of nb's project, kind and target
// to superseded by nb, and returns them as stored.
func (s *db) supersede(ctx context.Context, tx *sql.Tx, nb promote.Build) ([]promote.Build, error) {
	args := append([]any{nb.Project, string(nb.Kind), nb.Target, nb.ID}, activeArgs...)
	rows, err := tx.QueryContext(ctx, `SELECT `+buildColumns+` FROM builds
		WHERE project = $1 AND kind = $2 AND target = $3 AND id <> $4 AND state IN (`+activeStates+`)
		ORDER BY created_at, id`+s.d.forUpdate, args...)
	if err != nil {
		return nil, fmt.Errorf("find builds to supersede: %w", err)
	}
	var olds []promote.Build
	for rows.Next() {
		b, err := scanBuild(rows)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("find builds to supersede: %w", err), rows.Close())
		}
		olds = append(olds, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find builds to supersede: %w", err)
	}
	for i, b := range olds {
		to, err := promote.Next(b.State, promote.EventSupersede)
		if err != nil {
			return nil, fmt.Errorf("supersede %s: %w", b.ID, err)
		}
		from := b.State
		b.State, b.SupersededBy, b.UpdatedAt = to, nb.ID, nb.CreatedAt
		if err := s.updateBuild(ctx, tx, b); err != nil {
			return nil, err
		}
		t := promote.Transition{From: from, To: to, Event: promote.EventSupersede, At: nb.CreatedAt}
		if err := s.insertTransition(ctx, tx, b.ID, t); err != nil {
			return nil, err
		}
		olds[i] = b
	}
	return olds, nil
}

// Get returns the build with id, or promote.ErrNotFound.
func (s *db) Get(ctx context.Context, id string) (promote.Build, error) {
	b, err := scanBuild(s.r.QueryRowContext(ctx, `SELECT `+buildColumns+` FROM builds WHERE id = $1`, id))
	if err != nil {
		return promote.Build{}, fmt.Errorf("get build %s: %w", id, err)
	}
	return b, nil
}

// Apply moves build id by ev under a row lock; see promote.Builds. change
// runs inside the transaction, holding the lock (on SQLite, the database's
// write lock): it must be quick and must not write through the store. It may edit
// every field but the id, the key fields, State and CreatedAt. Jobs without
// a BuildID get id.
func (s *db) Apply(ctx context.Context, id string, ev promote.Event, change func(*promote.Build) error, jobs ...promote.Job) (promote.Build, error) {
	if ev == "" {
		return promote.Build{}, fmt.Errorf("apply to build %s: no event", id)
	}
	return s.move(ctx, id, ev, change, jobs)
}

// Edit changes a build's fields other than its state, and enqueues jobs,
// atomically; see promote.Builds.
func (s *db) Edit(ctx context.Context, id string, change func(*promote.Build) error, jobs ...promote.Job) (promote.Build, error) {
	return s.move(ctx, id, "", change, jobs)
}

// move is Apply, or Edit when ev is empty (the state stays, no transition
// is recorded).
func (s *db) move(ctx context.Context, id string, ev promote.Event, change func(*promote.Build) error, jobs []promote.Job) (promote.Build, error) {
	var out promote.Build
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		b, err := scanBuild(tx.QueryRowContext(ctx,
			`SELECT `+buildColumns+` FROM builds WHERE id = $1`+s.d.forUpdate, id))
		if err != nil {
			return err
		}
		to := b.State
		if ev != "" {
			if to, err = promote.Next(b.State, ev); err != nil {
				return err
			}
		}
		nb := b
		nb.State = to
		if change != nil {
			if err := change(&nb); err != nil {
				return err
			}
		}
		now := s.clock()
		nb.ID, nb.Project, nb.Image, nb.Kind, nb.Target = b.ID, b.Project, b.Image, b.Kind, b.Target
		nb.State, nb.CreatedAt, nb.UpdatedAt = to, b.CreatedAt, now
		if err := s.updateBuild(ctx, tx, nb); err != nil {
			return err
		}
		if ev != "" {
			t := promote.Transition{From: b.State, To: to, Event: ev, At: now}
			if err := s.insertTransition(ctx, tx, id, t); err != nil {
				return err
			}
		}
		if err := s.insertJobs(ctx, tx, id, now, jobs); err != nil {
			return err
		}
		out = nb
		return nil
	})
	if err != nil {
		if ev == "" {
			return promote.Build{}, fmt.Errorf("edit build %s: %w", id, err)
		}
		return promote.Build{}, fmt.Errorf("apply %s to build %s: %w", ev, id, err)
	}
	return out, nil
}

// updateBuild stores b's state and the fields that may change.
func (s *db) updateBuild(ctx context.Context, tx *sql.Tx, b promote.Build) error {
	rollout, rollback, deployments, err := recordColumns(b)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE builds SET commit_sha = $2, author = $3, build_url = $4,
		state = $5, environment = $6, url = $7, qa_commit = $8, pull_request = $9,
		production_commit = $10, error_message = $11, superseded_by = $12, updated_at = $13,
		promoted_by = $14, closed_by = $15, merged_by = $16, rollout = $17, rollback = $18,
		deployments = $19
		WHERE id = $1`,
		b.ID, b.Commit, b.Author, b.BuildURL, string(b.State), b.Environment, b.URL, b.QACommit,
		b.PullRequest, b.ProductionCommit, b.Error, b.SupersededBy, s.d.time(b.UpdatedAt),
		b.PromotedBy, b.ClosedBy, b.MergedBy, rollout, rollback, deployments)
	if err != nil {
		return fmt.Errorf("update build %s: %w", b.ID, err)
	}
	return nil
}

func (s *db) insertTransition(ctx context.Context, tx *sql.Tx, buildID string, t promote.Transition) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO transitions (build_id, from_state, to_state, event, at)
		VALUES ($1, $2, $3, $4, $5)`,
		buildID, string(t.From), string(t.To), string(t.Event), s.d.time(t.At))
	if err != nil {
		return fmt.Errorf("record transition of %s: %w", buildID, err)
	}
	return nil
}

// History returns build id's transitions, oldest first; none for an
// unknown id.
func (s *db) History(ctx context.Context, id string) ([]promote.Transition, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT from_state, to_state, event, at
		FROM transitions WHERE build_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", id, err)
	}
	var ts []promote.Transition
	for rows.Next() {
		var t promote.Transition
		if err := rows.Scan(&t.From, &t.To, &t.Event, timeCol{&t.At}); err != nil {
			return nil, errors.Join(fmt.Errorf("history of %s: %w", id, err), rows.Close())
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of %s: %w", id, err)
	}
	return ts, nil
}

// CountByState counts builds in each state; states without builds are left out.
func (s *db) CountByState(ctx context.Context) (map[promote.State]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state, count(*) FROM builds GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count builds: %w", err)
	}
	defer rows.Close()
	counts := map[promote.State]int{}
	for rows.Next() {
		var st promote.State
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count builds: %w", err)
		}
		counts[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count builds: %w", err)
	}
	return counts, nil
}

// Find lists project's builds in any of states, newest first, at most limit.
func (s *db) Find(ctx context.Context, project string, states []promote.State, limit int) ([]promote.Build, error) {
	if len(states) == 0 || limit <= 0 {
		return nil, nil
	}
	args := []any{project, limit}
	ps := make([]string, len(states))
	for i, st := range states {
		args = append(args, string(st))
		ps[i] = fmt.Sprintf("$%d", i+3)
	}
	return s.findBuilds(ctx, project, `SELECT `+buildColumns+` FROM builds
		WHERE project = $1 AND state IN (`+strings.Join(ps, ", ")+`)
		ORDER BY created_at DESC, id DESC LIMIT $2`, args...)
}

// FindTarget lists the builds of project's kind and target in any of
// states, newest first, at most limit.
func (s *db) FindTarget(ctx context.Context, project string, kind promote.Kind, target string, states []promote.State,
	limit int) ([]promote.Build, error) {
	if len(states) == 0 || limit <= 0 {
		return nil, nil
	}
	args := []any{project, string(kind), target, limit}
	ps := make([]string, len(states))
	for i, st := range states {
		args = append(args, string(st))
		ps[i] = fmt.Sprintf("$%d", i+5)
	}
	return s.findBuilds(ctx, project, `SELECT `+buildColumns+` FROM builds
		WHERE project = $1 AND kind = $2 AND target = $3 AND state IN (`+strings.Join(ps, ", ")+`)
		ORDER BY created_at DESC, id DESC LIMIT $4`, args...)
}

func (s *db) findBuilds(ctx context.Context, project, query string, args ...any) ([]promote.Build, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("find builds of %s: %w", project, err)
	}
	var bs []promote.Build
	for rows.Next() {
		b, err := scanBuild(rows)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("find builds of %s: %w", project, err), rows.Close())
		}
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find builds of %s: %w", project, err)
	}
	return bs, nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/promotebot/promotebot/promote"
)

const envColumns = `project, kind, target, name, url, build_id, image, created_at, active_at,
	warned_at, teardown, torn_down_at, commit_sha, removed`

func scanEnv(row scanner) (promote.Environment, error) {
	var e promote.Environment
	err := row.Scan(&e.Project, &e.Kind, &e.Target, &e.Name, &e.URL, &e.BuildID, &e.Image,
		timeCol{&e.CreatedAt}, timeCol{&e.ActiveAt}, timeCol{&e.WarnedAt}, &e.Teardown,
		timeCol{&e.TornDownAt}, &e.Commit, &e.Removed)
	if errors.Is(err, sql.ErrNoRows) {
		return promote.Environment{}, promote.ErrNotFound
	}
	return e, err
}

// optTime is a time column that may be unset: NULL for the zero time.
func (s *db) optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.time(t)
}

// ReserveEnvironment records e as active at now, within the project's
// limit of live environments; see promote.Environments.
func (s *db) ReserveEnvironment(ctx context.Context, e promote.Environment, limit int, now time.Time) (promote.Environment, error) {
	var out promote.Environment
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		out, err = s.reserveIn(ctx, tx, e, limit, now)
		return err
	})
	if err != nil {
		var limitErr *promote.EnvLimitError
		if errors.As(err, &limitErr) {
			return promote.Environment{}, limitErr
		}
		return promote.Environment{}, fmt.Errorf("reserve environment %s/%s/%s: %w", e.Project, e.Kind, e.Target, err)
	}
	return out, nil
}

// reserveIn is ReserveEnvironment within tx.
func (s *db) reserveIn(ctx context.Context, tx *sql.Tx, e promote.Environment, limit int, now time.Time) (promote.Environment, error) {
	// Reservations of one project take turns, so that two new targets
	// cannot both take the last place.
	if err := s.d.lockKey(ctx, tx, "environments:"+e.Project); err != nil {
		return promote.Environment{}, err
	}
	cur, err := scanEnv(tx.QueryRowContext(ctx, `SELECT `+envColumns+` FROM environments
		WHERE project = $1 AND kind = $2 AND target = $3`+s.d.forUpdate, e.Project, string(e.Kind), e.Target))
	exists := err == nil
	if err != nil && !errors.Is(err, promote.ErrNotFound) {
		return promote.Environment{}, err
	}
	if (!exists || !cur.Live()) && limit > 0 {
		live, err := s.liveEnvs(ctx, tx, e.Project, limit) // the idlest limit of them tell enough
		if err != nil {
			return promote.Environment{}, err
		}
		if len(live) >= limit {
			return promote.Environment{}, &promote.EnvLimitError{Limit: limit, Idle: live}
		}
	}
	e.CreatedAt = now
	if exists && cur.Live() {
		e.CreatedAt = cur.CreatedAt // a torn-down one starts a new life
	}
	e.ActiveAt, e.WarnedAt, e.Teardown, e.TornDownAt, e.Commit, e.Removed = now, time.Time{}, "", time.Time{}, "", false
	if err := s.putEnv(ctx, tx, e); err != nil {
		return promote.Environment{}, err
	}
	e.CreatedAt, e.ActiveAt = dbTime(e.CreatedAt), dbTime(now)
	return e, nil
}

// putEnv inserts or replaces e.
func (s *db) putEnv(ctx context.Context, tx *sql.Tx, e promote.Environment) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO environments (`+envColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (project, kind, target) DO UPDATE SET name = $4, url = $5, build_id = $6, image = $7,
			created_at = $8, active_at = $9, warned_at = $10, teardown = $11, torn_down_at = $12,
			commit_sha = $13, removed = $14`,
		e.Project, string(e.Kind), e.Target, e.Name, e.URL, e.BuildID, e.Image, s.d.time(e.CreatedAt),
		s.d.time(e.ActiveAt), s.optTime(e.WarnedAt), e.Teardown, s.optTime(e.TornDownAt), e.Commit, e.Removed)
	if err != nil {
		return fmt.Errorf("store environment: %w", err)
	}
	return nil
}

func (s *db) liveEnvs(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, project string, limit int) ([]promote.Environment, error) {
	where, args := `teardown = ''`, []any{}
	if project != "" {
		where, args = `project = $1 AND teardown = ''`, []any{project}
	}
	bound := ""
	if limit > 0 {
		args = append(args, limit)
		bound = fmt.Sprintf(" LIMIT $%d", len(args))
	}
	rows, err := q.QueryContext(ctx, `SELECT `+envColumns+` FROM environments WHERE `+where+`
		ORDER BY active_at, project, kind, target`+bound, args...)
	if err != nil {
		return nil, fmt.Errorf("list environments: %w", err)
	}
	var out []promote.Environment
	for rows.Next() {
		e, err := scanEnv(rows)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("list environments: %w", err), rows.Close())
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list environments: %w", err)
	}
	return out, nil
}

// Environment returns one environment, or promote.ErrNotFound.
func (s *db) Environment(ctx context.Context, project string, kind promote.Kind, target string) (promote.Environment, error) {
	e, err := scanEnv(s.r.QueryRowContext(ctx, `SELECT `+envColumns+` FROM environments
		WHERE project = $1 AND kind = $2 AND target = $3`, project, string(kind), target))
	if err != nil {
		return promote.Environment{}, fmt.Errorf("environment %s/%s/%s: %w", project, kind, target, err)
	}
	return e, nil
}

// Environments lists live environments, idle longest first.
func (s *db) Environments(ctx context.Context, project string) ([]promote.Environment, error) {
	return s.liveEnvs(ctx, s.r, project, 0)
}

// FirstEnvironments lists at most limit live environments, idle longest
// first.
func (s *db) FirstEnvironments(ctx context.Context, project string, limit int) ([]promote.Environment, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.liveEnvs(ctx, s.r, project, limit)
}

// CountEnvironments counts live environments by project, from the index
// alone.
func (s *db) CountEnvironments(ctx context.Context, project string) (map[string]int, error) {
	where, args := `teardown = ''`, []any{}
	if project != "" {
		where, args = `project = $1 AND teardown = ''`, []any{project}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT project, count(*) FROM environments WHERE `+where+`
		GROUP BY project`, args...)
	if err != nil {
		return nil, fmt.Errorf("count environments: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var p string
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			return nil, fmt.Errorf("count environments: %w", err)
		}
		counts[p] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count environments: %w", err)
	}
	return counts, nil
}

// EditEnvironment changes an environment under a lock and enqueues jobs;
// see promote.Environments.
func (s *db) EditEnvironment(ctx context.Context, project string, kind promote.Kind, target string,
	change func(*promote.Environment) error, jobs ...promote.Job) (promote.Environment, error) {
	var out promote.Environment
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		e, err := scanEnv(tx.QueryRowContext(ctx, `SELECT `+envColumns+` FROM environments
			WHERE project = $1 AND kind = $2 AND target = $3`+s.d.forUpdate, project, string(kind), target))
		if err != nil {
			return err
		}
		ne := e
		if err := change(&ne); err != nil {
			return err
		}
		ne.Project, ne.Kind, ne.Target = e.Project, e.Kind, e.Target
		if err := s.putEnv(ctx, tx, ne); err != nil {
			return err
		}
		for _, j := range jobs {
			if j.BuildID == "" {
				return errors.New("a job of an environment names its build")
			}
		}
		if err := s.insertJobs(ctx, tx, "", s.clock(), jobs); err != nil {
			return err
		}
		out = ne
		return nil
	})
	if err != nil {
		return promote.Environment{}, fmt.Errorf("edit environment %s/%s/%s: %w", project, kind, target, err)
	}
	return out, nil
}

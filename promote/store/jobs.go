package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/promotebot/promotebot/promote"
)

const jobColumns = `id, kind, build_id, payload, run_at, attempts, last_error`

func scanJob(row scanner) (promote.Job, error) {
	var j promote.Job
	var buildID sql.NullString
	err := row.Scan(&j.ID, &j.Kind, &buildID, &j.Payload, timeCol{&j.RunAt}, &j.Attempts, &j.LastErr)
	if errors.Is(err, sql.ErrNoRows) {
		return promote.Job{}, promote.ErrNotFound
	}
	j.BuildID = buildID.String
	return j, err
}

// insertJobs enqueues jobs in tx; a job without a BuildID is about buildID,
// one without a RunAt is due now.
func (s *db) insertJobs(ctx context.Context, tx *sql.Tx, buildID string, now time.Time, jobs []promote.Job) error {
	for _, j := range jobs {
		if j.Kind == "" {
			return errors.New("enqueue job: no kind")
		}
		if j.BuildID == "" {
			j.BuildID = buildID
		}
		if j.RunAt.IsZero() {
			j.RunAt = now
		}
		if j.Coalesce && j.BuildID != "" {
			// A job of the same kind for the build that has not started yet
			// will see everything this one would: one is enough. The row is
			// locked (PostgreSQL), so that a claim of it cannot commit in
			// between: the job would then start before this transaction
			// commits, read the build without this change, and nothing
			// would run again to show it. A claim that came first makes
			// this wait, then see the job leased, and enqueue a new one.
			var id int64
			err := tx.QueryRowContext(ctx, `SELECT id FROM jobs
				WHERE build_id = $1 AND kind = $2 AND status = 'pending'
					AND (leased_until IS NULL OR leased_until <= $3)
				LIMIT 1`+s.d.forUpdate,
				j.BuildID, string(j.Kind), s.d.time(now)).Scan(&id)
			if err == nil {
				continue
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("enqueue %s job: %w", j.Kind, err)
			}
		}
		var bid any
		if j.BuildID != "" {
			bid = j.BuildID
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, build_id, payload, run_at, attempts, last_error, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			string(j.Kind), bid, j.Payload, s.d.time(dbTime(j.RunAt)), j.Attempts, j.LastErr, s.d.time(now))
		if err != nil {
			return fmt.Errorf("enqueue %s job: %w", j.Kind, err)
		}
	}
	return nil
}

// Claim leases the oldest due job to worker until now+lease; see
// promote.Jobs. Workers should have ids unique to the process (host, pid
// and a random part): a lease is held by a name.
func (s *db) Claim(ctx context.Context, worker string, lease time.Duration, now time.Time) (promote.Job, bool, error) {
	if worker == "" || lease <= 0 {
		return promote.Job{}, false, fmt.Errorf("claim job: want a worker and a positive lease, have %q and %s", worker, lease)
	}
	now = dbTime(now)
	var (
		j  promote.Job
		ok bool
	)
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// Claims take turns (PostgreSQL: an advisory lock; SQLite has one
		// writer), so that the check below sees every lease taken before.
		if err := s.d.lockKey(ctx, tx, "claim"); err != nil {
			return err
		}
		// Jobs of one build and kind run one at a time (two notifications
		// of a build must not both post its first message).
		var err error
		j, err = scanJob(tx.QueryRowContext(ctx, `UPDATE jobs SET leased_by = $1, leased_until = $2
			WHERE id = (SELECT id FROM jobs AS due
				WHERE status = 'pending' AND run_at <= $3 AND (leased_until IS NULL OR leased_until <= $3)
					AND NOT EXISTS (SELECT 1 FROM jobs AS busy
						WHERE busy.build_id = due.build_id AND busy.kind = due.kind AND busy.id <> due.id
							AND busy.status = 'pending' AND busy.leased_until > $3)
				ORDER BY run_at, id LIMIT 1`+s.d.skipLocked+`)
			RETURNING `+jobColumns,
			worker, s.d.time(now.Add(lease)), s.d.time(now)))
		ok = err == nil
		if errors.Is(err, promote.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return promote.Job{}, false, fmt.Errorf("claim job for %s: %w", worker, err)
	}
	return j, ok, nil
}

// Complete ends job id, which worker holds, as done. The row is kept.
func (s *db) Complete(ctx context.Context, id int64, worker string) error {
	return s.endJob(ctx, "complete", id, worker,
		`status = 'done', leased_until = NULL, finished_at = $3`, s.d.time(s.clock()))
}

// Retry releases job id, which worker holds, to run again at at, counting
// the attempt and keeping reason.
func (s *db) Retry(ctx context.Context, id int64, worker string, at time.Time, reason string) error {
	return s.endJob(ctx, "retry", id, worker,
		`run_at = $3, attempts = attempts + 1, last_error = $4, leased_by = NULL, leased_until = NULL`,
		s.d.time(dbTime(at)), reason)
}

// Fail ends job id, which worker holds, for good, counting the attempt and
// keeping reason.
func (s *db) Fail(ctx context.Context, id int64, worker, reason string) error {
	return s.endJob(ctx, "fail", id, worker,
		`status = 'failed', attempts = attempts + 1, last_error = $4, leased_until = NULL, finished_at = $3`,
		s.d.time(s.clock()), reason)
}

// endJob applies set ($3 on are args) to job id if worker holds it;
// otherwise promote.ErrNotFound or promote.ErrLeaseLost. A worker whose
// lease expired still holds the job until another worker claims it.
// Extend moves the end of a held lease to until.
func (s *db) Extend(ctx context.Context, id int64, worker string, until time.Time) error {
	return s.endJob(ctx, "extend", id, worker, `leased_until = $3`, s.d.time(dbTime(until)))
}

// Postpone releases a held job to run again at at without counting an
// attempt (it waits on something else, such as GitHub's checks).
func (s *db) Postpone(ctx context.Context, id int64, worker string, at time.Time, reason string) error {
	return s.endJob(ctx, "postpone", id, worker,
		`run_at = $3, last_error = $4, leased_by = NULL, leased_until = NULL`,
		s.d.time(dbTime(at)), reason)
}

// Hurry makes the waiting jobs of kind for build due now; it reports
// whether there was one.
func (s *db) Hurry(ctx context.Context, buildID string, kind promote.JobKind) (bool, error) {
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.d.time(s.clock())
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET run_at = $3
			WHERE build_id = $1 AND kind = $2 AND status = 'pending' AND run_at > $3
				AND (leased_until IS NULL OR leased_until <= $3)`, buildID, string(kind), now)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("hurry %s jobs of %s: %w", kind, buildID, err)
	}
	return n > 0, nil
}

func (s *db) endJob(ctx context.Context, op string, id int64, worker, set string, args ...any) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET `+set+`
			WHERE id = $1 AND leased_by = $2 AND status = 'pending'`, append([]any{id, worker}, args...)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 1 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM jobs WHERE id = $1`, id).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return promote.ErrNotFound
		case err != nil:
			return err
		}
		return promote.ErrLeaseLost
	})
	if err != nil {
		return fmt.Errorf("%s job %d for %s: %w", op, id, worker, err)
	}
	return nil
}

// Pending counts the jobs not yet completed or failed.
func (s *db) Pending(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE status = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending jobs: %w", err)
	}
	return n, nil
}

// releaseLeases ends every lease at once: the embedded store is one
// process's, so a lease it finds at open is a dead process's.
func (s *db) releaseLeases(ctx context.Context) (int, error) {
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.d.time(s.clock())
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET leased_until = $1
			WHERE status = 'pending' AND leased_until > $1`, now)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release leases: %w", err)
	}
	return int(n), nil
}

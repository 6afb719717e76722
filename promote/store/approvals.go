package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/promotebot/promotebot/promote"
)

// AddApproval records a verdict, once per user and build; see
// promote.Approvals. A zero At is the store's now. An unknown build is
// promote.ErrNotFound.
func (s *db) AddApproval(ctx context.Context, a promote.Approval, jobs ...promote.Job) (bool, error) {
	if a.Verdict != promote.Approve && a.Verdict != promote.Reject {
		return false, fmt.Errorf("add approval by %s on %s: unknown verdict %q", a.User, a.BuildID, a.Verdict)
	}
	if a.At.IsZero() {
		a.At = s.clock()
	}
	var added bool
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM builds WHERE id = $1`, a.BuildID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return promote.ErrNotFound
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO approvals (build_id, user_id, name, verdict, reason, at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (build_id, user_id) DO NOTHING`,
			a.BuildID, a.User, a.Name, string(a.Verdict), a.Reason, s.d.time(a.At))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n != 1 {
			return err
		}
		added = true
		return s.insertJobs(ctx, tx, a.BuildID, s.clock(), jobs)
	})
	if err != nil {
		return false, fmt.Errorf("add approval by %s on %s: %w", a.User, a.BuildID, err)
	}
	return added, nil
}

// Approvals lists the verdicts on build buildID, oldest first; none for an
// unknown build.
func (s *db) Approvals(ctx context.Context, buildID string) ([]promote.Approval, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT build_id, user_id, name, verdict, reason, at
		FROM approvals WHERE build_id = $1 ORDER BY at, id`, buildID)
	if err != nil {
		return nil, fmt.Errorf("approvals of %s: %w", buildID, err)
	}
	var as []promote.Approval
	for rows.Next() {
		var a promote.Approval
		if err := rows.Scan(&a.BuildID, &a.User, &a.Name, &a.Verdict, &a.Reason, timeCol{&a.At}); err != nil {
			return nil, errors.Join(fmt.Errorf("approvals of %s: %w", buildID, err), rows.Close())
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("approvals of %s: %w", buildID, err)
	}
	return as, nil
}

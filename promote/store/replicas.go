package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// forgetReplicas is how long the heartbeat of a replica that stopped is
// kept: long enough for any lease it held to end anyway.
const forgetReplicas = 24 * time.Hour

// Beat records that replica is alive at now; see promote.Replicas.
func (s *db) Beat(ctx context.Context, replica string, now time.Time) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO replicas (name, beat_at) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET beat_at = $2`, replica, s.d.time(dbTime(now)))
		return err
	})
	if err != nil {
		return fmt.Errorf("heartbeat of %s: %w", replica, err)
	}
	return nil
}

// ReleaseDead ends the leases held by replicas whose last heartbeat is
// older than now-grace, and forgets heartbeats a day old; see
// promote.Replicas.
func (s *db) ReleaseDead(ctx context.Context, grace time.Duration, now time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET leased_until = $1
			WHERE status = 'pending' AND leased_until > $1 AND leased_by IS NOT NULL
				AND EXISTS (SELECT 1 FROM replicas AS r WHERE r.beat_at < $2
					AND substr(jobs.leased_by, 1, length(r.name) + 1) = r.name || '/')`,
			s.d.time(dbTime(now)), s.d.time(dbTime(now.Add(-grace))))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM replicas WHERE beat_at < $1`, s.d.time(dbTime(now.Add(-forgetReplicas))))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release the jobs of stopped replicas: %w", err)
	}
	return int(n), nil
}

// Leave forgets replica's heartbeat: it stopped on purpose, having handed
// its jobs back.
func (s *db) Leave(ctx context.Context, replica string) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM replicas WHERE name = $1`, replica)
		return err
	})
	if err != nil {
		return fmt.Errorf("leave %s: %w", replica, err)
	}
	return nil
}

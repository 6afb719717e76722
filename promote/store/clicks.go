package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// FirstClick records the click key as handled at now, once; see
// promote.Clicks. The records past promote.ClickMemory are deleted in the
// same transaction: clicks are people's, few enough that this costs nothing.
func (s *db) FirstClick(ctx context.Context, key string, now time.Time) (bool, error) {
	now = dbTime(now)
	var first bool
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM clicks WHERE at < $1`,
			s.d.time(now.Add(-promote.ClickMemory))); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO clicks (key, at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
			key, s.d.time(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		first = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record click: %w", err)
	}
	return first, nil
}

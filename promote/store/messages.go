package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/promotebot/promotebot/promote"
)

const messageColumns = `build_id, role, recipient, channel, ts, at`

func scanMessage(row scanner) (promote.Message, error) {
	var m promote.Message
	err := row.Scan(&m.BuildID, &m.Role, &m.Recipient, &m.Channel, &m.TS, timeCol{&m.At})
	return m, err
}

// SaveMessage records a posted Slack message, or returns the one already
// recorded for its build, role and recipient; see promote.Messages. A zero
// At is the store's now. An unknown build is promote.ErrNotFound.
func (s *db) SaveMessage(ctx context.Context, m promote.Message) (promote.Message, bool, error) {
	if m.Role == "" || m.Channel == "" || m.TS == "" {
		return promote.Message{}, false, fmt.Errorf("save message of %s: role, channel and ts are required", m.BuildID)
	}
	if m.At.IsZero() {
		m.At = s.clock()
	}
	stored, added := m, false
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM builds WHERE id = $1`, m.BuildID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return promote.ErrNotFound
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO messages (`+messageColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (build_id, role, recipient) DO NOTHING`,
			m.BuildID, string(m.Role), m.Recipient, m.Channel, m.TS, s.d.time(m.At))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 1 {
			added = n == 1
			stored.At = dbTime(m.At)
			return err
		}
		stored, err = scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages
			WHERE build_id = $1 AND role = $2 AND recipient = $3`, m.BuildID, string(m.Role), m.Recipient))
		return err
	})
	if err != nil {
		return promote.Message{}, false, fmt.Errorf("save %s message of %s: %w", m.Role, m.BuildID, err)
	}
	return stored, added, nil
}

// Messages lists the Slack messages of build buildID, oldest first; none for
// an unknown build.
func (s *db) Messages(ctx context.Context, buildID string) ([]promote.Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE build_id = $1 ORDER BY at, role, recipient`, buildID)
	if err != nil {
		return nil, fmt.Errorf("messages of %s: %w", buildID, err)
	}
	var ms []promote.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("messages of %s: %w", buildID, err), rows.Close())
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messages of %s: %w", buildID, err)
	}
	return ms, nil
}

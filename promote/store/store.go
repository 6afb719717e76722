// Package store keeps promotebot's builds, approvals and job queue: in an
// embedded SQLite database by default, in PostgreSQL when several replicas
// share the work. Both speak database/sql and share every query; a dialect
// holds the few places where they differ. Schema changes are embedded SQL
// files applied at Open.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// Open opens the store that database names: empty for the embedded SQLite
// database in dataDir, a postgres:// or postgresql:// URL for PostgreSQL.
// Either way the schema is brought up to date before Open returns.
func Open(ctx context.Context, database, dataDir string) (promote.Store, error) {
	switch {
	case database == "":
		if dataDir == "" {
			return nil, errors.New("open store: no database and no dataDir for the embedded one")
		}
		return OpenSQLite(ctx, dataDir)
	case strings.HasPrefix(database, "postgres://"), strings.HasPrefix(database, "postgresql://"):
		return OpenPostgres(ctx, database)
	default:
		scheme, _, _ := strings.Cut(database, ":")
		return nil, fmt.Errorf("open store: database %q: want empty or a postgres:// URL", scheme)
	}
}

// dialect is what differs between the databases; the queries are the same.
type dialect struct {
	name string
	// forUpdate locks the rows a SELECT reads until the transaction ends;
	// empty where the transaction already excludes every other writer.
	forUpdate string
	// skipLocked is forUpdate for a queue: rows another transaction holds
	// are passed over rather than waited for.
	skipLocked string
	// lock takes a lock named by key until the transaction ends; nil where
	// the transaction already excludes every other writer.
	lock func(ctx context.Context, tx *sql.Tx, key string) error
	// time turns a time into a query argument.
	time func(time.Time) any
	// tx is how transactions begin; nil for the driver's default.
	tx *sql.TxOptions
}

// lockKey takes d's named lock, if it has such locks.
func (d *dialect) lockKey(ctx context.Context, tx *sql.Tx, key string) error {
	if d.lock == nil {
		return nil
	}
	return d.lock(ctx, tx, key)
}

// db is the store over database/sql that SQLite and Postgres share.
type db struct {
	d *dialect
	// w runs every transaction that writes. For SQLite it is one connection
	// that begins transactions IMMEDIATE, so writers queue in Go rather than
	// spin on SQLITE_BUSY; for PostgreSQL it is the same pool as r.
	w *sql.DB
	// r runs reads outside transactions.
	r *sql.DB
	// group, when set, commits the write transactions in groups (SQLite).
	group *groupCommit
	ids   ids
	now   func() time.Time
}

func newDB(d *dialect, w, r *sql.DB) *db {
	return &db{d: d, w: w, r: r, now: time.Now}
}

// clock returns the store's time for a new record: UTC, to the microsecond,
// as both databases keep it.
func (s *db) clock() time.Time {
	return dbTime(s.now())
}

// dbTime is t as the databases keep and return it.
func dbTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// Ping tells whether the database answers.
func (s *db) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.d.name, err)
	}
	if s.r != s.w {
		if err := s.r.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s: %w", s.d.name, err)
		}
	}
	return nil
}

// Close closes the database connections.
func (s *db) Close() error {
	if s.group != nil {
		s.group.close()
	}
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", s.d.name, err)
	}
	return nil
}

// txFunc is the work of one write transaction; it uses the ctx it is given.
type txFunc func(ctx context.Context, tx *sql.Tx) error

// tx runs fn in a write transaction: through the group committer where there
// is one (SQLite), else in a transaction of its own.
func (s *db) tx(ctx context.Context, fn txFunc) error {
	if s.group != nil {
		return s.group.run(ctx, fn)
	}
	return inTx(ctx, s.w, s.d, func(tx *sql.Tx) error { return fn(ctx, tx) })
}

// inTx runs fn in a write transaction and commits when it returns nil.
func inTx(ctx context.Context, w *sql.DB, d *dialect, fn func(*sql.Tx) error) error {
	tx, err := w.BeginTx(ctx, d.tx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// timeCol scans a time column from either database: SQLite gives Unix
// microseconds, PostgreSQL a time.Time; NULL is the zero time.
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

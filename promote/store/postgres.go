package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/promotebot/promotebot/promote"
)

// Postgres is the store in PostgreSQL, which several replicas may share.
// Rows are locked with SELECT … FOR UPDATE, the queue is claimed with
// FOR UPDATE SKIP LOCKED, and Creates for one project target are serialized
// with a transaction-scoped advisory lock. Durability is the server's
// (synchronous_commit).
type Postgres struct {
	*db
}

var _ promote.Store = (*Postgres)(nil)

// lockSpace is the first key of promotebot's advisory locks, so that they
// do not meet another application's in the same database.
const lockSpace = 0x70726f6d // "prom"

var postgresDialect = &dialect{
	name:       "postgres",
	forUpdate:  " FOR UPDATE",
	skipLocked: " FOR UPDATE SKIP LOCKED",
	lock: func(ctx context.Context, tx *sql.Tx, key string) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1::int4, hashtext($2))`, lockSpace, key); err != nil {
			return fmt.Errorf("lock %s: %w", key, err)
		}
		return nil
	},
	time: func(t time.Time) any { return dbTime(t) }, // rounding would differ from SQLite
	// Whatever default_transaction_isolation says: Create's second look
	// after its lock must see what committed meanwhile.
	tx: &sql.TxOptions{Isolation: sql.LevelReadCommitted},
}

// OpenPostgres connects to the database at dsn (a postgres:// URL; its
// search_path or options parameters choose the schema) and brings the
// schema up to date. Replicas starting together apply each migration once.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool.SetMaxOpenConns(16)
	pool.SetMaxIdleConns(4)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	if err := pool.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open postgres: %w", err), pool.Close())
	}
	if err := migrate(ctx, pool, postgresDialect, "migrations/postgres"); err != nil {
		return nil, errors.Join(fmt.Errorf("open postgres: %w", err), pool.Close())
	}
	return &Postgres{db: newDB(postgresDialect, pool, pool)}, nil
}

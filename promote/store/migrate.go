package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// migrations holds the schema of each database as numbered SQL files,
// applied in name order; an applied file is never edited, a change is a new
// file.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    TEXT PRIMARY KEY,
	applied_at TEXT NOT NULL -- RFC 3339, UTC
)`

// migrate applies the files in dir that schema_migrations does not list,
// each in its own transaction with its record. The transaction holds d's
// migration lock (SQLite's IMMEDIATE write lock, PostgreSQL's advisory lock)
// and looks again under it, so replicas starting together apply each file once.
func migrate(ctx context.Context, w *sql.DB, d *dialect, dir string) error {
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	for _, e := range entries { // ReadDir sorts by name
		if err := migrateFile(ctx, w, d, path.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func migrateFile(ctx context.Context, w *sql.DB, d *dialect, file string) error {
	body, err := migrations.ReadFile(file)
	if err != nil {
		return fmt.Errorf("migration %s: %w", file, err)
	}
	version := strings.TrimSuffix(path.Base(file), ".sql")
	err = inTx(ctx, w, d, func(tx *sql.Tx) error {
		if err := d.lockKey(ctx, tx, "schema_migrations"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
			return err
		}
		var n int
		row := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, version)
		if err := row.Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
			version, time.Now().UTC().Format(time.RFC3339Nano))
		return err
	})
	if err != nil {
		return fmt.Errorf("migration %s: %w", version, err)
	}
	return nil
}

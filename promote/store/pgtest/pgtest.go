// Package pgtest gives tests an empty PostgreSQL schema of their own on the
// server named by PROMOTEBOT_TEST_POSTGRES, or skips them saying how to run
// them.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// Env names the PostgreSQL the tests use, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const Env = "PROMOTEBOT_TEST_POSTGRES"

// Server returns the test server's URL and an admin pool on it, or skips
// the test when Env is not set.
func Server(tb testing.TB) (string, *sql.DB) {
	tb.Helper()
	dsn := os.Getenv(Env)
	if dsn == "" {
		tb.Skipf("%s is not set; set it to a PostgreSQL URL (postgres://user@host:port/db?sslmode=disable) to run this test on PostgreSQL", Env)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatalf("%s: %v", Env, err)
	}
	tb.Cleanup(func() {
		if err := admin.Close(); err != nil {
			tb.Error(err)
		}
	})
	return dsn, admin
}

// Schema creates an empty schema on the server dsn names (admin is a pool
// on it), dropped when the test ends, and returns dsn with its search_path
// set to it.
func Schema(tb testing.TB, dsn string, admin *sql.DB) string {
	tb.Helper()
	ctx := context.Background()
	schema := "promotebot_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA "`+schema+`"`); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA "`+schema+`" CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("%s: %v", Env, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Fresh is Server and Schema in one: a URL of an empty schema, or a skip.
func Fresh(tb testing.TB) string {
	tb.Helper()
	dsn, admin := Server(tb)
	return Schema(tb, dsn, admin)
}

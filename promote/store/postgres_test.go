package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/promotebot/promotebot/promote"
)

// postgresEnv names the PostgreSQL the tests use, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const postgresEnv = "PROMOTEBOT_TEST_POSTGRES"

// testPostgres returns the test database's URL and an admin pool on it, or
// skips the test.
func testPostgres(tb testing.TB) (string, *sql.DB) {
	tb.Helper()
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		tb.Skipf("%s is not set; set it to a PostgreSQL URL (postgres://user@host:port/db?sslmode=disable) to test the PostgreSQL store", postgresEnv)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatalf("%s: %v", postgresEnv, err)
	}
	tb.Cleanup(func() {
		if err := admin.Close(); err != nil {
			tb.Error(err)
		}
	})
	return dsn, admin
}

// freshSchema creates an empty schema, dropped when the test ends, and
// returns dsn with its search_path set to it.
func freshSchema(tb testing.TB, dsn string, admin *sql.DB) string {
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
		tb.Fatalf("%s: %v", postgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// postgresOpener opens stores on the database at dsn through Open.
func postgresOpener(dsn string) opener {
	return func(t *testing.T) (promote.Store, error) {
		s, err := Open(context.Background(), dsn, "")
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s, nil
	}
}

func TestPostgres(t *testing.T) {
	dsn, admin := testPostgres(t)
	runConformance(t, func(t *testing.T) opener {
		return postgresOpener(freshSchema(t, dsn, admin))
	})
}

func TestPostgresSchema(t *testing.T) {
	dsn, admin := testPostgres(t)
	s := postgresOpener(freshSchema(t, dsn, admin)).must(t).(*Postgres)
	var schema string
	if err := s.r.QueryRowContext(context.Background(),
		`SELECT table_schema FROM information_schema.tables WHERE table_name = 'builds' AND table_schema = current_schema()`,
	).Scan(&schema); err != nil {
		t.Fatalf("builds table in the test schema: %v", err)
	}
	if !strings.HasPrefix(schema, "promotebot_test_") {
		t.Errorf("builds is in %s, want the test schema", schema)
	}
}

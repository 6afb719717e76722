package store

import (
	"context"
	"strings"
	"testing"

	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/store/pgtest"
)

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
	dsn, admin := pgtest.Server(t)
	runConformance(t, func(t *testing.T) opener {
		return postgresOpener(pgtest.Schema(t, dsn, admin))
	})
}

func TestPostgresSchema(t *testing.T) {
	dsn, admin := pgtest.Server(t)
	s := postgresOpener(pgtest.Schema(t, dsn, admin)).must(t).(*Postgres)
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

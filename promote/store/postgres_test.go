package store

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

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

// TestPostgresCoalesceWaitsForAClaim: a change that would coalesce its
// notification into a pending job must not count on that job while a claim
// of it is in flight (it would start without seeing the change). It waits
// for the claim, then enqueues a job of its own.
func TestPostgresCoalesceWaitsForAClaim(t *testing.T) {
	dsn, admin := pgtest.Server(t)
	schema := pgtest.Schema(t, dsn, admin)
	s := postgresOpener(schema).must(t).(*Postgres)
	ctx := context.Background()
	notify := promote.Job{Kind: promote.JobNotify, Coalesce: true}
	b, _, _, err := s.Create(ctx, promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:1",
		Kind: promote.KindBranch, Target: "main"}, notify)
	if err != nil {
		t.Fatal(err)
	}
	// Another replica's claim of the job, not yet committed.
	other, err := sql.Open("pgx", schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() }) //nolint:errcheck // test pool
	claim, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { claim.Rollback() }) //nolint:errcheck // done already when the test got through
	if _, err := claim.ExecContext(ctx, `UPDATE jobs SET leased_by = 'other', leased_until = $1 WHERE build_id = $2`,
		time.Now().Add(time.Hour), b.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.AddApproval(ctx, promote.Approval{BuildID: b.ID, User: "UQA1", Verdict: promote.Approve}, notify)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the approval committed while a claim of the pending notification was in flight (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := claim.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var waiting int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE build_id = $1 AND kind = $2 AND status = 'pending'
		AND leased_until IS NULL`, b.ID, string(promote.JobNotify)).Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	if waiting != 1 {
		t.Errorf("%d notification jobs wait after the approval, want 1 (the claimed one started before it)", waiting)
	}
}

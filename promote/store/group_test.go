package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/promotebot/promotebot/promote"
)

// TestGroupCommitKeepsEachOutcome runs many write transactions at once on
// SQLite, so that they share commits, with every third one failing: the
// failures change nothing and every other one is stored.
func TestGroupCommitKeepsEachOutcome(t *testing.T) {
	s := sqliteOpener(t.TempDir()).must(t)
	ctx := context.Background()
	base := create(t, s, build("0.0.1"))
	errRefused := errors.New("refused by the test")
	const n = 120
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			if i%3 == 0 {
				_, errs[i] = s.Apply(ctx, base.ID, promote.EventDeploy, func(*promote.Build) error { return errRefused })
				return
			}
			b := build(fmt.Sprintf("1.0.%d", i))
			b.Target = fmt.Sprintf("t-%d", i)
			_, _, _, errs[i] = s.Create(ctx, b, promote.Job{Kind: promote.JobDeployQA})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i%3 == 0 && !errors.Is(err, errRefused) {
			t.Errorf("apply %d: %v, want the refusal", i, err)
		}
		if i%3 != 0 && err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	}
	if got := get(t, s, base.ID); got.State != promote.StateReceived {
		t.Errorf("refused applies moved the build to %s", got.State)
	}
	counts, err := s.CountByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + n - n/3; counts[promote.StateReceived] != want {
		t.Errorf("%d builds stored, want %d", counts[promote.StateReceived], want)
	}
	if p, err := s.Pending(ctx); err != nil || p != n-n/3 {
		t.Errorf("pending jobs %d (%v), want %d", p, err, n-n/3)
	}
}

// TestGroupCommitAfterClose refuses work once the store is closed.
func TestGroupCommitAfterClose(t *testing.T) {
	s, err := OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err = s.tx(context.Background(), func(context.Context, *sql.Tx) error { return nil })
	if !errors.Is(err, errStoreClosed) {
		t.Fatalf("tx after Close: %v, want errStoreClosed", err)
	}
}

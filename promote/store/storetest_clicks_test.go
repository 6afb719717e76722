package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

func firstClick(t *testing.T, s promote.Store, key string, now time.Time) bool {
	t.Helper()
	first, err := s.FirstClick(context.Background(), key, now)
	if err != nil {
		t.Fatalf("FirstClick(%s): %v", key, err)
	}
	return first
}

// testClicks: a click is handled once, by whichever store (replica) sees it
// first and across a reopen; its record is forgotten once ClickMemory has
// passed, so that the table stays small.
func testClicks(t *testing.T, open opener) {
	s, replica := open.must(t), open.must(t)
	steps := []struct {
		name  string
		store promote.Store
		key   string
		at    time.Time
		want  bool
	}{
		{"a new click", s, "click-1", base, true},
		{"the same click again", s, "click-1", base.Add(time.Second), false},
		{"the same click at another replica", replica, "click-1", base.Add(2 * time.Second), false},
		{"another click", replica, "click-2", base.Add(3 * time.Second), true},
		{"the first click just within the memory", s, "click-1", base.Add(promote.ClickMemory), false},
		{"a click that prunes the old records", s, "click-3", base.Add(promote.ClickMemory + 4*time.Second), true},
		{"the first click, forgotten", s, "click-1", base.Add(promote.ClickMemory + 5*time.Second), true},
	}
	for _, st := range steps {
		if got := firstClick(t, st.store, st.key, st.at); got != st.want {
			t.Errorf("%s: FirstClick = %v, want %v", st.name, got, st.want)
		}
	}
	if got := firstClick(t, open.must(t), "click-3", base.Add(promote.ClickMemory+6*time.Second)); got {
		t.Error("after a reopen: FirstClick = true for a click already handled")
	}

	// Replicas racing on one click: exactly one of them handles it.
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		st := s
		if i%2 == 1 {
			st = replica
		}
		wg.Go(func() {
			first, err := st.FirstClick(context.Background(), "click-raced", base.Add(promote.ClickMemory+7*time.Second))
			if err != nil {
				t.Errorf("FirstClick: %v", err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Errorf("%d racing FirstClick calls saw the click first, want 1", n)
	}
}

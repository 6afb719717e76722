package promote

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// doraWindow is the period the /metrics DORA figures cover.
const doraWindow = 28 * 24 * time.Hour

// doraScan bounds the production builds of a project looked at.
const doraScan = 500

// doraCacheFor is how long computed figures are served before the store is
// asked again: scrapes stay cheap, and the figures move slowly anyway.
const doraCacheFor = 5 * time.Minute

// DORA are a project's four delivery figures over the last four weeks, as
// the store knows them, defined as `promotebot audit --dora` defines them
// from git (README, "DORA figures").
type DORA struct {
	// Deploys counts production changes in the window: promotions and
	// rollbacks.
	Deploys int
	// PerWeek is Deploys per week.
	PerWeek float64
	// LeadTime is the median, over the window's promotions, from CI's
	// build (builtAt, else when the bot received it) to production; 0
	// without promotions.
	LeadTime time.Duration
	// FailureRate is the share of the window's promotions later rolled
	// back.
	FailureRate float64
	// Restore is the median, over the failed promotions, from the
	// promotion to the first later production change (its rollback, or
	// whatever replaced it first); 0 without failures.
	Restore  time.Duration
	Failures int
}

// doraCache keeps the last figures for doraCacheFor.
type doraCache struct {
	mu   sync.Mutex
	at   time.Time
	figs map[string]DORA
}

// DORA computes each project's figures from the store, served from a cache
// for up to five minutes.
func (s *Service) DORA(ctx context.Context) (map[string]DORA, error) {
	now := s.clock()
	s.dora.mu.Lock()
	defer s.dora.mu.Unlock()
	if s.dora.figs != nil && now.Sub(s.dora.at) < doraCacheFor {
		return s.dora.figs, nil
	}
	figs := map[string]DORA{}
	for _, p := range s.Config.Projects {
		f, err := s.projectDORA(ctx, p, now)
		if err != nil {
			return nil, err
		}
		figs[p.ID] = f
	}
	s.dora.figs, s.dora.at = figs, now
	return figs, nil
}

func (s *Service) projectDORA(ctx context.Context, p Project, now time.Time) (DORA, error) {
	bs, err := s.Store.Find(ctx, p.ID, []State{StatePromoted, StateRolledBack}, doraScan)
	if err != nil {
		return DORA{}, fmt.Errorf("dora of %s: %w", p.ID, err)
	}
	type promotion struct {
		at, start time.Time
		failed    bool
	}
	var promotions []promotion
	var changes []time.Time // every production change: promotions and rollbacks
	for _, b := range bs {
		h, err := s.Store.History(ctx, b.ID)
		if err != nil {
			return DORA{}, fmt.Errorf("dora of %s: %w", p.ID, err)
		}
		var promoted, rolledBack time.Time
		for _, t := range h {
			switch {
			case t.Event == EventPromoted && promoted.IsZero():
				promoted = t.At
			case t.Event == EventRolledBack && rolledBack.IsZero():
				rolledBack = t.At
			}
		}
		if promoted.IsZero() {
			continue
		}
		start := b.BuiltAt
		if start.IsZero() {
			start = b.CreatedAt
		}
		promotions = append(promotions, promotion{at: promoted, start: start, failed: !rolledBack.IsZero()})
		changes = append(changes, promoted)
		if !rolledBack.IsZero() {
			changes = append(changes, rolledBack)
		}
	}
	slices.SortFunc(changes, func(a, b time.Time) int { return a.Compare(b) })
	since := now.Add(-doraWindow)
	var f DORA
	for _, c := range changes {
		if !c.Before(since) {
			f.Deploys++
		}
	}
	var leads, restores []time.Duration
	inWindow := 0
	for _, pr := range promotions {
		if pr.at.Before(since) {
			continue
		}
		inWindow++
		leads = append(leads, pr.at.Sub(pr.start))
		if !pr.failed {
			continue
		}
		f.Failures++
		for _, c := range changes {
			if c.After(pr.at) {
				restores = append(restores, c.Sub(pr.at))
				break
			}
		}
	}
	f.PerWeek = float64(f.Deploys) / (doraWindow.Hours() / (7 * 24))
	f.LeadTime, f.Restore = median(leads), median(restores)
	if inWindow > 0 {
		f.FailureRate = float64(f.Failures) / float64(inWindow)
	}
	return f, nil
}

// median is the middle duration (the lower of the two middle ones); 0 for
// none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[(len(ds)-1)/2]
}

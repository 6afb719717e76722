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
// the store knows them (`promotebot audit --dora` computes them from git).
type DORA struct {
	// Deploys is how many builds went to production in the window.
	Deploys int
	// PerWeek is Deploys per week.
	PerWeek float64
	// LeadTime is the median from a build's CI time (builtAt, else when
	// the bot received it) to its production change; 0 without deploys.
	LeadTime time.Duration
	// FailureRate is the share of the deploys that were rolled back.
	FailureRate float64
	// Restore is the median from a rolled-back deploy to its rollback; 0
	// without failures.
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
	var f DORA
	var leads, restores []time.Duration
	since := now.Add(-doraWindow)
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
		if promoted.Before(since) {
			continue
		}
		f.Deploys++
		start := b.BuiltAt
		if start.IsZero() {
			start = b.CreatedAt
		}
		leads = append(leads, promoted.Sub(start))
		if !rolledBack.IsZero() {
			f.Failures++
			restores = append(restores, rolledBack.Sub(promoted))
		}
	}
	f.PerWeek = float64(f.Deploys) / (doraWindow.Hours() / (7 * 24))
	f.LeadTime, f.Restore = median(leads), median(restores)
	if f.Deploys > 0 {
		f.FailureRate = float64(f.Failures) / float64(f.Deploys)
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

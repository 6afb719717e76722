package promote

import (
	"context"
	"fmt"
	"strings"
)

// deployedStates are the states of a build whose QA overlay is in place.
var deployedStates = []State{StateQAReady, StateApproved, StateRejected, StatePromoting, StatePromoteFailed}

// statusLimit bounds how many QA builds a status lists.
const statusLimit = 50

// Status tells what runs in production and in each QA environment of a
// project, for `/promote status`. An unknown project is a *Refusal.
func (s *Service) Status(ctx context.Context, projectID string) (StatusView, error) {
	p, ok := s.Config.Project(projectID)
	if !ok {
		ids := make([]string, len(s.Config.Projects))
		for i, q := range s.Config.Projects {
			ids[i] = q.ID
		}
		return StatusView{}, refusef("No project %q. Projects: %s.", Plain(projectID), strings.Join(ids, ", "))
	}
	v := StatusView{Project: p, Feedback: s.Feedback, RolloutTimeout: s.Config.Rollout.Timeout}
	prod, err := s.currentProduction(ctx, p)
	if err != nil {
		return StatusView{}, fmt.Errorf("status of %s: %w", p.ID, err)
	}
	v.Production = prod
	builds, err := s.Store.Find(ctx, p.ID, deployedStates, statusLimit)
	if err != nil {
		return StatusView{}, fmt.Errorf("status of %s: %w", p.ID, err)
	}
	seen := map[string]bool{}
	for _, b := range builds {
		if seen[b.Environment] {
			continue // an older build of the same environment
		}
		seen[b.Environment] = true
		approvals, err := s.Store.Approvals(ctx, b.ID)
		if err != nil {
			return StatusView{}, fmt.Errorf("status of %s: %w", p.ID, err)
		}
		v.QA = append(v.QA, BuildView{Build: b, Project: p, Approvals: approvals,
			Feedback: s.Feedback, RolloutTimeout: s.Config.Rollout.Timeout})
	}
	return v, nil
}

package server

import (
	"context"

	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/policy"
)

// setupPolicy adapts the policy engine to the Setup Assistant endpoints'
// question (internal/enroll cannot import internal/policy: its admin
// errors map through apijson, which knows policy's).
type setupPolicy struct{ engine *policy.Engine }

func (p setupPolicy) Decide(ctx context.Context, a enroll.PolicyAttempt) (enroll.PolicyDecision, error) {
	d, err := p.engine.Decide(ctx, policy.Attempt{User: a.User, Method: a.Method, Platform: a.Platform, OSVersion: a.OSVersion,
		DeviceID: a.DeviceID, Serial: a.Serial})
	if err != nil {
		return enroll.PolicyDecision{}, err
	}
	return enroll.PolicyDecision{Allowed: d.Allowed, Reason: string(d.Reason), Policy: d.Policy, Rule: d.Rule,
		Message: d.Message, Remedy: d.Remedy}, nil
}

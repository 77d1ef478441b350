package policy

import (
	"context"

	"github.com/orchardmdm/orchard/mdm/service"
)

// Admission adapts the engine to what mdm/service asks at Authenticate.
type Admission struct{ Engine *Engine }

var _ service.Admission = Admission{}

// Admit implements service.Admission.
func (a Admission) Admit(ctx context.Context, r service.AdmissionRequest) (service.AdmissionResult, error) {
	d, err := a.Engine.Admit(ctx, Attempt{User: r.User, Method: r.Method, Platform: r.Platform, OSVersion: r.OSVersion,
		DeviceID: r.DeviceID, Serial: r.Serial, IMEI: r.IMEI, Model: r.Model})
	if err != nil {
		return service.AdmissionResult{}, err
	}
	return service.AdmissionResult{Allowed: d.Allowed, Code: string(d.Reason), Policy: d.Policy, Rule: d.Rule,
		Message: d.Message, Remedy: d.Remedy, Ownership: d.Ownership, OwnershipBy: d.OwnershipBy, DEM: d.DEM}, nil
}

package service

import (
	"context"

	"github.com/orchardmdm/orchard/storage"
)

// Admission decides at Authenticate whether a device may enroll, and takes
// its slot when it may (internal/policy's engine provides it). Admit runs
// after the identity checks and before anything is written; an error is a
// failure to decide (the device is answered 500 and retries), a refusal is
// a result with Allowed false.
type Admission interface {
	Admit(ctx context.Context, r AdmissionRequest) (AdmissionResult, error)
}

// AdmissionRequest is what the device's Authenticate and its certificate
// tell of the attempt.
type AdmissionRequest struct {
	User      string // the directory user the profile was handed out to
	Method    string // the certificate's authorization kind
	Platform  string
	OSVersion string
	DeviceID  string
	Serial    string
	IMEI      string
	Model     string
}

// AdmissionResult is the decision. For a refusal, Code, Policy, Rule,
// Message and Remedy go into the failure record and the answer.
type AdmissionResult struct {
	Allowed   bool
	Code      string
	Policy    string
	Rule      string
	Message   string
	Remedy    string
	Ownership storage.Ownership
	// OwnershipBy says why (storage.OwnershipBy...; "" for personal).
	OwnershipBy string
	// DEM: a device enrollment manager enrolled the device (userless).
	DEM bool
}

// WithAdmission makes every Authenticate pass a's decision.
func WithAdmission(a Admission) Option { return func(s *Service) { s.admit = a } }

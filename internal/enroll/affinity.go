package enroll

import (
	"context"
	"errors"
	"log/slog"

	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/storage"
)

// PrimaryUsers sets a device's primary user (storage.DirectoryStore has it).
type PrimaryUsers interface {
	SetPrimaryUser(ctx context.Context, deviceID, username string) error
}

// DeviceCategories sets a device's category; nil until categories exist.
type DeviceCategories interface {
	SetDeviceCategory(ctx context.Context, deviceID, name string) error
}

// EnrolledStages records that a portal enrollment session reached its
// last stage, the device enrolling (internal/enrollstage behind an adapter).
type EnrolledStages interface {
	Enrolled(ctx context.Context, sessionID string, e *storage.Enrollment) error
}

// Affinity observes Authenticate: a device that enrolled with a profile
// handed to a signed-in user (the portal, Setup Assistant sign-in) gets
// that user as its primary user, and the category the user chose. Other
// enrollments stay as they are (userless ones stay userless).
type Affinity struct {
	users      PrimaryUsers
	categories DeviceCategories
	stages     EnrolledStages
	log        *slog.Logger
}

// AffinityOption configures an Affinity.
type AffinityOption func(*Affinity)

// WithEnrolledStages makes the device's first TokenUpdate complete the
// stage record of the portal session that handed its profile out.
func WithEnrolledStages(s EnrolledStages) AffinityOption { return func(a *Affinity) { a.stages = s } }

// NewAffinity builds the observer; categories may be nil.
func NewAffinity(users PrimaryUsers, categories DeviceCategories, log *slog.Logger, opts ...AffinityOption) (*Affinity, error) {
	if users == nil {
		return nil, errors.New("enroll: user affinity needs the directory store")
	}
	if log == nil {
		log = slog.Default()
	}
	a := &Affinity{users: users, categories: categories, log: log}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Observe implements service.Observer.
func (a *Affinity) Observe(ctx context.Context, ev service.Event) {
	if en, ok := ev.(service.Enrolled); ok {
		a.enrolled(ctx, en.Enrollment)
		return
	}
	au, ok := ev.(service.Authenticated)
	if !ok {
		return
	}
	e := au.Enrollment
	if e.EnrollmentUser != "" {
		// A user deleted since the sign-in leaves the device userless.
		if err := a.users.SetPrimaryUser(ctx, e.DeviceID, e.EnrollmentUser); err != nil {
			a.log.Warn("enroll: set primary user", "device", e.DeviceID, "username", e.EnrollmentUser, "err", err)
		} else {
			a.log.Info("enroll: primary user set from the signed-in enrollment", "device", e.DeviceID, "username", e.EnrollmentUser)
		}
	}
	if e.EnrollmentCategory != "" && a.categories != nil {
		if err := a.categories.SetDeviceCategory(ctx, e.DeviceID, e.EnrollmentCategory); err != nil {
			a.log.Warn("enroll: set device category", "device", e.DeviceID, "category", e.EnrollmentCategory, "err", err)
		}
	}
}

// enrolled records the "enrolled" stage at the first TokenUpdate (when the
// device can take commands), not at Authenticate.
func (a *Affinity) enrolled(ctx context.Context, e *storage.Enrollment) {
	if a.stages == nil || e == nil || e.EnrollmentSession == "" {
		return
	}
	if err := a.stages.Enrolled(ctx, e.EnrollmentSession, e); err != nil {
		a.log.Warn("enroll: record enrolled stage", "device", e.DeviceID, "session", e.EnrollmentSession, "err", err)
	}
}

package enroll

import (
	"context"
	"errors"
	"log/slog"

	"github.com/orchardmdm/orchard/mdm/service"
)

// PrimaryUsers sets a device's primary user (storage.DirectoryStore has it).
type PrimaryUsers interface {
	SetPrimaryUser(ctx context.Context, deviceID, username string) error
}

// DeviceCategories sets a device's category; nil until categories exist.
type DeviceCategories interface {
	SetDeviceCategory(ctx context.Context, deviceID, name string) error
}

// Affinity observes Authenticate: a device that enrolled with a profile
// handed to a signed-in user (the portal, Setup Assistant sign-in) gets
// that user as its primary user, and the category the user chose. Other
// enrollments stay as they are (userless ones stay userless).
type Affinity struct {
	users      PrimaryUsers
	categories DeviceCategories
	log        *slog.Logger
}

// NewAffinity builds the observer; categories may be nil.
func NewAffinity(users PrimaryUsers, categories DeviceCategories, log *slog.Logger) (*Affinity, error) {
	if users == nil {
		return nil, errors.New("enroll: user affinity needs the directory store")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Affinity{users: users, categories: categories, log: log}, nil
}

// Observe implements service.Observer.
func (a *Affinity) Observe(ctx context.Context, ev service.Event) {
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

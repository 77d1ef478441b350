package adminapi

import (
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

// TestOwnershipOf: what the enrollment recorded is shown as it is; records
// from before ownership (or its why) was recorded are judged by how the
// device enrolled; user channels show none.
func TestOwnershipOf(t *testing.T) {
	cases := []struct {
		name    string
		e       storage.Enrollment
		own, by string
	}{
		{"recorded corporate identifier", storage.Enrollment{ID: "D", DeviceID: "D", EnrollmentMethod: storage.KindInvitation,
			Ownership: storage.Corporate, OwnershipBy: storage.OwnershipByCorporateIdentifier}, "corporate", "corporate_identifier"},
		{"recorded admin's personal", storage.Enrollment{ID: "D", DeviceID: "D", EnrollmentMethod: storage.KindADE,
			Ownership: storage.Personal, OwnershipBy: storage.OwnershipByAdmin}, "personal", "admin"},
		{"recorded personal", storage.Enrollment{ID: "D", DeviceID: "D", EnrollmentMethod: storage.KindPortal, Ownership: storage.Personal}, "personal", ""},
		{"old ADE record", storage.Enrollment{ID: "D", DeviceID: "D", EnrollmentMethod: storage.KindADE}, "corporate", "ade"},
		{"old Configurator record", storage.Enrollment{ID: "D", DeviceID: "D", EnrollmentMethod: storage.KindConfigurator}, "corporate", "configurator"},
		{"old invitation record", storage.Enrollment{ID: "D", DeviceID: "D", EnrollmentMethod: storage.KindInvitation}, "personal", ""},
		{"ownership without its why, by a DEM", storage.Enrollment{ID: "D", DeviceID: "D", EnrollmentMethod: storage.KindInvitation,
			Ownership: storage.Corporate, EnrolledBy: "dem"}, "corporate", "dem"},
		{"ownership without its why, unknown", storage.Enrollment{ID: "D", DeviceID: "D", EnrollmentMethod: storage.KindInvitation,
			Ownership: storage.Corporate}, "corporate", ""},
		{"user channel", storage.Enrollment{ID: "D:U", DeviceID: "D", Ownership: storage.Corporate, OwnershipBy: storage.OwnershipByADE}, "", ""},
	}
	for _, c := range cases {
		own, by := ownershipOf(&c.e)
		if string(own) != c.own || by != c.by {
			t.Errorf("%s: ownership %q by %q, want %q by %q", c.name, own, by, c.own, c.by)
		}
	}
}

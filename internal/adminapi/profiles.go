package adminapi

import (
	"net/http"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
)

// deviceProfileStates is GET /v1/devices/{id}/profile-states: the library
// profiles' states on an enrolled channel (404 for one Orchard never saw,
// rather than an empty list that reads as "nothing scoped").
func (a *API) deviceProfileStates(w http.ResponseWriter, r *http.Request) {
	if _, err := a.store.Enrollment(r.Context(), r.PathValue("id")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	a.profiles.ChannelStates(w, r)
}

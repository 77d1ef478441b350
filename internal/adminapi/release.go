package adminapi

import (
	"context"
	"net/http"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/mdm"
)

// Releaser lets the next enrollment of a device take over its current one
// (the MDM service).
type Releaser interface {
	Release(ctx context.Context, deviceID string) (time.Time, error)
}

// releaseDevice serves POST /v1/devices/{id}/release: an admin vouches
// that the device's next enrollment is the device itself (a wiped or
// replaced device that could not check out).
func (a *API) releaseDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ch, err := mdm.ParseChannelID(id)
	if err != nil {
		apijson.WriteError(w, http.StatusBadRequest, "invalid device id: "+err.Error())
		return
	}
	if ch.IsUser() {
		apijson.WriteError(w, http.StatusBadRequest, "a user channel cannot be released; release its device")
		return
	}
	until, err := a.releaser.Release(r.Context(), id)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, struct {
		ID            string    `json:"id"`
		ReleasedUntil time.Time `json:"released_until"`
	}{id, until})
}

package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/orchardmdm/orchard/mdm"
)

// Releaser lets the next enrollment of a device take over its current one.
type Releaser interface {
	Release(ctx context.Context, deviceID string) (time.Time, error)
}

// RegisterRelease mounts POST /v1/devices/{id}/release: an admin vouches
// that the device's next enrollment is the device itself (a wiped or
// replaced device that could not check out).
func RegisterRelease(mux *http.ServeMux, rel Releaser, log *slog.Logger) {
	mux.HandleFunc("POST /v1/devices/{id}/release", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		ch, err := mdm.ParseChannelID(id)
		if err != nil {
			WriteError(w, http.StatusBadRequest, "invalid device id: "+err.Error())
			return
		}
		if ch.IsUser() {
			WriteError(w, http.StatusBadRequest, "a user channel cannot be released; release its device")
			return
		}
		until, err := rel.Release(r.Context(), id)
		if err != nil {
			writeErr(w, log, err)
			return
		}
		WriteJSON(w, http.StatusOK, struct {
			ID            string    `json:"id"`
			ReleasedUntil time.Time `json:"released_until"`
		}{id, until})
	})
}

// Package depapi serves the admin JSON API of ADE (Apple Business/School
// Manager): the token public key, server tokens, manual sync, devices and
// enrollment profiles. Authentication is the caller's: mount it behind the
// admin auth middleware.
package depapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/storage"
)

// Service is what the handlers need; *dep.Service implements it.
type Service interface {
	PublicKeyPEM() []byte
	AddToken(ctx context.Context, name, note string, p7m []byte) (dep.TokenView, error)
	RenewToken(ctx context.Context, id string, p7m []byte) (dep.TokenView, error)
	Token(ctx context.Context, id string) (dep.TokenView, error)
	Tokens(ctx context.Context) ([]dep.TokenView, error)
	DeleteToken(ctx context.Context, id string) error
	SyncNow(ctx context.Context, id string) (dep.SyncResult, error)
	Devices(ctx context.Context, f storage.DEPDeviceFilter) ([]storage.DEPDevice, error)
	DeleteDevice(ctx context.Context, serial string) error
	CreateProfile(ctx context.Context, tokenID string, spec dep.ProfileSpec) (dep.ProfileView, error)
	UpdateProfile(ctx context.Context, tokenID, id string, spec dep.ProfileSpec) (dep.ProfileView, error)
	Profile(ctx context.Context, tokenID, id string) (dep.ProfileView, error)
	Profiles(ctx context.Context, tokenID string) ([]dep.ProfileView, error)
	DeleteProfile(ctx context.Context, tokenID, id string) error
	AssignProfile(ctx context.Context, tokenID, id string, serials []string) (dep.AssignResult, error)
}

// Handler serves /v1/dep/.
type Handler struct {
	svc Service
	log *slog.Logger
}

// Option tunes a Handler.
type Option func(*Handler)

// WithLogger sets the logger for server-side failures.
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// New returns a Handler; svc must not be nil.
func New(svc Service, opts ...Option) (*Handler, error) {
	if svc == nil {
		return nil, errors.New("depapi: nil service")
	}
	h := &Handler{svc: svc, log: slog.Default()}
	for _, o := range opts {
		o(h)
	}
	if h.log == nil {
		return nil, errors.New("depapi: nil logger")
	}
	return h, nil
}

const (
	maxJSON  = 1 << 20  // profiles with certificates fit easily
	maxToken = 64 << 10 // an ABM .p7m is a few KB
	maxList  = 5000
	defList  = 500
)

// Register mounts every route on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/dep/public-key", h.publicKey)
	mux.HandleFunc("GET /v1/dep/tokens", h.listTokens)
	mux.HandleFunc("POST /v1/dep/tokens", h.addToken)
	mux.HandleFunc("GET /v1/dep/tokens/{id}", h.getToken)
	mux.HandleFunc("PUT /v1/dep/tokens/{id}", h.renewToken)
	mux.HandleFunc("DELETE /v1/dep/tokens/{id}", h.deleteToken)
	mux.HandleFunc("POST /v1/dep/tokens/{id}/sync", h.sync)
	mux.HandleFunc("GET /v1/dep/tokens/{id}/profiles", h.listProfiles)
	mux.HandleFunc("POST /v1/dep/tokens/{id}/profiles", h.createProfile)
	mux.HandleFunc("GET /v1/dep/tokens/{id}/profiles/{pid}", h.getProfile)
	mux.HandleFunc("PUT /v1/dep/tokens/{id}/profiles/{pid}", h.updateProfile)
	mux.HandleFunc("DELETE /v1/dep/tokens/{id}/profiles/{pid}", h.deleteProfile)
	mux.HandleFunc("POST /v1/dep/tokens/{id}/profiles/{pid}/devices", h.assignProfile)
	mux.HandleFunc("GET /v1/dep/devices", h.listDevices)
	mux.HandleFunc("DELETE /v1/dep/devices/{serial}", h.deleteDevice)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error     string                      `json:"error"`
	Remaining *storage.DEPTokenInUseError `json:"remaining,omitempty"`
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// fail maps an error to its status once, at the edge.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		inUse   *storage.DEPTokenInUseError
		soon    *dep.TooSoonError
		unusabl *dep.TokenUnusableError
		apiErr  *dep.APIError
		tooBig  *http.MaxBytesError
	)
	status, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.As(err, &tooBig):
		status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit)
	case errors.Is(err, dep.ErrInvalid), errors.Is(err, dep.ErrBadToken), errors.Is(err, errBadRequest):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, storage.ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	case errors.As(err, &inUse):
		writeJSON(w, http.StatusConflict, errorBody{Error: "cannot delete: " + inUse.Error(), Remaining: inUse})
		return
	case errors.As(err, &soon):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(soon.Wait.Seconds()))))
		status, msg = http.StatusTooManyRequests, err.Error()
	case errors.As(err, &unusabl), errors.Is(err, dep.ErrSyncRunning), errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrLimit):
		status, msg = http.StatusConflict, err.Error()
	case errors.As(err, &apiErr):
		status, msg = http.StatusBadGateway, "Apple answered: "+err.Error()
	default:
		h.log.ErrorContext(r.Context(), "depapi: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, errorBody{Error: oneLine(msg)})
}

var errBadRequest = errors.New("bad request")

func badRequest(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, a...))
}

// decode reads one JSON object, refusing unknown fields and trailing data.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return badRequest("body is not the expected JSON: %v", err)
	}
	if dec.More() {
		return badRequest("body has data after the JSON object")
	}
	return nil
}

func (h *Handler) publicKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="orchard-dep-public-key.pem"`)
	w.Write(h.svc.PublicKeyPEM())
}

type tokenUpload struct {
	Name  string `json:"name"`
	Note  string `json:"note"`
	Token string `json:"token"` // the .p7m file's text
}

// readToken accepts JSON {name, note, token} or the raw .p7m body with
// name and note in the query.
func readToken(w http.ResponseWriter, r *http.Request) (tokenUpload, error) {
	var up tokenUpload
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		err := decode(w, r, &up)
		return up, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxToken))
	if err != nil {
		return up, err
	}
	q := r.URL.Query()
	return tokenUpload{Name: q.Get("name"), Note: q.Get("note"), Token: string(body)}, nil
}

func (h *Handler) addToken(w http.ResponseWriter, r *http.Request) {
	up, err := readToken(w, r)
	if err == nil && len(bytes.TrimSpace([]byte(up.Token))) == 0 {
		err = badRequest("token: upload the .p7m file downloaded from Apple Business Manager")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := h.svc.AddToken(r.Context(), up.Name, up.Note, []byte(up.Token))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (h *Handler) renewToken(w http.ResponseWriter, r *http.Request) {
	up, err := readToken(w, r)
	if err == nil && (up.Name != "" || up.Note != "") {
		err = badRequest("renewal takes only the token file")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := h.svc.RenewToken(r.Context(), r.PathValue("id"), []byte(up.Token))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := h.svc.Tokens(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

func (h *Handler) getToken(w http.ResponseWriter, r *http.Request) {
	v, err := h.svc.Token(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) deleteToken(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteToken(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) sync(w http.ResponseWriter, r *http.Request) {
	res, err := h.svc.SyncNow(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *Handler) listProfiles(w http.ResponseWriter, r *http.Request) {
	ps, err := h.svc.Profiles(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"profiles": ps})
}

func (h *Handler) createProfile(w http.ResponseWriter, r *http.Request) {
	var spec dep.ProfileSpec
	if err := decode(w, r, &spec); err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := h.svc.CreateProfile(r.Context(), r.PathValue("id"), spec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (h *Handler) getProfile(w http.ResponseWriter, r *http.Request) {
	v, err := h.svc.Profile(r.Context(), r.PathValue("id"), r.PathValue("pid"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) updateProfile(w http.ResponseWriter, r *http.Request) {
	var spec dep.ProfileSpec
	if err := decode(w, r, &spec); err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := h.svc.UpdateProfile(r.Context(), r.PathValue("id"), r.PathValue("pid"), spec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) deleteProfile(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteProfile(r.Context(), r.PathValue("id"), r.PathValue("pid")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) assignProfile(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Devices []string `json:"devices"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.svc.AssignProfile(r.Context(), r.PathValue("id"), r.PathValue("pid"), req.Devices)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *Handler) listDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := storage.DEPDeviceFilter{TokenID: q.Get("token"), Status: storage.DEPDeviceStatus(q.Get("status")),
		Serial: q.Get("serial"), After: q.Get("after"), Limit: defList}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxList {
			h.fail(w, r, badRequest("limit must be between 1 and %d", maxList))
			return
		}
		f.Limit = n
	}
	ds, err := h.svc.Devices(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := map[string]any{"devices": ds}
	if len(ds) == f.Limit {
		out["next"] = ds[len(ds)-1].Serial // pass as after= for the next page
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) deleteDevice(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteDevice(r.Context(), r.PathValue("serial")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Package api is Orchard's admin API: JSON over HTTPS under /v1/, behind a
// bearer API key. Handlers decode and validate input, call storage or the
// services, and map errors to status codes in one place (writeErr).
package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/orchardmdm/orchard/storage"
)

// MaxJSONBody bounds admin request bodies (commands can carry profiles).
const MaxJSONBody = 32 << 20

// RequireKey wraps next so that only requests bearing the API key pass;
// anything else gets 401 and learns nothing.
func RequireKey(apiKey string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(apiKey))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orchard"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteJSON writes v with the given status.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// WriteError writes {"error": reason} with a one-line reason.
func WriteError(w http.ResponseWriter, code int, reason string) {
	if i := strings.IndexByte(reason, '\n'); i >= 0 {
		reason = reason[:i]
	}
	WriteJSON(w, code, map[string]string{"error": reason})
}

// BadRequest is an error whose message is safe to show the API caller.
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

// Badf makes a *BadRequest.
func Badf(format string, args ...any) error { return &BadRequest{Msg: fmt.Sprintf(format, args...)} }

// writeErr maps an error to a status: bad input 400, missing 404,
// conflicts 409, anything else 500 (logged, not shown).
func writeErr(w http.ResponseWriter, log *slog.Logger, err error) {
	var bad *BadRequest
	switch {
	case errors.As(err, &bad):
		WriteError(w, http.StatusBadRequest, bad.Msg)
	case errors.Is(err, storage.ErrNotFound):
		WriteError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, storage.ErrConflict):
		WriteError(w, http.StatusConflict, err.Error())
	default:
		log.Error("admin API request failed", "err", err)
		WriteError(w, http.StatusInternalServerError, "internal server error")
	}
}

// DecodeJSON reads a JSON body strictly: size-limited, no unknown fields,
// one value.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Badf("body is over %d bytes", MaxJSONBody)
		}
		return Badf("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Badf("invalid JSON body: trailing data")
	}
	return nil
}

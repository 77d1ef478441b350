package apijson

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/internal/category"
	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/mdm/ddm"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/storage"
)

// Error is an answer other than 500: a status and a one-line reason safe
// to show the caller. Fields, when set, are added to the JSON body (the
// per-target outcomes of a refused command, the problems of a CSV).
type Error struct {
	Status int
	Msg    string
	Fields map[string]any
}

func (e *Error) Error() string { return e.Msg }

// Errorf makes an *Error with the given status.
func Errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Bad makes a 400 *Error.
func Bad(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// statuses maps the services' sentinel errors to their status; the reason
// shown is the error's own text. Order matters: the first match wins.
var statuses = []struct {
	err    error
	status int
}{
	{storage.ErrNotFound, http.StatusNotFound},
	{storage.ErrConflict, http.StatusConflict},
	{storage.ErrLimit, http.StatusConflict},
	{storage.ErrGone, http.StatusGone},
	{dep.ErrInvalid, http.StatusBadRequest},
	{dep.ErrBadToken, http.StatusBadRequest},
	{dep.ErrSyncRunning, http.StatusConflict},
	{apns.ErrInvalidCert, http.StatusBadRequest},
	{apns.ErrTopicChanged, http.StatusConflict},
	{service.ErrBadRequest, http.StatusBadRequest},
	{directory.ErrInvalid, http.StatusBadRequest},
	{ddm.ErrInvalid, http.StatusBadRequest},
	{policy.ErrInvalid, http.StatusBadRequest},
	{storage.ErrLimitReached, http.StatusConflict},
	{category.ErrInvalid, http.StatusBadRequest},
}

// internalError is the one 500 body: the cause goes to the log only.
const internalError = "internal server error"

// Fail answers err: its status from the map, or 500 with the cause logged
// and never shown.
func Fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, body := Status(err)
	if status == http.StatusInternalServerError {
		log.ErrorContext(r.Context(), "admin API request failed", "method", r.Method, "route", r.Pattern, "err", err)
	}
	var soon *dep.TooSoonError
	if errors.As(err, &soon) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(soon.Wait.Seconds()))))
	}
	WriteJSON(w, status, body)
}

// Status is the one map from an error to its status code and JSON body.
func Status(err error) (int, map[string]any) {
	var (
		e      *Error
		tooBig *http.MaxBytesError
		inUse  *storage.DEPTokenInUseError
		soon   *dep.TooSoonError
		unus   *dep.TokenUnusableError
		apple  *dep.APIError
		inval  *command.Invalid
		csvBad *directory.ImportError
	)
	body := func(msg string) map[string]any { return map[string]any{"error": oneLine(msg)} }
	switch {
	case errors.As(err, &e):
		b := body(e.Msg)
		for k, v := range e.Fields {
			if k != "error" {
				b[k] = v
			}
		}
		return e.Status, b
	case errors.As(err, &csvBad):
		b := body(csvBad.Error())
		b["problems"] = csvBad.Problems
		return http.StatusBadRequest, b
	case errors.As(err, &inval):
		return http.StatusBadRequest, body(inval.Reason)
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, body(fmt.Sprintf("body larger than %d bytes", tooBig.Limit))
	case errors.As(err, &inUse):
		b := body("cannot delete: " + inUse.Error())
		b["remaining"] = inUse
		return http.StatusConflict, b
	case errors.As(err, &soon):
		return http.StatusTooManyRequests, body(err.Error())
	case errors.As(err, &unus):
		return http.StatusConflict, body(err.Error())
	case errors.As(err, &apple):
		return http.StatusBadGateway, body("Apple answered: " + err.Error())
	}
	for _, s := range statuses {
		if errors.Is(err, s.err) {
			return s.status, body(err.Error())
		}
	}
	return http.StatusInternalServerError, body(internalError)
}

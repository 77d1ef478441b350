// Package apijson is the admin API's one way to speak JSON: the writer,
// the strict reader, the error type and the one map from errors to status
// codes. It is a leaf so that the feature packages whose handlers the
// route table mounts (inventory, enroll) answer exactly like the rest.
package apijson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// WriteJSON writes v with the given status, indented for humans and curl.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// WriteError writes {"error": reason}, cut to its first line.
func WriteError(w http.ResponseWriter, status int, reason string) {
	WriteJSON(w, status, map[string]string{"error": oneLine(reason)})
}

func oneLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// Decode reads one JSON value from the body into v: at most limit bytes
// (over it: 413), no unknown fields, numbers kept as json.Number, nothing
// after the value. An empty body is refused.
func Decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	return decode(w, r, limit, v, false)
}

// DecodeOptional is Decode for bodies that may be left out: an empty body
// leaves v as it is.
func DecodeOptional(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	return decode(w, r, limit, v, true)
}

func decode(w http.ResponseWriter, r *http.Request, limit int64, v any, optional bool) error {
	body, err := ReadBody(w, r, limit)
	if err != nil {
		return err
	}
	if optional && len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return Bad("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Bad("invalid JSON body: trailing data")
	}
	return nil
}

// ReadBody reads the whole body, at most limit bytes; a larger body is an
// error that answers 413.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, fmt.Errorf("read body: %w", err)
	case err != nil:
		return nil, Bad("could not read the body")
	}
	return body, nil
}

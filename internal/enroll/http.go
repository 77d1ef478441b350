package enroll

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/storage"
)

func (h *Handler) listCerts(w http.ResponseWriter, r *http.Request) {
	after, limit, ok := h.page(w, r)
	if !ok {
		return
	}
	certs, err := h.store.ListCerts(r.Context(), after, limit)
	if err != nil {
		h.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"certificates": nonNil(certs)})
}

func (h *Handler) revokeCert(w http.ResponseWriter, r *http.Request) {
	serial := strings.ToLower(strings.TrimLeft(r.PathValue("serial"), "0"))
	if _, err := hex.DecodeString(strings.Repeat("0", len(serial)%2) + serial); err != nil || serial == "" {
		h.fail(w, http.StatusBadRequest, errors.New("serial must be hexadecimal"))
		return
	}
	if err := h.store.RevokeCert(r.Context(), serial, h.now()); err != nil {
		h.storeError(w, err)
		return
	}
	h.log.Info("enroll: certificate revoked", "serial", serial)
	w.WriteHeader(http.StatusNoContent)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// fail answers a one-line JSON error; 5xx details go to the log only.
func (h *Handler) fail(w http.ResponseWriter, status int, err error) {
	msg := err.Error()
	if status >= 500 {
		h.log.Error("enroll: internal error", "err", err)
		msg = "internal error"
	}
	writeJSON(w, status, errorBody{Error: strings.ReplaceAll(msg, "\n", " ")})
}

func (h *Handler) storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		h.fail(w, http.StatusNotFound, err)
	case errors.Is(err, storage.ErrGone):
		h.fail(w, http.StatusGone, errors.New("this enrollment link was already used or has expired"))
	case errors.Is(err, storage.ErrConflict):
		h.fail(w, http.StatusConflict, err)
	default:
		h.fail(w, http.StatusInternalServerError, err)
	}
}

func (h *Handler) decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := h.readBody(w, r, maxJSONBody)
	if !ok {
		return false
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		h.fail(w, http.StatusBadRequest, fmt.Errorf("bad JSON body: %v", err))
		return false
	}
	if dec.More() {
		h.fail(w, http.StatusBadRequest, errors.New("bad JSON body: trailing data"))
		return false
	}
	return true
}

func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", limit))
		} else {
			h.fail(w, http.StatusBadRequest, errors.New("could not read body"))
		}
		return nil, false
	}
	return body, true
}

// page reads ?after=&limit= (default 100, at most 1000).
func (h *Handler) page(w http.ResponseWriter, r *http.Request) (string, int, bool) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			h.fail(w, http.StatusBadRequest, errors.New("limit must be 1 to 1000"))
			return "", 0, false
		}
		limit = n
	}
	return q.Get("after"), limit, true
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b
}

func randomToken(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }
func randomHex(n int) string   { return hex.EncodeToString(randomBytes(n)) }

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

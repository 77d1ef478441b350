package enroll

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
)

// ListCerts serves GET /v1/certificates.
func (h *Handler) ListCerts(w http.ResponseWriter, r *http.Request) {
	after, limit, ok := h.page(w, r)
	if !ok {
		return
	}
	certs, err := h.store.ListCerts(r.Context(), after, limit)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"certificates": nonNil(certs)})
}

// RevokeCert serves POST /v1/certificates/{serial}/revoke.
func (h *Handler) RevokeCert(w http.ResponseWriter, r *http.Request) {
	serial := strings.ToLower(strings.TrimLeft(r.PathValue("serial"), "0"))
	if _, err := hex.DecodeString(strings.Repeat("0", len(serial)%2) + serial); err != nil || serial == "" {
		h.fail(w, http.StatusBadRequest, errors.New("serial must be hexadecimal"))
		return
	}
	if err := h.store.RevokeCert(r.Context(), serial, h.now()); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	h.log.Info("enroll: certificate revoked", "serial", serial)
	w.WriteHeader(http.StatusNoContent)
}

// fail answers a one-line JSON error; 5xx details go to the log only.
func (h *Handler) fail(w http.ResponseWriter, status int, err error) {
	if status >= 500 {
		h.log.Error("enroll: internal error", "err", err)
		status, err = http.StatusInternalServerError, errors.New("internal server error")
	}
	apijson.WriteError(w, status, err.Error())
}

// decodeJSON reads an optional JSON body (empty means {}), answering the
// error itself when it cannot.
func (h *Handler) decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := apijson.DecodeOptional(w, r, maxJSONBody, v); err != nil {
		apijson.Fail(w, r, h.log, err)
		return false
	}
	return true
}

func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := apijson.ReadBody(w, r, limit)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
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

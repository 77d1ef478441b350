package enroll

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/storage"
)

// Serial import limits, as admins know them from other MDM consoles.
const (
	MaxSerialRows     = 5000
	MaxSerialCSVBytes = 5 << 20
	MaxDetailsChars   = 128
)

// ParseSerialCSV reads a two-column CSV without header (serial, details).
// It returns every problem with its line number, or the rows.
func ParseSerialCSV(data []byte) ([]storage.SerialAssignment, []string) {
	if len(data) > MaxSerialCSVBytes {
		return nil, []string{fmt.Sprintf("file larger than %d bytes", MaxSerialCSVBytes)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM from spreadsheets
	rd := csv.NewReader(bytes.NewReader(data))
	rd.FieldsPerRecord = -1
	rd.TrimLeadingSpace = true
	var (
		rows     []storage.SerialAssignment
		problems []string
		seen     = map[string]int{}
	)
	bad := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
	}
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad(pe.Line, "%v", pe.Err)
			} else {
				problems = append(problems, err.Error())
			}
			break
		}
		line, _ := rd.FieldPos(0) // only after a good read: FieldPos panics on a failed one
		if len(rows)+len(problems) >= MaxSerialRows {
			problems = append(problems, fmt.Sprintf("more than %d rows", MaxSerialRows))
			break
		}
		if len(rec) != 2 {
			bad(line, "want 2 columns (serial, details), got %d", len(rec))
			continue
		}
		serial, details := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		switch {
		case !validSerial(serial):
			bad(line, "serial %q is not 1 to 64 letters and digits", clip(serial))
		case !utf8.ValidString(details):
			bad(line, "details are not UTF-8")
		case utf8.RuneCountInString(details) > MaxDetailsChars:
			bad(line, "details longer than %d characters", MaxDetailsChars)
		case seen[strings.ToUpper(serial)] != 0:
			bad(line, "serial %s repeats line %d", serial, seen[strings.ToUpper(serial)])
		default:
			seen[strings.ToUpper(serial)] = line
			rows = append(rows, storage.SerialAssignment{Serial: strings.ToUpper(serial), Details: details})
		}
	}
	if len(rows) == 0 && len(problems) == 0 {
		problems = append(problems, "the file has no rows")
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return rows, nil
}

func validSerial(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ImportSerials: POST /v1/configurator/serials?profile_id=ID[&overwrite=true], body the CSV.
func (h *Handler) ImportSerials(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	profileID := q.Get("profile_id")
	if profileID == "" {
		h.fail(w, http.StatusBadRequest, errors.New("profile_id query parameter is required"))
		return
	}
	overwrite := false
	switch q.Get("overwrite") {
	case "", "false":
	case "true":
		overwrite = true
	default:
		h.fail(w, http.StatusBadRequest, errors.New("overwrite must be true or false"))
		return
	}
	body, ok := h.readBody(w, r, MaxSerialCSVBytes)
	if !ok {
		return
	}
	rows, problems := ParseSerialCSV(body)
	if len(problems) > 0 {
		apijson.WriteJSON(w, http.StatusBadRequest, map[string]any{
			"error":    fmt.Sprintf("CSV refused, nothing imported: %s", problems[0]),
			"problems": problems,
		})
		return
	}
	now := h.now()
	for i := range rows {
		rows[i].ProfileID, rows[i].AddedAt, rows[i].UpdatedAt = profileID, now, now
	}
	res, err := h.store.ImportSerials(r.Context(), rows, overwrite)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, res)
}

// ListSerials serves GET /v1/configurator/serials.
func (h *Handler) ListSerials(w http.ResponseWriter, r *http.Request) {
	after, limit, ok := h.page(w, r)
	if !ok {
		return
	}
	out, err := h.store.ListSerials(r.Context(), r.URL.Query().Get("profile_id"), after, limit)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"serials": nonNil(out)})
}

type assignRequest struct {
	Serials   []string `json:"serials"`
	ProfileID string   `json:"profile_id"`
}

// AssignSerials serves POST /v1/configurator/serials/assign.
func (h *Handler) AssignSerials(w http.ResponseWriter, r *http.Request) {
	var req assignRequest
	if !h.decodeJSON(w, r, &req) {
		return
	}
	if req.ProfileID == "" || len(req.Serials) == 0 || len(req.Serials) > MaxSerialRows {
		h.fail(w, http.StatusBadRequest, fmt.Errorf("profile_id and 1 to %d serials are required", MaxSerialRows))
		return
	}
	for i, s := range req.Serials {
		req.Serials[i] = strings.ToUpper(strings.TrimSpace(s))
	}
	if err := h.store.AssignSerials(r.Context(), req.Serials, req.ProfileID, h.now()); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]int{"assigned": len(req.Serials)})
}

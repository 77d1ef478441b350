package enroll

import (
	"context"
	"encoding/csv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/storage"
)

// The enrollment-failures report: every refused attempt with its reason
// code, filtered, paged, as JSON or CSV. The failure log comes first, then
// the SCEP-stage aggregates (their IDs sort after the log's), so one
// cursor pages through both.

const maxFailurePage = 1000

func failurePageLimit(s string) (int, error) {
	if s == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxFailurePage {
		return 0, apijson.Bad("limit must be 1..%d", maxFailurePage)
	}
	return n, nil
}

// csvSafe keeps a spreadsheet from running a device-reported cell as a
// formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// failureFilter is the failures report's filter.
type failureFilter struct {
	reason, method, platform, user, stage string
	since                                 time.Time
}

func (f failureFilter) match(x *storage.EnrollmentFailure) bool {
	return (f.reason == "" || x.Code == f.reason) && (f.method == "" || x.Method == f.method) && (f.stage == "" || x.Stage == f.stage) &&
		(f.platform == "" || strings.EqualFold(x.Platform, f.platform)) && (f.user == "" || x.User == f.user) &&
		(f.since.IsZero() || !x.At.Before(f.since))
}

var failureParams = []string{"reason", "method", "platform", "user", "stage", "since", "after", "limit"}

// ListFailures serves GET /v1/enrollment/failures (JSON) and
// /v1/enrollment/failures.csv, oldest first, filtered and paged.
func (h *Handler) ListFailures(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(failureParams, k) {
			apijson.Fail(w, r, h.log, apijson.Bad("unknown parameter %q (have: %s)", k, strings.Join(failureParams, ", ")))
			return
		}
	}
	f := failureFilter{reason: q.Get("reason"), method: q.Get("method"), platform: q.Get("platform"), user: strings.ToLower(q.Get("user")),
		stage: q.Get("stage")}
	if err := apijson.TimeRange(q, &f.since, nil); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	limit, err := failurePageLimit(q.Get("limit"))
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	csvOut := strings.HasSuffix(r.URL.Path, ".csv")
	if csvOut && !q.Has("limit") {
		limit = storage.MaxEnrollmentFailures
	}
	if h.scepRefusals != nil {
		// This replica's latest SCEP refusals, so the report is current.
		if err := h.scepRefusals.Flush(r.Context()); err != nil {
			h.log.Error("write SCEP refusals", "err", err)
		}
	}
	// Both records are bounded (storage.MaxEnrollmentFailures,
	// storage.MaxSCEPFailures), so a scan of them for a filtered page stays
	// small.
	var out []storage.EnrollmentFailure
	after, next := q.Get("after"), ""
	for _, list := range []func(ctx context.Context, after string, limit int) ([]storage.EnrollmentFailure, error){
		h.store.ListEnrollmentFailures, h.store.ListSCEPFailures} {
		for len(out) < limit {
			page, err := list(r.Context(), after, maxFailurePage)
			if err != nil {
				apijson.Fail(w, r, h.log, err)
				return
			}
			for i := range page {
				after = page[i].ID
				if f.match(&page[i]) && len(out) < limit {
					out = append(out, page[i])
				}
			}
			if len(page) < maxFailurePage {
				break
			}
		}
		if !storage.IsSCEPFailureID(after) {
			after = "" // the log is done: the aggregates from their first
		}
	}
	if len(out) == limit {
		next = out[len(out)-1].ID
	}
	if csvOut {
		writeFailuresCSV(w, out)
		return
	}
	if out == nil {
		out = []storage.EnrollmentFailure{}
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"failures": out, "next": next})
}

func writeFailuresCSV(w http.ResponseWriter, fs []storage.EnrollmentFailure) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="enrollment-failures.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"id", "at", "code", "reason", "method", "stage", "user", "udid", "serial", "imei", "platform", "os_version", "policy", "rule",
		"ref", "count", "first_at", "source"})
	for _, f := range fs {
		count, first := "", ""
		if f.Count > 0 {
			count, first = strconv.Itoa(f.Count), f.FirstAt.UTC().Format(time.RFC3339)
		}
		cw.Write([]string{f.ID, f.At.UTC().Format(time.RFC3339), f.Code, csvSafe(f.Reason), f.Method, f.Stage, csvSafe(f.User),
			csvSafe(f.UDID), csvSafe(f.Serial), csvSafe(f.IMEI), f.Platform, csvSafe(f.OSVersion), f.Policy, f.Rule,
			csvSafe(f.Ref), count, first, f.Source})
	}
	cw.Flush()
}

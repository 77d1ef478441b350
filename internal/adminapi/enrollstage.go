package adminapi

import (
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/enrollstage"
)

// incompleteQuery reads the report's parameters: since (RFC 3339 or a
// date), platform, section, after and limit.
func incompleteQuery(r *http.Request, defaultLimit int) (enrollstage.Query, error) {
	q := r.URL.Query()
	out := enrollstage.Query{Platform: q.Get("platform"), Section: q.Get("section"), After: q.Get("after"), Limit: defaultLimit}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, s); err != nil {
				return out, apijson.Bad("since: a date (2026-12-01) or an RFC 3339 time")
			}
		}
		out.Since = t
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			return out, apijson.Bad("limit must be 1..%d", maxPage)
		}
		out.Limit = n
	}
	return out, nil
}

// listIncomplete serves GET /v1/enrollment/incomplete.
func (a *API) listIncomplete(w http.ResponseWriter, r *http.Request) {
	q, err := incompleteQuery(r, 100)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	rep, err := a.stages.Incomplete(r.Context(), q)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, rep)
}

// exportIncomplete serves GET /v1/enrollment/incomplete.csv: every row of
// the report (up to maxExport unless limit is given).
func (a *API) exportIncomplete(w http.ResponseWriter, r *http.Request) {
	q, err := incompleteQuery(r, maxExport)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	rep, err := a.stages.Incomplete(r.Context(), q)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="orchard-incomplete-enrollments.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"session_id", "username", "method", "platform", "serial", "udid", "model", "os_version", "started_at",
		"last_stage", "last_stage_at", "section", "time_spent_seconds", "enrolled", "abandoned", "took_over_30_minutes", "slow_stage"})
	for _, x := range rep.Rows {
		cw.Write([]string{x.SessionID, x.Username, x.Method, csvSafe(x.Platform), csvSafe(x.Serial), csvSafe(x.UDID), csvSafe(x.Model),
			csvSafe(x.OSVersion), x.StartedAt.Format(time.RFC3339), x.LastStage, x.LastStageAt.Format(time.RFC3339), x.Section,
			strconv.FormatInt(x.TimeSpentSeconds, 10), strconv.FormatBool(x.Enrolled), strconv.FormatBool(x.Abandoned),
			strconv.FormatBool(x.TookOver30Minutes), x.SlowStage})
	}
	cw.Flush()
	if err := cw.Error(); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		a.log.WarnContext(r.Context(), "incomplete-enrollment export cut short", "err", err)
	}
}

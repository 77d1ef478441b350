package adminapi

import (
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/storage"
)

// maxFilterLen bounds the text filters of the command log.
const maxFilterLen = 256

// commandLogQuery reads the GET /v1/commands parameters: request_type,
// status, sender, since, until (RFC 3339, or a duration ago), before (a page's next) and limit
// (1..maxLimit, default 50).
func commandLogQuery(r *http.Request, maxLimit int) (storage.CommandFilter, error) {
	q := r.URL.Query()
	f := storage.CommandFilter{RequestType: q.Get("request_type"), Sender: q.Get("sender"), Limit: 50}
	for _, p := range []struct{ name, v string }{{"request_type", f.RequestType}, {"sender", f.Sender}} {
		if len(p.v) > maxFilterLen || strings.ContainsRune(p.v, 0) {
			return f, apijson.Bad("%s must be at most %d bytes of text", p.name, maxFilterLen)
		}
	}
	if s := q.Get("status"); s != "" {
		for _, st := range storage.TargetStatuses {
			if strings.EqualFold(s, string(st)) {
				f.Status = st
			}
		}
		if f.Status == "" {
			names := make([]string, len(storage.TargetStatuses))
			for i, st := range storage.TargetStatuses {
				names[i] = string(st)
			}
			return f, apijson.Bad("status must be one of %s", strings.Join(names, ", "))
		}
	}
	if err := apijson.TimeRange(q, &f.Since, &f.Until); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, apijson.Bad("since must be before until")
	}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return f, apijson.Bad("before must be a positive integer (a page's next)")
		}
		f.Before = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return f, apijson.Bad("limit must be 1..%d", maxLimit)
		}
		f.Limit = n
	}
	return f, nil
}

// listCommands serves GET /v1/commands: every command target of the fleet,
// newest first, filtered; next is the before of the following page (""
// at the end). A page may be short, even empty, and still have a next when
// the filters matched little of the part of the log one page examines.
func (a *API) listCommands(w http.ResponseWriter, r *http.Request) {
	f, err := commandLogQuery(r, maxPage)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	page, next, err := a.cmdlog.ListCommands(r.Context(), f)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	out := make([]ChannelCommandView, 0, len(page))
	for i := range page {
		v := channelCommandView(&page[i])
		v.ChannelID = page[i].Target.ChannelID
		out = append(out, v)
	}
	body := map[string]any{"commands": out, "next": ""}
	if next != 0 {
		body["next"] = strconv.FormatUint(next, 10)
	}
	apijson.WriteJSON(w, http.StatusOK, body)
}

// exportCommands serves GET /v1/commands.csv: the same entries and
// filters, up to limit (default and most maxExport) rows, reading the log
// page after page.
func (a *API) exportCommands(w http.ResponseWriter, r *http.Request) {
	f, err := commandLogQuery(r, maxExport)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	want := maxExport
	if r.URL.Query().Has("limit") {
		want = f.Limit
	}
	var rows []storage.ChannelCommand
	for len(rows) < want {
		f.Limit = min(want-len(rows), maxPage)
		page, next, err := a.cmdlog.ListCommands(r.Context(), f)
		if err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
		rows = append(rows, page...)
		if next == 0 {
			break
		}
		f.Before = next
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="orchard-commands.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"queued_at", "command_uuid", "request_type", "sender", "channel_id", "status", "updated_at", "answered_at", "error"})
	for i := range rows {
		v := channelCommandView(&rows[i])
		answered, errText := "", ""
		if v.AnsweredAt != nil {
			answered = v.AnsweredAt.Format(time.RFC3339Nano)
		}
		if len(v.ErrorChain) > 0 {
			e := v.ErrorChain[0]
			errText = strconv.Itoa(e.ErrorCode) + " " + e.ErrorDomain + " " + e.USEnglishDescription
		}
		cw.Write([]string{v.CreatedAt.Format(time.RFC3339Nano), csvSafe(v.UUID), csvSafe(v.RequestType), csvSafe(v.Sender),
			csvSafe(rows[i].Target.ChannelID), string(v.Status), v.UpdatedAt.Format(time.RFC3339Nano), answered, csvSafe(strings.TrimSpace(errText))})
	}
	cw.Flush()
	if err := cw.Error(); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		a.log.WarnContext(r.Context(), "command export cut short", "err", err)
	}
}

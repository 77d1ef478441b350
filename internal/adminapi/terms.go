package adminapi

import (
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/terms"
	"github.com/orchardmdm/orchard/storage"
)

// maxTermsBody bounds a terms document's request: 256 KiB of text, which
// JSON escaping can make several times longer.
const maxTermsBody = 2 << 20

// TermsListing is a document in the list: everything but its text.
type TermsListing struct {
	Name                string    `json:"name"`
	Title               string    `json:"title"`
	Summary             string    `json:"summary,omitempty"`
	Version             int       `json:"version"`
	RequireReacceptance bool      `json:"require_reacceptance"`
	ReacceptFrom        int       `json:"reaccept_from"`
	AllUsers            bool      `json:"all_users"`
	Groups              []string  `json:"groups,omitempty"`
	UpdatedAt           time.Time `json:"updated_at"`
}

// TermsVersionInfo is one entry of a document's history.
type TermsVersionInfo struct {
	Version             int       `json:"version"`
	RequireReacceptance bool      `json:"require_reacceptance"`
	CreatedAt           time.Time `json:"created_at"`
}

// TermsView is one version of a document with its text, and the history.
type TermsView struct {
	storage.TermsDocument
	Versions []TermsVersionInfo `json:"versions"`
}

func (a *API) listTerms(w http.ResponseWriter, r *http.Request) {
	after, limit, err := page(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	ds, err := a.terms.Store().ListTerms(r.Context(), after, limit)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	out := make([]TermsListing, 0, len(ds))
	for _, d := range ds {
		out = append(out, TermsListing{Name: d.Name, Title: d.Title, Summary: d.Summary, Version: d.Version,
			RequireReacceptance: d.RequireReacceptance, ReacceptFrom: d.ReacceptFrom, AllUsers: d.AllUsers, Groups: d.Groups, UpdatedAt: d.CreatedAt})
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"terms": out})
}

func (a *API) createTerms(w http.ResponseWriter, r *http.Request) {
	var nd terms.NewDocument
	if err := apijson.Decode(w, r, maxTermsBody, &nd); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	d, err := a.terms.Create(r.Context(), nd)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	a.writeTerms(w, r, http.StatusCreated, d)
}

// writeTerms answers a version of a document with the history.
func (a *API) writeTerms(w http.ResponseWriter, r *http.Request, status int, d *storage.TermsDocument) {
	vs, err := a.terms.Store().ListTermsVersions(r.Context(), d.Name)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	v := TermsView{TermsDocument: *d, Versions: make([]TermsVersionInfo, 0, len(vs))}
	for _, x := range vs {
		v.Versions = append(v.Versions, TermsVersionInfo{Version: x.Version, RequireReacceptance: x.RequireReacceptance, CreatedAt: x.CreatedAt})
	}
	apijson.WriteJSON(w, status, v)
}

// showTerms serves GET /v1/terms/{name}, the current version or, with
// ?version=N, an older one.
func (a *API) showTerms(w http.ResponseWriter, r *http.Request) {
	name, err := terms.NormalizeName(r.PathValue("name"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	var d *storage.TermsDocument
	if s := r.URL.Query().Get("version"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 {
			apijson.WriteError(w, http.StatusBadRequest, "version must be a whole number from 1")
			return
		}
		d, err = a.terms.Store().TermsVersion(r.Context(), name, n)
	} else {
		d, err = a.terms.Store().Terms(r.Context(), name)
	}
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	a.writeTerms(w, r, http.StatusOK, d)
}

func (a *API) updateTerms(w http.ResponseWriter, r *http.Request) {
	var nv terms.NewVersion
	if err := apijson.Decode(w, r, maxTermsBody, &nv); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	d, err := a.terms.Update(r.Context(), r.PathValue("name"), nv)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	a.writeTerms(w, r, http.StatusOK, d)
}

func (a *API) deleteTerms(w http.ResponseWriter, r *http.Request) {
	if err := a.terms.Delete(r.Context(), r.PathValue("name")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func acceptanceFilter(r *http.Request) storage.TermsAcceptanceFilter {
	q := r.URL.Query()
	return storage.TermsAcceptanceFilter{Username: q.Get("user"), Document: q.Get("document")}
}

// listAcceptances serves GET /v1/terms/acceptances: the acceptance report.
func (a *API) listAcceptances(w http.ResponseWriter, r *http.Request) {
	after, limit, err := page(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	rows, next, err := a.terms.Report(r.Context(), acceptanceFilter(r), after, limit)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"acceptances": rows, "next": next})
}

// exportAcceptances serves GET /v1/terms/acceptances.csv: the same report
// as a spreadsheet, every row that matches (up to maxExport).
func (a *API) exportAcceptances(w http.ResponseWriter, r *http.Request) {
	after, limit, err := page(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if !r.URL.Query().Has("limit") {
		limit = maxExport
	}
	rows, _, err := a.terms.Report(r.Context(), acceptanceFilter(r), after, limit)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="orchard-terms-acceptances.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"username", "document", "version", "accepted_at", "accepted_latest", "current_version", "address", "user_agent"})
	for _, x := range rows {
		cw.Write([]string{x.Username, x.Document, strconv.Itoa(x.Version), x.AcceptedAt.Format(time.RFC3339Nano),
			strconv.FormatBool(x.AcceptedLatest), strconv.Itoa(x.CurrentVersion), csvSafe(x.Address), csvSafe(x.UserAgent)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		a.log.WarnContext(r.Context(), "acceptance export cut short", "err", err)
	}
}

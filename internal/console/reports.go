package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/enrollstage"
	"github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// The enrollment reports: failures, incomplete user enrollments and the
// summary, with their CSV exports read through the API as the admin.

func (c *Console) reportRoutes() []route {
	return []route{
		{"GET " + Prefix + "/reports", c.reports},
		{"GET " + Prefix + "/reports/failures", filteredReport[storage.EnrollmentFailure](c, "failures", "Enrollment failures",
			"/reports/failures", "/v1/enrollment/failures", "failures", failureFilters)},
		{"GET " + Prefix + "/reports/failures.csv", c.exportCSV("/v1/enrollment/failures.csv", failureFilters, "orchard-enrollment-failures.csv")},
		{"GET " + Prefix + "/reports/incomplete", c.incomplete},
		{"GET " + Prefix + "/reports/incomplete.csv", c.exportCSV("/v1/enrollment/incomplete.csv", incompleteFilters, "orchard-incomplete-enrollments.csv")},
		{"GET " + Prefix + "/reports/summary", c.summary},
	}
}

// The filters each report takes from the page's query (and passes on).
var (
	failureFilters    = []string{"reason", "method", "platform", "user", "since"}
	incompleteFilters = []string{"since", "platform", "section"}
	acceptanceFilters = []string{"user", "document"}
)

// filtersOf reads the named filters from a request's query, trimmed.
func filtersOf(r *http.Request, names []string) map[string]string {
	out := make(map[string]string, len(names))
	for _, k := range names {
		out[k] = strings.TrimSpace(r.URL.Query().Get(k))
	}
	return out
}

// withAfter is a report's filters and the page's cursor, for the API.
func withAfter(r *http.Request, filters map[string]string) map[string]string {
	out := map[string]string{"after": r.URL.Query().Get("after")}
	for k, v := range filters {
		out[k] = v
	}
	return out
}

// csvURL is a console export's link with the filters that are set.
func csvURL(path string, filters map[string]string) string {
	v := url.Values{}
	for k, s := range filters {
		if s != "" {
			v.Set(k, s)
		}
	}
	if len(v) == 0 {
		return Prefix + path
	}
	return Prefix + path + "?" + v.Encode()
}

// exportCSV serves an API's CSV export to the signed-in admin as a
// download: the same rows, the same access rule and the same audit.
func (c *Console) exportCSV(apiPath string, names []string, filename string) func(http.ResponseWriter, *http.Request, *adminauth.Actor) {
	return func(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
		v := url.Values{}
		for k, s := range filtersOf(r, names) {
			if s != "" {
				v.Set(k, s)
			}
		}
		target := apiPath
		if len(v) > 0 {
			target += "?" + v.Encode()
		}
		body, err := c.callRaw(r, actor, "GET", target, nil)
		var ae *apiError
		switch {
		case errors.As(err, &ae):
			webui.Refuse(w, ae.Status, ae.Reason)
			return
		case err != nil:
			c.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
		_, _ = w.Write(body)
	}
}

// readReport reads a report into out. A filter the API refuses (400) is
// the page again with the API's reason; any other failure is answered
// here (ok false).
func (c *Console) readReport(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor, target string, out any) (webui.FormErrors, bool) {
	err := c.call(r, actor, "GET", target, nil, out)
	var ae *apiError
	switch {
	case err == nil:
		return nil, true
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		return webui.FormErrors{"": ae.Reason}, true
	}
	c.show(w, r, actor, err)
	return nil, false
}

func (c *Console) reports(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	c.render(w, r, http.StatusOK, "reports", actor, &webui.Page{Title: "Reports"})
}

// filtered is a paged, filtered report as its page shows it.
type filtered[T any] struct {
	F    map[string]string
	Rows []T
	Next string
	path string // the page's, below Prefix; its CSV is at path.csv
}

// NextURL is the following page's link with the same filters.
func (d filtered[T]) NextURL() string { return pageURL(d.path, d.F, d.Next) }

// CSV is the export's link with the same filters.
func (d filtered[T]) CSV() string { return csvURL(d.path+".csv", d.F) }

// filteredReport serves a report page at path: the filters named from the
// query, one page of rows (the answer's key field) from the API, the next
// page's link and the CSV link.
func filteredReport[T any](c *Console, tmpl, title, path, apiPath, key string, names []string) func(http.ResponseWriter, *http.Request, *adminauth.Actor) {
	return func(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
		d := filtered[T]{F: filtersOf(r, names), path: path}
		var m map[string]json.RawMessage
		errs, ok := c.readReport(w, r, actor, query(apiPath, withAfter(r, d.F)), &m)
		if !ok {
			return
		}
		if err := decodeJSON(m[key], &d.Rows); err != nil {
			c.fail(w, r, err)
			return
		}
		if err := decodeJSON(m["next"], &d.Next); err != nil {
			c.fail(w, r, err)
			return
		}
		c.render(w, r, http.StatusOK, tmpl, actor, &webui.Page{Title: title, Data: d, Errors: errs})
	}
}

type incompleteData struct {
	F        map[string]string
	Report   enrollstage.Report
	Sections []string
}

// NextURL is the following page's link with the same filters.
func (d incompleteData) NextURL() string { return pageURL("/reports/incomplete", d.F, d.Report.Next) }

// CSV is the export's link with the same filters.
func (d incompleteData) CSV() string { return csvURL("/reports/incomplete.csv", d.F) }

// RatePercent is the incomplete rate as a percentage.
func (d incompleteData) RatePercent() float64 { return d.Report.Rate * 100 }

func (c *Console) incomplete(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d := incompleteData{F: filtersOf(r, incompleteFilters), Sections: []string{"sign-in", "terms", "category", "profile"}}
	args := withAfter(r, d.F)
	errs, ok := c.readReport(w, r, actor, query("/v1/enrollment/incomplete", args), &d.Report)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "incomplete", actor, &webui.Page{Title: "Incomplete enrollments", Data: d, Errors: errs})
}

type summaryData struct {
	Days    string
	Summary policy.Summary
}

func (c *Console) summary(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d := summaryData{Days: strings.TrimSpace(r.URL.Query().Get("days"))}
	if d.Days == "" {
		d.Days = "30"
	}
	errs, ok := c.readReport(w, r, actor, "/v1/enrollment/summary?days="+url.QueryEscape(d.Days), &d.Summary)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "summary", actor, &webui.Page{Title: "Enrollment summary", Data: d, Errors: errs})
}

package adminapi

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/directory"
	enrollpolicy "github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// The enrollment-policy routes: policies, corporate identifiers, device
// enrollment managers, ownership, and the enrollment reports.

// policyRequest is a policy as an admin writes it.
type policyRequest struct {
	Kind        string                          `json:"kind"`
	Name        string                          `json:"name"`
	Description string                          `json:"description"`
	Priority    int                             `json:"priority"`
	Groups      []string                        `json:"groups"`
	Platforms   map[string]storage.PlatformRule `json:"platforms"`
	DeviceLimit int                             `json:"device_limit"`
}

func (p policyRequest) record(id string) storage.EnrollmentPolicy {
	return storage.EnrollmentPolicy{ID: id, Kind: p.Kind, Name: p.Name, Description: p.Description, Priority: p.Priority,
		Groups: p.Groups, Platforms: p.Platforms, DeviceLimit: p.DeviceLimit}
}

type policyAnswer struct {
	Policy   *storage.EnrollmentPolicy `json:"policy"`
	Warnings []string                  `json:"warnings"`
}

func (a *API) listPolicies(w http.ResponseWriter, r *http.Request) {
	all, err := a.policy.Policies(r.Context())
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"policies": all})
}

func (a *API) showPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := a.policy.Policy(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, p)
}

func (a *API) savePolicy(w http.ResponseWriter, r *http.Request) {
	var req policyRequest
	if err := apijson.Decode(w, r, 1<<20, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	id, status := r.PathValue("id"), http.StatusOK
	if r.Method == http.MethodPost {
		status = http.StatusCreated
	}
	p, warnings, err := a.policy.Save(r.Context(), req.record(id))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if warnings == nil {
		warnings = []string{}
	}
	apijson.WriteJSON(w, status, policyAnswer{Policy: p, Warnings: warnings})
}

func (a *API) deletePolicy(w http.ResponseWriter, r *http.Request) {
	if err := a.policy.Delete(r.Context(), r.PathValue("id")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decide serves POST /v1/enrollment/decide: what the engine would answer
// an attempt, with nothing written (to check a policy before devices meet it).
func (a *API) decide(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User      string `json:"user"`
		Method    string `json:"method"`
		Platform  string `json:"platform"`
		OSVersion string `json:"os_version"`
		DeviceID  string `json:"device_id"`
		Serial    string `json:"serial"`
		IMEI      string `json:"imei"`
		Model     string `json:"model"`
	}
	if err := apijson.Decode(w, r, 64<<10, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	d, err := a.policy.Decide(r.Context(), enrollpolicy.Attempt{User: strings.ToLower(req.User), Method: req.Method, Platform: req.Platform,
		OSVersion: req.OSVersion, DeviceID: req.DeviceID, Serial: req.Serial, IMEI: req.IMEI, Model: req.Model})
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, d)
}

func identifierKind(s string) (string, error) {
	switch s {
	case storage.IdentifierSerial, storage.IdentifierIMEI:
		return s, nil
	}
	return "", apijson.Bad("kind must be serial or imei")
}

// listCorporateIDs serves GET /v1/corporate-identifiers?kind=&q=&after=&limit=.
func (a *API) listCorporateIDs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := q.Get("kind")
	if kind != "" {
		if _, err := identifierKind(kind); err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
	}
	limit, err := pageLimit(q.Get("limit"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	prefix := q.Get("q")
	if kind != "" {
		prefix = enrollpolicy.NormaliseIdentifier(kind, prefix)
	}
	ids, err := a.policy.Store().ListCorporateIdentifiers(r.Context(), kind, prefix, q.Get("after"), limit)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if ids == nil {
		ids = []storage.CorporateIdentifier{}
	}
	next := ""
	if len(ids) == limit {
		next = ids[len(ids)-1].Value
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"identifiers": ids, "next": next})
}

func pageLimit(s string) (int, error) {
	if s == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPage {
		return 0, apijson.Bad("limit must be 1..%d", maxPage)
	}
	return n, nil
}

// addCorporateIDs serves POST /v1/corporate-identifiers: a JSON list.
func (a *API) addCorporateIDs(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Kind        string `json:"kind"`
		Overwrite   bool   `json:"overwrite"`
		Identifiers []struct {
			Value   string `json:"value"`
			Details string `json:"details"`
		} `json:"identifiers"`
	}
	if err := apijson.Decode(w, r, enrollpolicy.MaxImportBytes, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	kind, err := identifierKind(req.Kind)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if len(req.Identifiers) == 0 || len(req.Identifiers) > enrollpolicy.MaxImportRows {
		apijson.Fail(w, r, a.log, apijson.Bad("identifiers: 1 to %d of them", enrollpolicy.MaxImportRows))
		return
	}
	// The same checks as a CSV: one path, one set of rules.
	var b strings.Builder
	cw := csv.NewWriter(&b)
	for _, id := range req.Identifiers {
		cw.Write([]string{id.Value, id.Details})
	}
	cw.Flush()
	a.importCorporate(w, r, kind, []byte(b.String()), req.Overwrite)
}

// importCorporateIDs serves POST /v1/corporate-identifiers/import?kind=&overwrite=:
// a two-column CSV without header.
func (a *API) importCorporateIDs(w http.ResponseWriter, r *http.Request) {
	kind, err := identifierKind(r.URL.Query().Get("kind"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	overwrite := false
	if s := r.URL.Query().Get("overwrite"); s != "" {
		if overwrite, err = strconv.ParseBool(s); err != nil {
			apijson.Fail(w, r, a.log, apijson.Bad("overwrite must be true or false"))
			return
		}
	}
	body, err := apijson.ReadBody(w, r, enrollpolicy.MaxImportBytes)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	a.importCorporate(w, r, kind, body, overwrite)
}

func (a *API) importCorporate(w http.ResponseWriter, r *http.Request, kind string, data []byte, overwrite bool) {
	rows, problems := enrollpolicy.ParseIdentifierCSV(kind, data)
	if len(problems) > 0 {
		apijson.Fail(w, r, a.log, &apijson.Error{Status: http.StatusBadRequest,
			Msg: "nothing imported: " + problems[0], Fields: map[string]any{"problems": problems}})
		return
	}
	res, err := a.policy.ImportIdentifiers(r.Context(), rows, overwrite)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if res.Conflicts == nil {
		res.Conflicts = []storage.CorporateIdentifier{}
	}
	apijson.WriteJSON(w, http.StatusOK, res)
}

func (a *API) deleteCorporateID(w http.ResponseWriter, r *http.Request) {
	kind, err := identifierKind(r.PathValue("kind"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if err := a.policy.Store().DeleteCorporateIdentifier(r.Context(), kind, enrollpolicy.NormaliseIdentifier(kind, r.PathValue("value"))); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// userLimit serves GET /v1/users/{username}/limit.
func (a *API) userLimit(w http.ResponseWriter, r *http.Request) {
	name, err := directory.NormalizeName("username", r.PathValue("username"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	l, err := a.policy.UserLimit(r.Context(), name)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, l)
}

// setDEM serves PUT /v1/users/{username}/dem: {"dem": true} makes the user
// a device enrollment manager.
func (a *API) setDEM(w http.ResponseWriter, r *http.Request) {
	name, err := directory.NormalizeName("username", r.PathValue("username"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	var req struct {
		DEM *bool `json:"dem"`
	}
	if err := apijson.Decode(w, r, 4<<10, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if req.DEM == nil {
		apijson.Fail(w, r, a.log, apijson.Bad("dem (true or false) is required"))
		return
	}
	u, err := a.policy.Store().UpdateUser(r.Context(), name, func(u *storage.DirectoryUser) error {
		u.DEM = *req.DEM
		u.UpdatedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"username": u.Username, "dem": u.DEM})
}

// setOwnership serves PUT /v1/devices/{id}/ownership: {"ownership": "corporate"}.
func (a *API) setOwnership(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := mdm.ParseChannelID(id); err != nil {
		apijson.Fail(w, r, a.log, apijson.Bad("invalid device id: %v", err))
		return
	}
	var req struct {
		Ownership storage.Ownership `json:"ownership"`
	}
	if err := apijson.Decode(w, r, 4<<10, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if err := a.policy.SetOwnership(r.Context(), id, req.Ownership); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "ownership": req.Ownership})
}

// summary serves GET /v1/enrollment/summary?days=30: enrollments per day by
// method, platform and ownership, and each user's devices against their limit.
func (a *API) summary(w http.ResponseWriter, r *http.Request) {
	days := 30
	if s := r.URL.Query().Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 366 {
			apijson.Fail(w, r, a.log, apijson.Bad("days must be 1..366"))
			return
		}
		days = n
	}
	sum, err := a.policy.Summary(r.Context(), time.Now(), days)
	if err != nil {
		apijson.Fail(w, r, a.log, fmt.Errorf("enrollment summary: %w", err))
		return
	}
	apijson.WriteJSON(w, http.StatusOK, sum)
}

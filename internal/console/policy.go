package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// The enrollment policy's pages: platform and device-limit restrictions
// (defaults and group policies by priority), corporate identifiers, and a
// device's ownership (a form on the device page).

func (c *Console) policyRoutes() []route {
	return []route{
		{"GET " + Prefix + "/policy", c.policies},
		{"GET " + Prefix + "/policy/new", c.newPolicy},
		{"POST " + Prefix + "/policy", c.savePolicy},
		{"GET " + Prefix + "/policy/{id}", c.policyPage},
		{"POST " + Prefix + "/policy/{id}", c.savePolicy},
		{"POST " + Prefix + "/policy/{id}/delete", c.deletePolicy},
		{"GET " + Prefix + "/corporate-ids", c.corporateIDs},
		{"POST " + Prefix + "/corporate-ids", c.addCorporateID},
		{"POST " + Prefix + "/corporate-ids/import", c.importCorporateIDs},
		{"POST " + Prefix + "/corporate-ids/overwrite", c.overwriteCorporateIDs},
		{"POST " + Prefix + "/corporate-ids/{kind}/{value}/delete", c.deleteCorporateID},
		{"POST " + Prefix + "/devices/{id}/ownership", c.setOwnership},
	}
}

// rulePlatforms are the platform rules' keys, in the order they are shown.
var rulePlatforms = []string{policy.RuleIOS, policy.RuleMacOS}

// policyRow is a policy in the list, with its rules in words.
type policyRow struct {
	storage.EnrollmentPolicy
	Rules string
}

func describeRules(p *storage.EnrollmentPolicy) string {
	if p.Kind == storage.PolicyLimit {
		if p.DeviceLimit == 1 {
			return "1 device per user"
		}
		return fmt.Sprintf("%d devices per user", p.DeviceLimit)
	}
	var parts []string
	for _, k := range rulePlatforms {
		r, ok := p.Platforms[k]
		switch {
		case !ok || r == (storage.PlatformRule{}):
			parts = append(parts, k+": allowed")
		case r.Block:
			parts = append(parts, k+": blocked")
		default:
			s := k + ":"
			if r.MinOS != "" {
				s += " from " + r.MinOS
			}
			if r.MaxOS != "" {
				s += " up to " + r.MaxOS
			}
			if r.BlockPersonal {
				s += " corporate only"
			}
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

type policiesData struct {
	Platform, Limit []policyRow
	CanEdit         bool
}

func (c *Console) policies(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	var all struct {
		Policies []storage.EnrollmentPolicy `json:"policies"`
	}
	if err := c.call(r, actor, "GET", "/v1/enrollment/policies", nil, &all); err != nil {
		c.show(w, r, actor, err)
		return
	}
	d := policiesData{CanEdit: c.cfg.API.Allows(actor, "POST", "/v1/enrollment/policies")}
	// The API lists defaults first, then by kind and priority; the page
	// shows each kind's group policies by priority with the default last,
	// the order the engine picks them in.
	var defaults []policyRow
	for i := range all.Policies {
		p := policyRow{EnrollmentPolicy: all.Policies[i], Rules: describeRules(&all.Policies[i])}
		switch {
		case p.Default:
			defaults = append(defaults, p)
		case p.Kind == storage.PolicyPlatform:
			d.Platform = append(d.Platform, p)
		default:
			d.Limit = append(d.Limit, p)
		}
	}
	for _, p := range defaults {
		if p.Kind == storage.PolicyPlatform {
			d.Platform = append(d.Platform, p)
		} else {
			d.Limit = append(d.Limit, p)
		}
	}
	c.render(w, r, http.StatusOK, "policies", actor, &webui.Page{Title: "Enrollment policy", Data: d})
}

type policyForm struct {
	Policy    storage.EnrollmentPolicy
	New       bool
	Groups    string
	Rules     []platformForm
	Warnings  []string
	CanEdit   bool
	CanDelete bool
	MaxLimit  int
}

type platformForm struct {
	Key string
	storage.PlatformRule
}

func (c *Console) renderPolicy(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor, p storage.EnrollmentPolicy, isNew bool, warnings []string) {
	f := policyForm{Policy: p, New: isNew, Groups: strings.Join(p.Groups, ", "), Warnings: warnings, MaxLimit: policy.MaxDeviceLimit,
		CanEdit: c.cfg.API.Allows(actor, "POST", "/v1/enrollment/policies")}
	if !isNew {
		f.CanDelete = !p.Default && c.cfg.API.Allows(actor, "DELETE", "/v1/enrollment/policies/"+esc(p.ID))
	}
	for _, k := range rulePlatforms {
		f.Rules = append(f.Rules, platformForm{Key: k, PlatformRule: p.Platforms[k]})
	}
	title := p.Name
	if isNew {
		title = "New " + map[string]string{storage.PolicyPlatform: "platform", storage.PolicyLimit: "device limit"}[p.Kind] + " policy"
	}
	c.render(w, r, http.StatusOK, "policy", actor, &webui.Page{Title: title, Data: f})
}

func (c *Console) newPolicy(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	kind := r.URL.Query().Get("kind")
	if kind != storage.PolicyPlatform && kind != storage.PolicyLimit {
		webui.Refuse(w, http.StatusBadRequest, "bad request: kind must be platform or limit")
		return
	}
	p := storage.EnrollmentPolicy{Kind: kind, Priority: 1}
	if kind == storage.PolicyLimit {
		p.DeviceLimit = 5
	}
	c.renderPolicy(w, r, actor, p, true, nil)
}

func (c *Console) policyPage(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	var p storage.EnrollmentPolicy
	if err := c.call(r, actor, "GET", "/v1/enrollment/policies/"+esc(r.PathValue("id")), nil, &p); err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.renderPolicy(w, r, actor, p, false, nil)
}

// policyBody reads the policy form into the API's request.
func policyBody(r *http.Request) (map[string]any, error) {
	f := r.PostFormValue
	body := map[string]any{"kind": f("kind"), "name": strings.TrimSpace(f("name")), "description": strings.TrimSpace(f("description"))}
	if f("default") != "true" {
		n, err := strconv.Atoi(strings.TrimSpace(f("priority")))
		if err != nil {
			return nil, fmt.Errorf("priority must be a whole number (1 is the highest)")
		}
		body["priority"] = n
		body["groups"] = nameList(f("groups"))
	}
	switch f("kind") {
	case storage.PolicyLimit:
		n, err := strconv.Atoi(strings.TrimSpace(f("device_limit")))
		if err != nil {
			return nil, fmt.Errorf("device limit must be a whole number")
		}
		body["device_limit"] = n
	case storage.PolicyPlatform:
		rules := map[string]storage.PlatformRule{}
		for _, k := range rulePlatforms {
			rules[k] = storage.PlatformRule{Block: f(k+"-block") == "on", BlockPersonal: f(k+"-personal") == "on",
				MinOS: strings.TrimSpace(f(k + "-min")), MaxOS: strings.TrimSpace(f(k + "-max"))}
		}
		body["platforms"] = rules
	}
	return body, nil
}

// savePolicy creates (POST /console/policy) or replaces a policy through
// the API; the API's warnings (a default that blocks iOS/iPadOS or macOS
// refuses ADE devices too) are shown on the page the post answers.
func (c *Console) savePolicy(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	id := r.PathValue("id")
	back := Prefix + "/policy/new?kind=" + esc(r.PostFormValue("kind"))
	method, target := "POST", "/v1/enrollment/policies"
	if id != "" {
		back, method, target = Prefix+"/policy/"+esc(id), "PUT", target+"/"+esc(id)
	}
	body, err := policyBody(r)
	if err != nil {
		c.site.Redirect(w, r, back, webui.Flash{Error: true, Message: err.Error()})
		return
	}
	var ans struct {
		Policy   storage.EnrollmentPolicy `json:"policy"`
		Warnings []string                 `json:"warnings"`
	}
	if err := c.call(r, actor, method, target, body, &ans); err != nil {
		c.after(w, r, back, err, "")
		return
	}
	if len(ans.Warnings) == 0 {
		c.site.Redirect(w, r, Prefix+"/policy", webui.Flash{Message: "Policy " + ans.Policy.Name + " saved."})
		return
	}
	c.renderPolicy(w, r, actor, ans.Policy, false, ans.Warnings)
}

func (c *Console) deletePolicy(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	err := c.call(r, actor, "DELETE", "/v1/enrollment/policies/"+esc(r.PathValue("id")), nil, nil)
	c.afterTo(w, r, err, Prefix+"/policy", Prefix+"/policy/"+esc(r.PathValue("id")), "Policy deleted.")
}

// Corporate identifiers.

// maxOverwriteForm bounds the conflicts an overwrite form carries (the
// form's size is bounded too); more are overwritten by importing again
// with "overwrite" ticked.
const maxOverwriteForm = 200

type conflictRow struct {
	storage.CorporateIdentifier
	FileDetails string
}

type corporateData struct {
	Kind, Q, Next string
	IDs           []storage.CorporateIdentifier
	CanEdit       bool
	CanDelete     bool
	Result        *storage.CorporateImportResult
	ResultKind    string
	Conflicts     []conflictRow
	CanOverwrite  bool // the conflicts fit one overwrite form
}

// NextURL is the following page's link with the same filters.
func (d corporateData) NextURL() string {
	return pageURL("/corporate-ids", map[string]string{"kind": d.Kind, "q": d.Q}, d.Next)
}

func (c *Console) loadCorporate(r *http.Request, actor *adminauth.Actor, kind, q, after string) (*corporateData, error) {
	d := &corporateData{Kind: kind, Q: q, CanEdit: c.cfg.API.Allows(actor, "POST", "/v1/corporate-identifiers"),
		CanDelete: c.cfg.API.Allows(actor, "DELETE", "/v1/corporate-identifiers/serial/X")}
	var page struct {
		IDs  []storage.CorporateIdentifier `json:"identifiers"`
		Next string                        `json:"next"`
	}
	if err := c.call(r, actor, "GET", query("/v1/corporate-identifiers", map[string]string{"kind": kind, "q": q, "after": after}), nil, &page); err != nil {
		return nil, err
	}
	d.IDs, d.Next = page.IDs, page.Next
	return d, nil
}

func (c *Console) corporateIDs(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	q := r.URL.Query()
	d, err := c.loadCorporate(r, actor, q.Get("kind"), strings.TrimSpace(q.Get("q")), q.Get("after"))
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "corporate", actor, &webui.Page{Title: "Corporate identifiers", Data: d})
}

// importDone renders the list with an import's result: its counts and the
// conflicts, each with the details stored and the ones the import brought.
func (c *Console) importDone(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor, kind string, res *storage.CorporateImportResult, file map[string]string) {
	d, err := c.loadCorporate(r, actor, "", "", "")
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	d.Result, d.ResultKind = res, kind
	for _, x := range res.Conflicts {
		d.Conflicts = append(d.Conflicts, conflictRow{CorporateIdentifier: x, FileDetails: file[x.Value]})
	}
	d.CanOverwrite = !res.Overwritten && len(d.Conflicts) > 0 && len(d.Conflicts) <= maxOverwriteForm
	c.render(w, r, http.StatusOK, "corporate", actor, &webui.Page{Title: "Corporate identifiers", Data: d})
}

type identifierBody struct {
	Value   string `json:"value"`
	Details string `json:"details"`
}

// addIdentifiers posts identifiers of one kind as JSON and shows the result.
func (c *Console) addIdentifiers(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor, kind string, ids []identifierBody, overwrite bool) {
	var res storage.CorporateImportResult
	err := c.call(r, actor, "POST", "/v1/corporate-identifiers", map[string]any{"kind": kind, "overwrite": overwrite, "identifiers": ids}, &res)
	if err != nil {
		c.after(w, r, Prefix+"/corporate-ids", err, "")
		return
	}
	file := map[string]string{}
	for _, id := range ids {
		file[policy.NormaliseIdentifier(kind, id.Value)] = id.Details
	}
	c.importDone(w, r, actor, kind, &res, file)
}

func (c *Console) addCorporateID(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	c.addIdentifiers(w, r, actor, r.PostFormValue("kind"), []identifierBody{{Value: strings.TrimSpace(r.PostFormValue("value")),
		Details: strings.TrimSpace(r.PostFormValue("details"))}}, r.PostFormValue("overwrite") == "on")
}

// importCorporateIDs sends the uploaded CSV to the API as it is: the API
// checks every row and refuses the file whole when one is bad.
func (c *Console) importCorporateIDs(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	kind, overwrite := r.PostFormValue("kind"), r.PostFormValue("overwrite") == "on"
	data := upload(r, "file", policy.MaxImportBytes)
	if len(data) == 0 {
		c.site.Redirect(w, r, Prefix+"/corporate-ids", webui.Flash{Error: true, Message: "Choose a CSV file to import."})
		return
	}
	raw, err := c.callRaw(r, actor, "POST", "/v1/corporate-identifiers/import?kind="+esc(kind)+"&overwrite="+strconv.FormatBool(overwrite), data)
	var res storage.CorporateImportResult
	if err == nil {
		err = decodeJSON(raw, &res)
	}
	if err != nil {
		c.after(w, r, Prefix+"/corporate-ids", err, "")
		return
	}
	// The file was accepted, so it parses: read its details for the
	// conflicts report with the API's own parser.
	rows, _ := policy.ParseIdentifierCSV(kind, data)
	file := make(map[string]string, len(rows))
	for _, x := range rows {
		file[x.Value] = x.Details
	}
	c.importDone(w, r, actor, kind, &res, file)
}

// overwriteCorporateIDs replaces the conflicts of an import with the
// details the import brought (the form the conflicts report shows).
func (c *Console) overwriteCorporateIDs(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	values, details := r.PostForm["value"], r.PostForm["details"]
	if len(values) == 0 || len(values) != len(details) || len(values) > maxOverwriteForm {
		webui.Refuse(w, http.StatusBadRequest, "bad request: the overwrite form's identifiers and details do not pair up")
		return
	}
	ids := make([]identifierBody, len(values))
	for i := range values {
		ids[i] = identifierBody{Value: values[i], Details: details[i]}
	}
	c.addIdentifiers(w, r, actor, r.PostFormValue("kind"), ids, true)
}

func (c *Console) deleteCorporateID(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	err := c.call(r, actor, "DELETE", "/v1/corporate-identifiers/"+esc(r.PathValue("kind"))+"/"+esc(r.PathValue("value")), nil, nil)
	c.after(w, r, Prefix+"/corporate-ids", err, r.PathValue("value")+" deleted.")
}

// setOwnership records an admin's word on a device's ownership.
func (c *Console) setOwnership(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	id, own := r.PathValue("id"), r.PostFormValue("ownership")
	err := c.call(r, actor, "PUT", "/v1/devices/"+esc(id)+"/ownership", map[string]any{"ownership": own}, nil)
	c.after(w, r, Prefix+"/devices/"+esc(id), err, "Ownership set to "+own+".")
}

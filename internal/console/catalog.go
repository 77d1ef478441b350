package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/terms"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// The pages of what users meet while enrolling: device categories and
// terms and conditions (documents, versions, the acceptance report).

func (c *Console) catalogRoutes() []route {
	return []route{
		{"GET " + Prefix + "/categories", namedList(c, "categories", "Device categories", "/categories", "/v1/categories", "categories",
			func(x storage.Category) string { return x.Name })},
		{"POST " + Prefix + "/categories", c.createCategory},
		{"GET " + Prefix + "/categories/{name}", c.category},
		{"POST " + Prefix + "/categories/{name}", c.editCategory},
		{"POST " + Prefix + "/categories/{name}/delete", c.deleteCategory},
		{"GET " + Prefix + "/terms", namedList(c, "terms", "Terms and conditions", "/terms", "/v1/terms", "terms",
			func(x adminapi.TermsListing) string { return x.Name })},
		{"POST " + Prefix + "/terms", c.createTerms},
		{"GET " + Prefix + "/terms/acceptances", filteredReport[terms.ReportRow](c, "acceptances", "Terms acceptances",
			"/terms/acceptances", "/v1/terms/acceptances", "acceptances", acceptanceFilters)},
		{"GET " + Prefix + "/terms/acceptances.csv", c.exportCSV("/v1/terms/acceptances.csv", acceptanceFilters, "orchard-terms-acceptances.csv")},
		{"GET " + Prefix + "/terms/{name}", c.termsDoc},
		{"POST " + Prefix + "/terms/{name}", c.publishTerms},
		{"POST " + Prefix + "/terms/{name}/delete", c.deleteTerms},
	}
}

// Categories.

func (c *Console) createCategory(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	name := strings.ToLower(strings.TrimSpace(r.PostFormValue("name")))
	body := map[string]any{"name": name, "description": strings.TrimSpace(r.PostFormValue("description")),
		"group": strings.ToLower(strings.TrimSpace(r.PostFormValue("group")))}
	err := c.call(r, actor, "POST", "/v1/categories", body, nil)
	c.after(w, r, Prefix+"/categories", err, "Category "+name+" created.")
}

type categoryData struct {
	Category  storage.Category
	Devices   []adminapi.DeviceView
	More      bool
	CanEdit   bool
	CanDelete bool
}

func (c *Console) category(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	base := "/v1/categories/" + esc(r.PathValue("name"))
	d := categoryData{CanEdit: c.cfg.API.Allows(actor, "PATCH", base), CanDelete: c.cfg.API.Allows(actor, "DELETE", base)}
	if err := c.call(r, actor, "GET", base, nil, &d.Category); err != nil {
		c.show(w, r, actor, err)
		return
	}
	var devs struct {
		Devices []adminapi.DeviceView `json:"devices"`
		Next    string                `json:"next"`
	}
	if c.call(r, actor, "GET", query("/v1/devices", map[string]string{"category": d.Category.Name}), nil, &devs) == nil {
		d.Devices, d.More = devs.Devices, devs.Next != ""
	}
	c.render(w, r, http.StatusOK, "category", actor, &webui.Page{Title: "Category " + d.Category.Name, Data: d})
}

func categoryPage(r *http.Request) string { return itemPage(r, "categories") }

func (c *Console) editCategory(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	body := map[string]any{"description": strings.TrimSpace(r.PostFormValue("description")),
		"group": strings.ToLower(strings.TrimSpace(r.PostFormValue("group")))}
	err := c.call(r, actor, "PATCH", "/v1/categories/"+esc(r.PathValue("name")), body, nil)
	c.after(w, r, categoryPage(r), err, "Category saved.")
}

func (c *Console) deleteCategory(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	err := c.call(r, actor, "DELETE", "/v1/categories/"+esc(r.PathValue("name")), nil, nil)
	c.afterTo(w, r, err, Prefix+"/categories", categoryPage(r), "Category "+r.PathValue("name")+" deleted; its devices are in no category now.")
}

// Terms and conditions.

// termsGroups reads the form's assignment: all users, or the groups typed.
func termsGroups(r *http.Request) (bool, []string) {
	return r.PostFormValue("all_users") == "on", nameList(r.PostFormValue("groups"))
}

func (c *Console) createTerms(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	name := strings.ToLower(strings.TrimSpace(r.PostFormValue("name")))
	all, groups := termsGroups(r)
	body := terms.NewDocument{Name: name, Title: strings.TrimSpace(r.PostFormValue("title")), Summary: strings.TrimSpace(r.PostFormValue("summary")),
		Text: r.PostFormValue("text"), AllUsers: all, Groups: groups}
	err := c.call(r, actor, "POST", "/v1/terms", body, nil)
	c.afterTo(w, r, err, Prefix+"/terms/"+esc(name), Prefix+"/terms", "Terms "+name+" created (version 1).")
}

type termsDocData struct {
	Doc        adminapi.TermsView
	Current    int // the current version (Doc may be an older one)
	Next       int // the version a publish makes
	Groups     string
	CanPublish bool
	CanDelete  bool
}

func (c *Console) termsDoc(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	base := "/v1/terms/" + esc(r.PathValue("name"))
	d := termsDocData{CanPublish: c.cfg.API.Allows(actor, "PUT", base), CanDelete: c.cfg.API.Allows(actor, "DELETE", base)}
	target := base
	if v := r.URL.Query().Get("version"); v != "" {
		target += "?version=" + url.QueryEscape(v)
	}
	if err := c.call(r, actor, "GET", target, nil, &d.Doc); err != nil {
		c.show(w, r, actor, err)
		return
	}
	for _, v := range d.Doc.Versions {
		d.Current = max(d.Current, v.Version)
	}
	d.Next = d.Current + 1
	d.Groups = strings.Join(d.Doc.Groups, ", ")
	title := d.Doc.Title + " (version " + strconv.Itoa(d.Doc.Version) + ")"
	c.render(w, r, http.StatusOK, "termsdoc", actor, &webui.Page{Title: title, Data: d})
}

// publishTerms makes the document's next version from the form; users who
// accepted an earlier one accept again only when the box is ticked.
func (c *Console) publishTerms(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	title, summary, text := strings.TrimSpace(r.PostFormValue("title")), strings.TrimSpace(r.PostFormValue("summary")), r.PostFormValue("text")
	all, groups := termsGroups(r)
	body := terms.NewVersion{Title: &title, Summary: &summary, Text: &text, AllUsers: &all, Groups: &groups,
		RequireReacceptance: r.PostFormValue("require_reacceptance") == "on"}
	var out adminapi.TermsView
	err := c.call(r, actor, "PUT", "/v1/terms/"+esc(r.PathValue("name")), body, &out)
	msg := "Version " + strconv.Itoa(out.Version) + " published"
	if body.RequireReacceptance {
		msg += ": users who accepted an earlier version must accept it."
	} else {
		msg += "; earlier acceptances still count."
	}
	c.after(w, r, Prefix+"/terms/"+esc(r.PathValue("name")), err, msg)
}

func (c *Console) deleteTerms(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	err := c.call(r, actor, "DELETE", "/v1/terms/"+esc(r.PathValue("name")), nil, nil)
	c.afterTo(w, r, err, Prefix+"/terms", Prefix+"/terms/"+esc(r.PathValue("name")), "Terms "+r.PathValue("name")+" deleted with their history and acceptances.")
}

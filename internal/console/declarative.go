package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/declarative"
	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/mdm/ddm"
	"github.com/orchardmdm/orchard/mdm/osversion"
	"github.com/orchardmdm/orchard/storage"
)

// The Declarative Device Management pages: declarations (create and edit
// against Apple's schema, delete, per-device status), declaration sets
// (members, explicit channels, scope) and the software-update fleet view.

func (c *Console) declarativeRoutes() []route {
	return []route{
		{"GET " + Prefix + "/declarations", c.declarations},
		{"GET " + Prefix + "/declarations/new", c.newDeclaration},
		{"POST " + Prefix + "/declarations", c.saveDeclaration},
		{"GET " + Prefix + "/declarations/{id}", c.declarationPage},
		{"POST " + Prefix + "/declarations/{id}/delete", c.deleteDeclaration},
		{"GET " + Prefix + "/declaration-sets", c.declarationSets},
		{"POST " + Prefix + "/declaration-sets", c.createSet},
		{"GET " + Prefix + "/declaration-sets/{name}", c.setPage},
		{"POST " + Prefix + "/declaration-sets/{name}/members", c.setMembers},
		{"POST " + Prefix + "/declaration-sets/{name}/scope", c.scopeSet},
		{"POST " + Prefix + "/declaration-sets/{name}/delete", c.deleteSet},
		{"GET " + Prefix + "/software-updates", c.softwareUpdates},
	}
}

// maxStatusRows bounds the per-device rows a declaration's page shows (the
// API answers every device that reported it).
const maxStatusRows = 500

// declType is one declaration type of GET /v1/schema/declarations, as the
// type picker and the key help need it.
type declType struct {
	Type  string    `json:"type"`
	Kind  string    `json:"kind"`
	Title string    `json:"title"`
	Keys  []declKey `json:"keys"`
}

type declKey struct {
	Name     string `json:"key"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
	Values   []any  `json:"values"`
}

// typeGroup is the picker's types of one kind.
type typeGroup struct {
	Kind  string
	Types []declType
}

// declarationTypes reads the schema's types the API accepts, grouped by
// kind (activations are Orchard's: a set gets one generated).
func (c *Console) declarationTypes(r *http.Request, actor *adminauth.Actor) ([]typeGroup, error) {
	var listing struct {
		Declarations []declType `json:"declarations"`
	}
	if err := c.call(r, actor, "GET", "/v1/schema/declarations", nil, &listing); err != nil {
		return nil, err
	}
	var groups []typeGroup
	for _, t := range listing.Declarations {
		if t.Kind == ddm.KindActivation {
			continue
		}
		i := slices.IndexFunc(groups, func(g typeGroup) bool { return g.Kind == t.Kind })
		if i < 0 {
			groups = append(groups, typeGroup{Kind: t.Kind})
			i = len(groups) - 1
		}
		groups[i].Types = append(groups[i].Types, t)
	}
	return groups, nil
}

func findType(groups []typeGroup, name string) *declType {
	for _, g := range groups {
		for i := range g.Types {
			if g.Types[i].Type == name {
				return &g.Types[i]
			}
		}
	}
	return nil
}

// skeleton is a payload with a type's required keys, to start from.
func skeleton(t *declType) string {
	if t == nil {
		return "{}"
	}
	m := map[string]any{}
	for _, k := range t.Keys {
		if !k.Required {
			continue
		}
		switch k.Type {
		case "integer", "real":
			m[k.Name] = 0
		case "boolean":
			m[k.Name] = false
		case "array":
			m[k.Name] = []any{}
		case "dictionary":
			m[k.Name] = map[string]any{}
		default:
			m[k.Name] = ""
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return string(b)
}

type declarationsData struct {
	Declarations []storage.StoredDeclaration
	CanEdit      bool
}

func (c *Console) declarations(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	var all struct {
		Declarations []storage.StoredDeclaration `json:"declarations"`
	}
	if err := c.call(r, actor, "GET", "/v1/declarations", nil, &all); err != nil {
		c.show(w, r, actor, err)
		return
	}
	d := declarationsData{Declarations: all.Declarations, CanEdit: c.cfg.API.Allows(actor, "POST", "/v1/declarations")}
	c.render(w, r, http.StatusOK, "declarations", actor, &webui.Page{Title: "Declarative management", Data: d})
}

// declarationData is a declaration's page, or the form of a new one.
type declarationData struct {
	Decl       storage.StoredDeclaration
	Payload    string // as typed, or the stored one indented
	New        bool
	Types      []typeGroup
	Selected   *declType
	Status     []declarative.DeclarationChannelState
	StatusMore int // rows left off the status table
	CanEdit    bool
	CanDelete  bool
}

func (c *Console) renderDeclaration(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor, status int, d *declarationData, errs webui.FormErrors) {
	var err error
	if d.Types, err = c.declarationTypes(r, actor); err != nil {
		c.show(w, r, actor, err)
		return
	}
	d.Selected = findType(d.Types, d.Decl.Type)
	d.CanEdit = c.cfg.API.Allows(actor, "POST", "/v1/declarations")
	title := "New declaration"
	if !d.New {
		title = "Declaration " + d.Decl.Identifier
		d.CanDelete = c.cfg.API.Allows(actor, "DELETE", "/v1/declarations/"+esc(d.Decl.Identifier))
	}
	c.render(w, r, status, "declaration", actor, &webui.Page{Title: title, Data: d, Errors: errs})
}

func (c *Console) newDeclaration(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d := &declarationData{New: true, Decl: storage.StoredDeclaration{Type: r.URL.Query().Get("type")}}
	types, err := c.declarationTypes(r, actor)
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	d.Payload = skeleton(findType(types, d.Decl.Type))
	c.renderDeclaration(w, r, actor, http.StatusOK, d, nil)
}

// loadDeclaration reads a declaration and its per-device status.
func (c *Console) loadDeclaration(r *http.Request, actor *adminauth.Actor, id string) (*declarationData, error) {
	d := &declarationData{}
	base := "/v1/declarations/" + esc(id)
	if err := c.call(r, actor, "GET", base, nil, &d.Decl); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if json.Indent(&buf, d.Decl.Payload, "", "  ") == nil {
		d.Payload = buf.String()
	} else {
		d.Payload = string(d.Decl.Payload)
	}
	var st struct {
		Channels []declarative.DeclarationChannelState `json:"channels"`
	}
	if err := c.call(r, actor, "GET", base+"/status", nil, &st); err != nil {
		return nil, err
	}
	d.Status = st.Channels
	if len(d.Status) > maxStatusRows {
		d.Status, d.StatusMore = d.Status[:maxStatusRows], len(d.Status)-maxStatusRows
	}
	return d, nil
}

func (c *Console) declarationPage(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d, err := c.loadDeclaration(r, actor, r.PathValue("id"))
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.renderDeclaration(w, r, actor, http.StatusOK, d, nil)
}

// declarationField is the form field a refusal of the API is about: the
// schema's refusals name a payload key path, the others the identifier or
// the type.
func declarationField(reason string) string {
	switch {
	case strings.Contains(reason, "Payload"), strings.Contains(reason, "payload"):
		return "payload"
	case strings.Contains(reason, "identifier"):
		return "identifier"
	case strings.Contains(reason, "type"), strings.Contains(reason, "activation"):
		return "type"
	}
	return "payload"
}

// saveDeclaration creates or replaces a declaration (the API's POST is
// both). A payload that is not JSON, or that the schema refuses, is shown
// again as typed with the reason next to its field.
func (c *Console) saveDeclaration(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	editing := r.PostFormValue("edit")
	d := &declarationData{New: editing == "", Payload: r.PostFormValue("payload"),
		Decl: storage.StoredDeclaration{Type: strings.TrimSpace(r.PostFormValue("type")), Identifier: strings.TrimSpace(r.PostFormValue("identifier"))}}
	if editing != "" {
		d.Decl.Identifier = editing
	}
	refuse := func(status int, field, reason string) {
		if !d.New {
			// The status table stays on the page the form belongs to.
			if cur, err := c.loadDeclaration(r, actor, editing); err == nil {
				d.Status, d.StatusMore = cur.Status, cur.StatusMore
			}
		}
		c.renderDeclaration(w, r, actor, status, d, webui.FormErrors{field: reason})
	}
	var probe any
	if err := json.Unmarshal([]byte(d.Payload), &probe); err != nil {
		refuse(http.StatusBadRequest, "payload", "The payload is not JSON: "+err.Error())
		return
	}
	var saved storage.StoredDeclaration
	err := c.call(r, actor, "POST", "/v1/declarations", map[string]any{"type": d.Decl.Type, "identifier": d.Decl.Identifier,
		"payload": json.RawMessage(d.Payload)}, &saved)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		refuse(ae.Status, declarationField(ae.Reason), ae.Reason)
		return
	}
	back := Prefix + "/declarations/new"
	if editing != "" {
		back = Prefix + "/declarations/" + esc(editing)
	}
	c.afterTo(w, r, err, Prefix+"/declarations/"+esc(saved.Identifier), back,
		"Declaration "+saved.Identifier+" saved; the devices its sets reach sync.")
}

// confirmed checks that a delete form's confirmation field holds want;
// a role that may not delete is sent on to the API, which refuses (and
// audits) it whatever it typed.
func (c *Console) confirmed(r *http.Request, actor *adminauth.Actor, target, want string) bool {
	return !c.cfg.API.Allows(actor, "DELETE", target) || strings.TrimSpace(r.PostFormValue("confirm")) == want
}

func (c *Console) deleteDeclaration(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	id := r.PathValue("id")
	target, page := "/v1/declarations/"+esc(id), Prefix+"/declarations/"+esc(id)
	if !c.confirmed(r, actor, target, id) {
		c.site.Redirect(w, r, page, webui.Flash{Error: true, Message: "Type the identifier " + id + " to delete it."})
		return
	}
	err := c.call(r, actor, "DELETE", target, nil, nil)
	c.afterTo(w, r, err, Prefix+"/declarations", page, "Declaration "+id+" deleted.")
}

// Declaration sets.

// setRow is a set with its scope decoded and in words.
type setRow struct {
	storage.DeclarationSet
	Scope     scope.Scope
	ScopeText string
}

func setRowOf(s storage.DeclarationSet) setRow {
	row := setRow{DeclarationSet: s}
	if len(s.Scope) > 0 {
		_ = json.Unmarshal(s.Scope, &row.Scope) // the API wrote it from a scope.Scope
	}
	row.ScopeText = describeScope(row.Scope)
	return row
}

type setsData struct {
	Sets         []setRow
	Declarations []storage.StoredDeclaration
	CanEdit      bool
}

func (c *Console) listDeclarations(r *http.Request, actor *adminauth.Actor) ([]storage.StoredDeclaration, error) {
	var all struct {
		Declarations []storage.StoredDeclaration `json:"declarations"`
	}
	err := c.call(r, actor, "GET", "/v1/declarations", nil, &all)
	return all.Declarations, err
}

func (c *Console) declarationSets(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	var all struct {
		Sets []storage.DeclarationSet `json:"declaration_sets"`
	}
	if err := c.call(r, actor, "GET", "/v1/declaration-sets", nil, &all); err != nil {
		c.show(w, r, actor, err)
		return
	}
	d := setsData{CanEdit: c.cfg.API.Allows(actor, "POST", "/v1/declaration-sets")}
	for _, s := range all.Sets {
		d.Sets = append(d.Sets, setRowOf(s))
	}
	if d.CanEdit {
		var err error
		if d.Declarations, err = c.listDeclarations(r, actor); err != nil {
			c.show(w, r, actor, err)
			return
		}
	}
	c.render(w, r, http.StatusOK, "declsets", actor, &webui.Page{Title: "Declaration sets", Data: d})
}

// createSet makes a set; the API's POST replaces one of the same name, so
// the console refuses a name that is taken rather than overwrite it.
func (c *Console) createSet(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	members := r.PostForm["declarations"]
	if members == nil {
		members = []string{}
	}
	var existing storage.DeclarationSet
	err := c.call(r, actor, "GET", "/v1/declaration-sets/"+esc(name), nil, &existing)
	var ae *apiError
	switch {
	case name == "":
		c.site.Redirect(w, r, Prefix+"/declaration-sets", webui.Flash{Error: true, Message: "Name the set."})
		return
	case err == nil:
		c.site.Redirect(w, r, Prefix+"/declaration-sets", webui.Flash{Error: true, Message: "A set named " + name + " exists: change it on its page."})
		return
	case !errors.As(err, &ae) || ae.Status != http.StatusNotFound:
		c.after(w, r, Prefix+"/declaration-sets", err, "")
		return
	}
	err = c.call(r, actor, "POST", "/v1/declaration-sets", map[string]any{"name": name, "declarations": members, "channels": []string{}}, nil)
	c.afterTo(w, r, err, Prefix+"/declaration-sets/"+esc(name), Prefix+"/declaration-sets",
		"Set "+name+" created; it reaches no device until you set its scope.")
}

// member is one declaration in a set's members form.
type member struct {
	storage.StoredDeclaration
	In bool
}

type setData struct {
	Set       setRow
	Members   []member
	Channels  string
	Scope     scopeForm
	CanEdit   bool
	CanDelete bool
}

func (c *Console) loadSet(r *http.Request, actor *adminauth.Actor, name string) (*setData, error) {
	base := "/v1/declaration-sets/" + esc(name)
	var s storage.DeclarationSet
	if err := c.call(r, actor, "GET", base, nil, &s); err != nil {
		return nil, err
	}
	d := &setData{Set: setRowOf(s), Channels: strings.Join(s.Channels, "\n"), CanEdit: c.cfg.API.Allows(actor, "POST", "/v1/declaration-sets"),
		CanDelete: c.cfg.API.Allows(actor, "DELETE", base)}
	d.Scope = scopeForm{Scope: d.Set.Scope, Action: Prefix + "/declaration-sets/" + esc(name) + "/scope", CanEdit: c.cfg.API.Allows(actor, "PUT", base+"/scope")}
	all, err := c.listDeclarations(r, actor)
	if err != nil {
		return nil, err
	}
	for _, decl := range all {
		d.Members = append(d.Members, member{StoredDeclaration: decl, In: slices.Contains(s.Declarations, decl.Identifier)})
	}
	return d, nil
}

func (c *Console) setPage(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d, err := c.loadSet(r, actor, r.PathValue("name"))
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.renderSet(w, r, actor, http.StatusOK, d, nil)
}

func (c *Console) renderSet(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor, status int, d *setData, errs webui.FormErrors) {
	c.render(w, r, status, "declset", actor, &webui.Page{Title: "Declaration set " + d.Set.Name, Data: d, Errors: errs})
}

func setPage(r *http.Request) string { return itemPage(r, "declaration-sets") }

// setMembers replaces a set's declarations and explicit channels; the set
// is put again without a scope, which keeps its scope.
func (c *Console) setMembers(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	members := r.PostForm["declarations"]
	if members == nil {
		members = []string{}
	}
	channels := idList(r.PostFormValue("channels"))
	if channels == nil {
		channels = []string{}
	}
	err := c.call(r, actor, "POST", "/v1/declaration-sets", map[string]any{"name": r.PathValue("name"), "declarations": members, "channels": channels}, nil)
	c.after(w, r, setPage(r), err, "Members saved.")
}

func (c *Console) scopeSet(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	s := scopeFromForm(r)
	err := c.call(r, actor, "PUT", "/v1/declaration-sets/"+esc(r.PathValue("name"))+"/scope", map[string]any{"scope": s}, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		d, lerr := c.loadSet(r, actor, r.PathValue("name"))
		if lerr != nil {
			c.show(w, r, actor, lerr)
			return
		}
		d.Scope.Scope = s
		c.renderSet(w, r, actor, ae.Status, d, webui.FormErrors{"scope": ae.Reason})
		return
	}
	c.after(w, r, setPage(r), err, "Scope saved: "+describeScope(s)+".")
}

func (c *Console) deleteSet(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	name := r.PathValue("name")
	target := "/v1/declaration-sets/" + esc(name)
	if !c.confirmed(r, actor, target, name) {
		c.site.Redirect(w, r, setPage(r), webui.Flash{Error: true, Message: "Type the set's name " + name + " to delete it."})
		return
	}
	err := c.call(r, actor, "DELETE", target, nil, nil)
	c.afterTo(w, r, err, Prefix+"/declaration-sets", setPage(r), "Set "+name+" deleted; its devices drop its declarations.")
}

// Software updates.

// osCount is the devices that reported one OS version.
type osCount struct {
	Version string
	Devices int
}

type updatesData struct {
	Fleet   declarative.Fleet
	OS      []osCount
	State   string // the filter, "" for every state
	States  []string
	Devices []declarative.DeviceUpdate
	Next    string
}

// NextURL is the following page with the same filter.
func (d updatesData) NextURL() string {
	return pageURL("/software-updates", map[string]string{"state": d.State}, d.Next)
}

// softwareUpdates shows the fleet view: devices per OS version, the update
// state counts, and the devices, filtered by state and paged by channel
// (the API answers them all, ordered by channel).
func (c *Console) softwareUpdates(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d := updatesData{State: r.URL.Query().Get("state"), States: []string{declarative.UpdatePending, declarative.UpdateFailed,
		declarative.UpdateUpToDate, declarative.UpdateUnknown, declarative.UpdateNone}}
	if err := c.call(r, actor, "GET", "/v1/software-updates", nil, &d.Fleet); err != nil {
		c.show(w, r, actor, err)
		return
	}
	for v, n := range d.Fleet.OSVersions {
		d.OS = append(d.OS, osCount{Version: v, Devices: n})
	}
	slices.SortFunc(d.OS, func(a, b osCount) int { return osversion.Compare(b.Version, a.Version) })
	after := r.URL.Query().Get("after")
	for _, u := range d.Fleet.Devices {
		if (d.State != "" && u.State != d.State) || (after != "" && u.Channel <= after) {
			continue
		}
		if len(d.Devices) == pageSize {
			d.Next = d.Devices[pageSize-1].Channel
			break
		}
		d.Devices = append(d.Devices, u)
	}
	c.render(w, r, http.StatusOK, "updates", actor, &webui.Page{Title: "Software updates", Data: d})
}

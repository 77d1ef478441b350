package console

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/internal/terms"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// The directory's pages: users (with their groups, devices, device
// enrollment manager flag and terms acceptances) and groups.

func (c *Console) peopleRoutes() []route {
	return []route{
		{"GET " + Prefix + "/users", c.users},
		{"POST " + Prefix + "/users", c.createUser},
		{"GET " + Prefix + "/users/{name}", c.user},
		{"POST " + Prefix + "/users/{name}", c.editUser},
		{"POST " + Prefix + "/users/{name}/state", c.userState},
		{"POST " + Prefix + "/users/{name}/password", c.resetPassword},
		{"POST " + Prefix + "/users/{name}/dem", c.setDEM},
		{"POST " + Prefix + "/users/{name}/groups", c.joinGroup},
		{"GET " + Prefix + "/groups", namedList(c, "groups", "Groups", "/groups", "/v1/groups", "groups", func(g storage.Group) string { return g.Name })},
		{"POST " + Prefix + "/groups", c.createGroup},
		{"GET " + Prefix + "/groups/{name}", c.group},
		{"POST " + Prefix + "/groups/{name}/members", c.addMembers},
		{"POST " + Prefix + "/groups/{name}/members/{user}/remove", c.removeMember},
		{"POST " + Prefix + "/groups/{name}/delete", c.deleteGroup},
	}
}

// esc is a path segment for an API target or a console link.
func esc(s string) string { return url.PathEscape(s) }

// nameList splits the usernames or group names typed into a form field
// (separated by commas, semicolons or white space), lowercased; never nil,
// so an empty field sends an empty list. Names hold none of those runes
// (directory's nameRE).
func nameList(s string) []string {
	names := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) })
	if names == nil {
		names = []string{}
	}
	return names
}

// itemPage is the console page of the item {name} of a section ("users").
func itemPage(r *http.Request, section string) string {
	return Prefix + "/" + section + "/" + esc(r.PathValue("name"))
}

// listPage reads one page (pageSize long) of a list the API pages by a
// name cursor (?after=), the list being the answer's key field, and the
// cursor of the next page: the last name when the page is full.
func listPage[T any](c *Console, r *http.Request, actor *adminauth.Actor, path, key string, name func(T) string, filters map[string]string) ([]T, string, error) {
	var m map[string]json.RawMessage
	if err := c.call(r, actor, "GET", query(path, filters), nil, &m); err != nil {
		return nil, "", err
	}
	var items []T
	if err := decodeJSON(m[key], &items); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	next := ""
	if len(items) == pageSize {
		next = name(items[len(items)-1])
	}
	return items, next, nil
}

// named is a name-paged list's page with the create form the role may use.
type named[T any] struct {
	Items     []T
	Next      string
	CanCreate bool
	path      string // below Prefix
}

// NextURL is the following page's link.
func (d named[T]) NextURL() string { return pageURL(d.path, nil, d.Next) }

// namedList serves a list page at path: a page of apiPath's list (the
// answer's key field), and the create form when the role may POST there.
func namedList[T any](c *Console, tmpl, title, path, apiPath, key string, name func(T) string) func(http.ResponseWriter, *http.Request, *adminauth.Actor) {
	return func(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
		d := named[T]{CanCreate: c.cfg.API.Allows(actor, "POST", apiPath), path: path}
		var err error
		if d.Items, d.Next, err = listPage(c, r, actor, apiPath, key, name, afterOf(r)); err != nil {
			c.show(w, r, actor, err)
			return
		}
		c.render(w, r, http.StatusOK, tmpl, actor, &webui.Page{Title: title, Data: d})
	}
}

// afterTo is after, to page ok when err is nil and to page failed when not.
func (c *Console) afterTo(w http.ResponseWriter, r *http.Request, err error, ok, failed, msg string) {
	to := ok
	if err != nil {
		to = failed
	}
	c.after(w, r, to, err, msg)
}

// afterOf is a list page's cursor filter.
func afterOf(r *http.Request) map[string]string {
	return map[string]string{"after": r.URL.Query().Get("after")}
}

// pageURL is a list's link to the page after next, keeping its filters.
func pageURL(path string, filters map[string]string, next string) string {
	v := url.Values{"after": {next}}
	for k, s := range filters {
		if s != "" {
			v.Set(k, s)
		}
	}
	return Prefix + path + "?" + v.Encode()
}

// query is an API target with the filters that are set and a page size.
func query(path string, filters map[string]string) string {
	v := url.Values{"limit": {strconv.Itoa(pageSize)}}
	for k, s := range filters {
		if s != "" {
			v.Set(k, s)
		}
	}
	return path + "?" + v.Encode()
}

// Users.

type usersData struct {
	Q, Next   string
	Users     []adminapi.UserView
	CanCreate bool
	NewUser   string // the user just made with a generated password
	Password  string // shown once
}

// NextURL is the following page's link with the same search.
func (d usersData) NextURL() string { return pageURL("/users", map[string]string{"q": d.Q}, d.Next) }

// before is the cursor just before every name that starts with p
// (usernames sort bytewise and never hold '~').
func before(p string) string {
	if p == "" {
		return ""
	}
	return p[:len(p)-1] + string(p[len(p)-1]-1) + "~"
}

// users lists users in name order, a page at a time; a search is a
// username prefix, read from the API's cursor so it never loads them all.
func (c *Console) users(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	q := r.URL.Query()
	d := usersData{Q: strings.ToLower(strings.TrimSpace(q.Get("q"))), CanCreate: c.cfg.API.Allows(actor, "POST", "/v1/users")}
	if err := c.listUsers(r, actor, &d, q.Get("after")); err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "users", actor, &webui.Page{Title: "Users", Data: d})
}

func (c *Console) listUsers(r *http.Request, actor *adminauth.Actor, d *usersData, after string) error {
	if after == "" {
		after = before(d.Q)
	}
	users, next, err := listPage(c, r, actor, "/v1/users", "users", func(u adminapi.UserView) string { return u.Username },
		map[string]string{"after": after})
	if err != nil {
		return err
	}
	for _, u := range users {
		if !strings.HasPrefix(u.Username, d.Q) {
			return nil // past the prefix: no more matches
		}
		d.Users = append(d.Users, u)
	}
	d.Next = next
	return nil
}

// newPassword is a generated password for a user (26 base32 characters,
// 130 bits), shown to the admin once and never logged.
func newPassword() string { return rand.Text() }

func (c *Console) createUser(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	name := strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
	body := map[string]any{"username": name, "display_name": strings.TrimSpace(r.PostFormValue("display_name")),
		"email": strings.TrimSpace(r.PostFormValue("email"))}
	pw := ""
	if r.PostFormValue("password") == "generate" {
		pw = newPassword()
		body["password"] = pw
	}
	if err := c.call(r, actor, "POST", "/v1/users", body, nil); err != nil {
		c.after(w, r, Prefix+"/users", err, "")
		return
	}
	if pw == "" {
		c.after(w, r, Prefix+"/users/"+esc(name), nil, "User "+name+" created.")
		return
	}
	d := usersData{CanCreate: true, NewUser: name, Password: pw}
	if err := c.listUsers(r, actor, &d, ""); err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "users", actor, &webui.Page{Title: "Users", Data: d})
}

type userDevice struct {
	ID, Name, Relation string
}

type userData struct {
	User        adminapi.UserView
	Limit       *policy.Limit
	Devices     []userDevice
	MoreDevices bool
	Terms       []terms.ReportRow
	CanEdit     bool
	CanDEM      bool
	CanGroups   bool
	Password    string // a reset password, shown once
}

func (c *Console) loadUser(r *http.Request, actor *adminauth.Actor, name string) (*userData, error) {
	d := &userData{}
	base := "/v1/users/" + esc(name)
	if err := c.call(r, actor, "GET", base, nil, &d.User); err != nil {
		return nil, err
	}
	var lim policy.Limit
	if c.call(r, actor, "GET", base+"/limit", nil, &lim) == nil {
		d.Limit = &lim
	}
	var devs struct {
		Devices []adminapi.DeviceView `json:"devices"`
		Next    string                `json:"next"`
	}
	if c.call(r, actor, "GET", query("/v1/devices", map[string]string{"user": d.User.Username}), nil, &devs) == nil {
		for _, dv := range devs.Devices {
			// The device's name is in its inventory (a user has few devices).
			var inv *storage.DeviceInventory
			var x storage.DeviceInventory
			if c.call(r, actor, "GET", "/v1/devices/"+esc(dv.ID)+"/inventory", nil, &x) == nil {
				inv = &x
			}
			d.Devices = append(d.Devices, userDevice{ID: dv.ID, Name: displayName(&dv, inv), Relation: "primary user"})
		}
		d.MoreDevices = devs.Next != ""
	}
	if d.Limit != nil && d.Limit.DEM {
		// A device enrollment manager's devices are userless: the limit
		// report lists the ones the DEM enrolled.
		for i, id := range d.Limit.Devices {
			if i == pageSize {
				d.MoreDevices = true
				break
			}
			d.Devices = append(d.Devices, userDevice{ID: id, Name: id, Relation: "enrolled as device enrollment manager"})
		}
	}
	var acc struct {
		Acceptances []terms.ReportRow `json:"acceptances"`
	}
	if c.call(r, actor, "GET", query("/v1/terms/acceptances", map[string]string{"user": d.User.Username}), nil, &acc) == nil {
		d.Terms = acc.Acceptances
	}
	d.CanEdit = c.cfg.API.Allows(actor, "PATCH", base)
	d.CanDEM = c.cfg.API.Allows(actor, "PUT", base+"/dem")
	d.CanGroups = c.cfg.API.Allows(actor, "POST", "/v1/groups/g/members")
	return d, nil
}

func (c *Console) user(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d, err := c.loadUser(r, actor, r.PathValue("name"))
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "user", actor, &webui.Page{Title: "User " + d.User.Username, Data: d})
}

func userPage(r *http.Request) string { return itemPage(r, "users") }

func (c *Console) editUser(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	dn, email := strings.TrimSpace(r.PostFormValue("display_name")), strings.TrimSpace(r.PostFormValue("email"))
	err := c.call(r, actor, "PATCH", "/v1/users/"+esc(r.PathValue("name")), map[string]any{"display_name": dn, "email": email}, nil)
	c.after(w, r, userPage(r), err, "User saved.")
}

// userState disables (state=disabled) or enables a user.
func (c *Console) userState(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	off := r.PostFormValue("state") == "disabled"
	err := c.call(r, actor, "PATCH", "/v1/users/"+esc(r.PathValue("name")), map[string]any{"disabled": off}, nil)
	msg := "User enabled."
	if off {
		msg = "User disabled: they can no longer sign in or enroll."
	}
	c.after(w, r, userPage(r), err, msg)
}

// resetPassword sets a generated password and shows it once, on the page
// the post answers (never in a redirect, a flash or a log).
func (c *Console) resetPassword(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	pw := newPassword()
	if err := c.call(r, actor, "PATCH", "/v1/users/"+esc(r.PathValue("name")), map[string]any{"password": pw}, nil); err != nil {
		c.after(w, r, userPage(r), err, "")
		return
	}
	d, err := c.loadUser(r, actor, r.PathValue("name"))
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	d.Password = pw
	c.render(w, r, http.StatusOK, "user", actor, &webui.Page{Title: "User " + d.User.Username, Data: d})
}

func (c *Console) setDEM(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	on := r.PostFormValue("dem") == "true"
	err := c.call(r, actor, "PUT", "/v1/users/"+esc(r.PathValue("name"))+"/dem", map[string]any{"dem": on}, nil)
	msg := "No longer a device enrollment manager."
	if on {
		msg = "Now a device enrollment manager: up to 1,000 corporate, userless devices."
	}
	c.after(w, r, userPage(r), err, msg)
}

func (c *Console) joinGroup(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	g := strings.ToLower(strings.TrimSpace(r.PostFormValue("group")))
	err := c.call(r, actor, "POST", "/v1/groups/"+esc(g)+"/members", map[string]any{"usernames": []string{r.PathValue("name")}}, nil)
	c.after(w, r, userPage(r), err, "Added to group "+g+".")
}

// Groups.

func (c *Console) createGroup(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	name := strings.ToLower(strings.TrimSpace(r.PostFormValue("name")))
	err := c.call(r, actor, "POST", "/v1/groups", map[string]any{"name": name, "description": strings.TrimSpace(r.PostFormValue("description"))}, nil)
	c.afterTo(w, r, err, Prefix+"/groups/"+esc(name), Prefix+"/groups", "Group "+name+" created.")
}

type groupData struct {
	Group     storage.Group
	Members   []string
	Next      string
	CanEdit   bool
	CanDelete bool
}

// NextURL is the following page of members.
func (d groupData) NextURL() string { return pageURL("/groups/"+esc(d.Group.Name), nil, d.Next) }

func (c *Console) group(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	base := "/v1/groups/" + esc(r.PathValue("name"))
	d := groupData{CanEdit: c.cfg.API.Allows(actor, "POST", base+"/members"), CanDelete: c.cfg.API.Allows(actor, "DELETE", base)}
	if err := c.call(r, actor, "GET", base, nil, &d.Group); err != nil {
		c.show(w, r, actor, err)
		return
	}
	var err error
	d.Members, d.Next, err = listPage(c, r, actor, base+"/members", "members", func(u string) string { return u }, afterOf(r))
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "group", actor, &webui.Page{Title: "Group " + d.Group.Name, Data: d})
}

func groupPage(r *http.Request) string { return itemPage(r, "groups") }

// addMembers adds the usernames typed (separated by spaces, commas or
// lines): all of them or, when one is unknown, none (the API's rule).
func (c *Console) addMembers(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	names := nameList(r.PostFormValue("usernames"))
	if len(names) == 0 {
		c.site.Redirect(w, r, groupPage(r), webui.Flash{Error: true, Message: "Type one or more usernames."})
		return
	}
	err := c.call(r, actor, "POST", "/v1/groups/"+esc(r.PathValue("name"))+"/members", map[string]any{"usernames": names}, nil)
	c.after(w, r, groupPage(r), err, "Added "+strconv.Itoa(len(names))+" member(s).")
}

// removeMember takes a user out of a group; from=user goes back to the
// user's page.
func (c *Console) removeMember(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	user := r.PathValue("user")
	err := c.call(r, actor, "DELETE", "/v1/groups/"+esc(r.PathValue("name"))+"/members/"+esc(user), nil, nil)
	to := groupPage(r)
	if r.PostFormValue("from") == "user" {
		to = Prefix + "/users/" + esc(user)
	}
	c.after(w, r, to, err, user+" removed from "+r.PathValue("name")+".")
}

func (c *Console) deleteGroup(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	err := c.call(r, actor, "DELETE", "/v1/groups/"+esc(r.PathValue("name")), nil, nil)
	c.afterTo(w, r, err, Prefix+"/groups", groupPage(r), "Group "+r.PathValue("name")+" deleted; its members stay.")
}

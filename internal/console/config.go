package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/declarative"
	"github.com/orchardmdm/orchard/internal/profiles"
	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// The configuration pages: the profile library (upload, versions, scope,
// per-device state, resend) and the scope editor it shares with the
// declaration sets (declarative.go).

func (c *Console) configRoutes() []route {
	return []route{
		{"GET " + Prefix + "/profiles", c.profileLibrary},
		{"POST " + Prefix + "/profiles", c.uploadProfile},
		{"GET " + Prefix + "/profiles/{id}", c.profilePage},
		{"POST " + Prefix + "/profiles/{id}/versions", c.uploadVersion},
		{"POST " + Prefix + "/profiles/{id}/scope", c.scopeProfile},
		{"POST " + Prefix + "/profiles/{id}/resend", c.resendProfile},
	}
}

// maxProfileUpload bounds a profile uploaded in the console: the console's
// multipart limit (maxUpload); the CLI takes up to profile.MaxSize.
const maxProfileUpload = maxUpload

// Scopes.

// scopePlatforms and scopeOwnership are the choices the scope editor
// offers, the values scope.Scope.Validate accepts.
var (
	scopePlatforms = []string{"iOS", "iPadOS", "macOS", "tvOS", "visionOS", "watchOS"}
	scopeOwnership = []string{"corporate", "personal"}
)

// idList splits the device IDs typed into a form field (separated by
// commas, semicolons or white space) as they are: UDIDs keep their case.
func idList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) })
}

// scopeFromForm reads the scope editor (templates/scope.html).
func scopeFromForm(r *http.Request) scope.Scope {
	f := r.PostFormValue
	s := scope.Scope{All: f("all") == "on", Platforms: r.PostForm["platforms"], Ownership: r.PostForm["ownership"],
		Groups: nameList(f("groups")), Categories: nameList(f("categories")), Devices: idList(f("devices")),
		Exclude: idList(f("exclude")), ExcludeGroups: nameList(f("exclude_groups")), ExcludeCategories: nameList(f("exclude_categories"))}
	if f("channel") == string(scope.UserChannel) {
		s.Channel = scope.UserChannel
	}
	return s
}

// scopeForm is the scope editor's values, for the template.
type scopeForm struct {
	scope.Scope
	Action  string // where the form posts
	CanEdit bool
	// Reinstall, for a profile: whether a user's removal is undone.
	Reinstall *bool
}

// Has says whether the scope lists v among its platforms or ownership.
func (f scopeForm) Has(v string) bool {
	for _, x := range append(append([]string{}, f.Platforms...), f.Ownership...) {
		if x == v {
			return true
		}
	}
	return false
}

// PlatformChoices and OwnershipChoices are the editor's check boxes.
func (scopeForm) PlatformChoices() []string  { return scopePlatforms }
func (scopeForm) OwnershipChoices() []string { return scopeOwnership }

// Join shows a list in a text field.
func (scopeForm) Join(v []string) string { return strings.Join(v, ", ") }

// describeScope says in words what a scope selects.
func describeScope(s scope.Scope) string {
	var in []string
	if s.All {
		in = append(in, "all devices")
	}
	if len(s.Groups) > 0 {
		in = append(in, "groups "+strings.Join(s.Groups, ", "))
	}
	if len(s.Categories) > 0 {
		in = append(in, "categories "+strings.Join(s.Categories, ", "))
	}
	if len(s.Devices) > 0 {
		in = append(in, plural(len(s.Devices), "listed device"))
	}
	filters := len(s.Platforms) > 0 || len(s.Ownership) > 0
	if len(in) == 0 && !filters {
		return "nothing"
	}
	if len(in) == 0 {
		in = append(in, "every device")
	}
	out := strings.Join(in, " and ")
	if len(s.Platforms) > 0 {
		out += " on " + strings.Join(s.Platforms, ", ")
	}
	if len(s.Ownership) > 0 {
		out += ", " + strings.Join(s.Ownership, " or ") + " owned"
	}
	var ex []string
	if len(s.Exclude) > 0 {
		ex = append(ex, plural(len(s.Exclude), "device"))
	}
	if len(s.ExcludeGroups) > 0 {
		ex = append(ex, "groups "+strings.Join(s.ExcludeGroups, ", "))
	}
	if len(s.ExcludeCategories) > 0 {
		ex = append(ex, "categories "+strings.Join(s.ExcludeCategories, ", "))
	}
	if len(ex) > 0 {
		out += ", except " + strings.Join(ex, " and ")
	}
	if s.Kind() == scope.UserChannel {
		out += " (user channels)"
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// Profiles.

// profileRow is a library profile with its scope and counts in words.
type profileRow struct {
	profiles.View
	ScopeText string
}

// Count is the number of channels in one state.
func (p profileRow) Count(state string) int { return p.Counts[storage.ProfileState(state)] }

// Pending is the channels the profile is on its way to (queued or fetched,
// not yet seen in a ProfileList).
func (p profileRow) Pending() int { return p.Count("pending") + p.Count("sent") }

func rowOf(v profiles.View) profileRow { return profileRow{View: v, ScopeText: describeScope(v.Scope)} }

type libraryData struct {
	Profiles  []profileRow
	Next      string
	CanUpload bool
}

// NextURL is the library's following page.
func (d libraryData) NextURL() string { return pageURL("/profiles", nil, d.Next) }

func (c *Console) loadLibrary(r *http.Request, actor *adminauth.Actor, after string) (*libraryData, error) {
	views, next, err := listPage(c, r, actor, "/v1/profiles", "profiles", func(v profiles.View) string { return v.ID },
		map[string]string{"after": after})
	if err != nil {
		return nil, err
	}
	d := &libraryData{Next: next, CanUpload: c.cfg.API.Allows(actor, "POST", "/v1/profiles")}
	for _, v := range views {
		d.Profiles = append(d.Profiles, rowOf(v))
	}
	return d, nil
}

func (c *Console) profileLibrary(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d, err := c.loadLibrary(r, actor, r.URL.Query().Get("after"))
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "profiles", actor, &webui.Page{Title: "Profiles", Data: d})
}

// uploadTarget is the API target of an upload with the form's options.
func uploadTarget(path string, r *http.Request) string {
	if r.PostFormValue("sign") == "on" {
		return path + "?sign=true"
	}
	return path
}

// warned is a success message with the API's warnings (payload types
// outside Apple's schema), which do not stop an upload.
func warned(msg string, warnings []string) string {
	if len(warnings) > 0 {
		msg += " Warning: " + strings.Join(warnings, "; ") + "."
	}
	return msg
}

// refusedUpload is the API's refusal of an upload, for the file field;
// nil when the refusal is not the file's (a role too low, a fault).
func refusedUpload(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict || ae.Status == http.StatusRequestEntityTooLarge) {
		return ae
	}
	return nil
}

// uploadProfile adds a .mobileconfig to the library; a file the API
// refuses is shown again on the library page with its reason at the field.
func (c *Console) uploadProfile(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	data := upload(r, "file", maxProfileUpload)
	if len(data) == 0 {
		c.site.Redirect(w, r, Prefix+"/profiles", webui.Flash{Error: true, Message: "Choose a .mobileconfig file to upload."})
		return
	}
	var v profiles.View
	raw, err := c.callRaw(r, actor, "POST", uploadTarget("/v1/profiles", r), data)
	if err == nil {
		err = decodeJSON(raw, &v)
	}
	if ae := refusedUpload(err); ae != nil {
		d, lerr := c.loadLibrary(r, actor, "")
		if lerr != nil {
			c.show(w, r, actor, lerr)
			return
		}
		c.render(w, r, ae.Status, "profiles", actor, &webui.Page{Title: "Profiles", Data: d, Errors: webui.FormErrors{"file": ae.Reason}})
		return
	}
	c.after(w, r, Prefix+"/profiles/"+esc(v.ID), err, warned("Profile "+v.ID+" uploaded; it is scoped to nothing until you set its scope.", v.Warnings))
}

type profileData struct {
	Profile   profileRow
	Versions  []profiles.VersionView
	States    []storage.ChannelProfile
	Next      string
	Scope     scopeForm
	CanUpload bool
	CanResend bool
}

// NextURL is the following page of device states.
func (d profileData) NextURL() string { return pageURL("/profiles/"+esc(d.Profile.ID), nil, d.Next) }

// Current is the current version's summary (nil when it could not be read).
func (d profileData) Current() *profiles.VersionView {
	if len(d.Versions) > 0 && d.Versions[0].Version == d.Profile.Version {
		return &d.Versions[0]
	}
	return nil
}

func (c *Console) loadProfile(r *http.Request, actor *adminauth.Actor, id, after string) (*profileData, error) {
	base := "/v1/profiles/" + esc(id)
	var v profiles.View
	if err := c.call(r, actor, "GET", base, nil, &v); err != nil {
		return nil, err
	}
	d := &profileData{Profile: rowOf(v), CanUpload: c.cfg.API.Allows(actor, "PUT", base), CanResend: c.cfg.API.Allows(actor, "POST", base+"/resend")}
	d.Scope = scopeForm{Scope: v.Scope, Action: Prefix + "/profiles/" + esc(id) + "/scope", CanEdit: c.cfg.API.Allows(actor, "PUT", base+"/scope"),
		Reinstall: &v.Reinstall}
	var vs struct {
		Versions []profiles.VersionView `json:"versions"`
	}
	if err := c.call(r, actor, "GET", base+"/versions", nil, &vs); err != nil {
		return nil, err
	}
	d.Versions = vs.Versions
	var err error
	d.States, d.Next, err = listPage(c, r, actor, base+"/status", "channels", func(s storage.ChannelProfile) string { return s.ChannelID },
		map[string]string{"after": after})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (c *Console) profilePage(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d, err := c.loadProfile(r, actor, r.PathValue("id"), r.URL.Query().Get("after"))
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.renderProfile(w, r, actor, http.StatusOK, d, nil)
}

func (c *Console) renderProfile(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor, status int, d *profileData, errs webui.FormErrors) {
	title := d.Profile.DisplayName
	if title == "" {
		title = d.Profile.ID
	}
	c.render(w, r, status, "profile", actor, &webui.Page{Title: title, Data: d, Errors: errs})
}

func profilePage(r *http.Request) string { return Prefix + "/profiles/" + esc(r.PathValue("id")) }

// uploadVersion replaces a profile's content with a new version; the API
// refuses another identifier or an unchanged PayloadUUID, shown at the field.
func (c *Console) uploadVersion(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	id := r.PathValue("id")
	data := upload(r, "file", maxProfileUpload)
	if len(data) == 0 {
		c.site.Redirect(w, r, profilePage(r), webui.Flash{Error: true, Message: "Choose a .mobileconfig file to upload."})
		return
	}
	var v profiles.View
	raw, err := c.callRaw(r, actor, "PUT", uploadTarget("/v1/profiles/"+esc(id), r), data)
	if err == nil {
		err = decodeJSON(raw, &v)
	}
	if ae := refusedUpload(err); ae != nil {
		d, lerr := c.loadProfile(r, actor, id, "")
		if lerr != nil {
			c.show(w, r, actor, lerr)
			return
		}
		c.renderProfile(w, r, actor, ae.Status, d, webui.FormErrors{"file": ae.Reason})
		return
	}
	c.after(w, r, profilePage(r), err, warned(fmt.Sprintf("Version %d uploaded; the devices in scope get it.", v.Version), v.Warnings))
}

// scopeProfile sets where a profile applies; a scope the API refuses is
// shown again as typed, with the reason.
func (c *Console) scopeProfile(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	id := r.PathValue("id")
	s := scopeFromForm(r)
	reinstall := r.PostFormValue("reinstall") == "on"
	var v profiles.View
	err := c.call(r, actor, "PUT", "/v1/profiles/"+esc(id)+"/scope", profiles.ScopeRequest{Scope: s, Reinstall: &reinstall}, &v)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		d, lerr := c.loadProfile(r, actor, id, "")
		if lerr != nil {
			c.show(w, r, actor, lerr)
			return
		}
		d.Scope.Scope, d.Scope.Reinstall = s, &reinstall
		c.renderProfile(w, r, actor, ae.Status, d, webui.FormErrors{"scope": ae.Reason})
		return
	}
	c.after(w, r, profilePage(r), err, "Scope saved: "+describeScope(s)+".")
}

// loadDeviceConfig adds to a device's page its managed profiles and its
// declarations; a read the API refuses (or a server without DDM) leaves
// that section out rather than the page.
func (c *Console) loadDeviceConfig(r *http.Request, actor *adminauth.Actor, base string, d *deviceData) {
	var ps struct {
		Profiles []storage.ChannelProfile `json:"profiles"`
	}
	if c.call(r, actor, "GET", base+"/profile-states", nil, &ps) == nil {
		d.Managed = ps.Profiles
	}
	var st declarative.ChannelStatus
	if c.call(r, actor, "GET", base+"/declarations", nil, &st) == nil {
		d.DDM = &st
	}
}

// resendProfile queues the profile again to one channel, or to every
// channel where it failed.
func (c *Console) resendProfile(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	ch := strings.TrimSpace(r.PostFormValue("channel"))
	err := c.call(r, actor, "POST", "/v1/profiles/"+esc(r.PathValue("id"))+"/resend", profiles.ResendRequest{Channel: ch}, nil)
	msg := "Sent again to every device where it failed."
	if ch != "" {
		msg = "Sent again to " + ch + "."
	}
	c.after(w, r, profilePage(r), err, msg)
}

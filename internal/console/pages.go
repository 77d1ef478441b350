package console

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/declarative"
	"github.com/orchardmdm/orchard/internal/inventory"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// pageSize is how many rows a list page shows.
const pageSize = 50

// Dashboard.

type count struct {
	Name string
	N    int
}

type stats struct {
	At         time.Time
	Devices    int
	Platforms  []count
	OSVersions []count
	Fresh      []count // check-in freshness buckets
}

// statsCache keeps the fleet counts for a minute (the page says when they
// were counted): GET /v1/inventory/counts is a pass over every inventory
// and enrollment, which a busy dashboard must not repeat, and counters kept
// with each write cannot follow check-in freshness, which moves with the
// clock.
type statsCache struct {
	mu sync.Mutex
	s  *stats
}

const statsFor = time.Minute

// freshness names the API's check-in buckets, in the page's order.
var freshness = []struct{ key, name string }{
	{"within_hour", "within an hour"}, {"within_day", "within a day"}, {"within_week", "within a week"},
	{"longer_ago", "longer ago"}, {"never", "never"},
}

func (c *Console) fleetStats(r *http.Request, actor *adminauth.Actor) (*stats, error) {
	c.stats.mu.Lock()
	defer c.stats.mu.Unlock()
	if s := c.stats.s; s != nil && c.cfg.Now().Sub(s.At) < statsFor {
		return s, nil
	}
	var counts inventory.Counts
	if err := c.call(r, actor, "GET", "/v1/inventory/counts", nil, &counts); err != nil {
		return nil, err
	}
	s := &stats{At: counts.At, Devices: counts.Enrolled}
	known := func(p string) string {
		if p == "" {
			return "unknown"
		}
		return p
	}
	for _, p := range counts.Platforms {
		s.Platforms = append(s.Platforms, count{known(p.Platform), p.Count})
	}
	for _, v := range counts.OSVersions {
		s.OSVersions = append(s.OSVersions, count{known(v.Platform) + " " + v.OSVersion, v.Count})
	}
	for _, f := range freshness {
		s.Fresh = append(s.Fresh, count{f.name, counts.LastCheckIn[f.key]})
	}
	c.stats.s = s
	return s, nil
}

type dashboardData struct {
	Stats    *stats
	Push     map[string]any
	PushErr  string
	Tokens   []map[string]any
	Failures []storage.EnrollmentFailure
	Warnings []string
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	st, err := c.fleetStats(r, actor)
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	d := dashboardData{Stats: st}
	now := c.cfg.Now()
	var push map[string]any
	if err := c.call(r, actor, "GET", "/v1/push-certificate", nil, &push); err != nil {
		d.PushErr = reason(err)
		d.Warnings = append(d.Warnings, "No push certificate: devices cannot enroll or be reached. Upload one on the Push certificate page.")
	} else {
		d.Push = push
		if days, ok := push["days_until_expiry"].(float64); ok && days < 30 {
			d.Warnings = append(d.Warnings, fmt.Sprintf("The push certificate expires in %d days: renew it with the same Apple ID.", int(days)))
		}
	}
	var toks struct {
		Tokens []map[string]any `json:"tokens"`
	}
	if err := c.call(r, actor, "GET", "/v1/dep/tokens", nil, &toks); err == nil {
		d.Tokens = toks.Tokens
		for _, t := range toks.Tokens {
			// The ABM service says when a token needs attention (expiry
			// within 30 days, a refused renewal).
			if warn, ok := t["warning"].(string); ok && warn != "" {
				d.Warnings = append(d.Warnings, fmt.Sprintf("ABM token %v: %s", t["name"], warn))
			}
		}
	}
	var fails struct {
		Failures []storage.EnrollmentFailure `json:"failures"`
	}
	if err := c.call(r, actor, "GET", "/v1/enrollment/failures?limit=1000", nil, &fails); err == nil {
		for _, f := range fails.Failures {
			if now.Sub(f.At) < 24*time.Hour {
				d.Failures = append(d.Failures, f)
			}
		}
	}
	c.render(w, r, http.StatusOK, "dashboard", actor, &webui.Page{Title: "Dashboard", Data: d})
}

func reason(err error) string {
	if ae, ok := err.(*apiError); ok {
		return ae.Reason
	}
	return "unavailable"
}

// Devices.

type devicesData struct {
	Q, Platform, User string
	Devices           []storage.DeviceInventory
	Next              string
	Platforms         []string
}

func (c *Console) devices(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	q := r.URL.Query()
	d := devicesData{Q: strings.TrimSpace(q.Get("q")), Platform: q.Get("platform"), User: strings.TrimSpace(q.Get("user")),
		Platforms: []string{"iOS", "iPadOS", "macOS", "tvOS", "visionOS", "watchOS"}}
	if d.User != "" {
		// By primary user: the devices API answers device views.
		var page struct {
			Devices []adminapi.DeviceView `json:"devices"`
			Next    string                `json:"next"`
		}
		v := url.Values{"user": {d.User}, "limit": {strconv.Itoa(pageSize)}, "after": {q.Get("after")}}
		if err := c.call(r, actor, "GET", "/v1/devices?"+v.Encode(), nil, &page); err != nil {
			c.show(w, r, actor, err)
			return
		}
		for _, dv := range page.Devices {
			inv := storage.DeviceInventory{DeviceID: dv.ID}
			if dv.Facts != nil {
				inv.DeviceName, inv.SerialNumber, inv.Model, inv.OSVersion = dv.Facts.DeviceName, dv.Facts.SerialNumber, dv.Facts.Model, dv.Facts.OSVersion
			}
			d.Devices = append(d.Devices, inv)
		}
		d.Next = page.Next
	} else {
		var page struct {
			Devices []storage.DeviceInventory `json:"devices"`
			Next    string                    `json:"next"`
		}
		v := url.Values{"limit": {strconv.Itoa(pageSize)}}
		if d.Q != "" {
			v.Set("q", d.Q)
		}
		if d.Platform != "" {
			v.Set("platform", d.Platform)
		}
		if a := q.Get("after"); a != "" {
			v.Set("after", a)
		}
		if err := c.call(r, actor, "GET", "/v1/inventory?"+v.Encode(), nil, &page); err != nil {
			c.show(w, r, actor, err)
			return
		}
		d.Devices, d.Next = page.Devices, page.Next
	}
	c.render(w, r, http.StatusOK, "devices", actor, &webui.Page{Title: "Devices", Data: d})
}

// NextURL is the following page's link with the same filters.
func (d devicesData) NextURL() string {
	v := url.Values{"after": {d.Next}}
	for k, s := range map[string]string{"q": d.Q, "platform": d.Platform, "user": d.User} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return Prefix + "/devices?" + v.Encode()
}

// Device.

type deviceAction struct {
	Name, Label string
	Destructive bool // needs the device's name typed to confirm
	Message     bool // takes a message (lock, lost mode)
}

// consoleActions are the device actions the device page offers, in order.
var consoleActions = []deviceAction{
	{Name: "refresh", Label: "Refresh inventory"},
	{Name: "lock", Label: "Lock", Message: true},
	{Name: "clear-passcode", Label: "Clear passcode"},
	{Name: "lost-mode-enable", Label: "Enable Lost Mode", Message: true},
	{Name: "lost-mode-disable", Label: "Disable Lost Mode"},
	{Name: "restart", Label: "Restart"},
	{Name: "shutdown", Label: "Shut down"},
	{Name: "erase", Label: "Erase", Destructive: true},
	{Name: "retire", Label: "Retire (remove management)", Destructive: true},
}

type deviceData struct {
	Device    adminapi.DeviceView
	Inv       *storage.DeviceInventory
	Name      string // what erase and retire must be confirmed with
	Apps      []map[string]any
	Profiles  []map[string]any
	Certs     []map[string]any
	Commands  []adminapi.ChannelCommandView
	CmdNext   string
	Actions   []deviceAction
	Confirm   string // the destructive action whose confirmation failed
	ConfirmOf string
	// CanOwn: the actor may set the device's ownership.
	CanOwn bool
	// Managed is the library profiles' states on the device channel; DDM
	// its declarations token and reported declarations (nil: not offered).
	Managed []storage.ChannelProfile
	DDM     *declarative.ChannelStatus
}

// displayName is what a device is called on its page and what a
// destructive action must be confirmed with: its name, else its serial,
// else its ID.
func displayName(dv *adminapi.DeviceView, inv *storage.DeviceInventory) string {
	switch {
	case inv != nil && inv.DeviceName != "":
		return inv.DeviceName
	case dv.Facts != nil && dv.Facts.DeviceName != "":
		return dv.Facts.DeviceName
	case inv != nil && inv.SerialNumber != "":
		return inv.SerialNumber
	case dv.Facts != nil && dv.Facts.SerialNumber != "":
		return dv.Facts.SerialNumber
	}
	return dv.ID
}

func (c *Console) loadDevice(r *http.Request, actor *adminauth.Actor, id string) (*deviceData, error) {
	d := &deviceData{}
	if err := c.call(r, actor, "GET", "/v1/devices/"+url.PathEscape(id), nil, &d.Device); err != nil {
		return nil, err
	}
	var inv storage.DeviceInventory
	if err := c.call(r, actor, "GET", "/v1/devices/"+url.PathEscape(id)+"/inventory", nil, &inv); err == nil {
		d.Inv = &inv
	}
	d.Name = displayName(&d.Device, d.Inv)
	return d, nil
}

func (c *Console) device(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	id := r.PathValue("id")
	d, err := c.loadDevice(r, actor, id)
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	base := "/v1/devices/" + url.PathEscape(id)
	for _, rep := range []struct {
		path, key string
		into      *[]map[string]any
	}{{"/apps", "apps", &d.Apps}, {"/profiles", "profiles", &d.Profiles}, {"/certificates", "certificates", &d.Certs}} {
		var m map[string]any
		if err := c.call(r, actor, "GET", base+rep.path, nil, &m); err == nil {
			if list, ok := m[rep.key].([]any); ok {
				for _, it := range list {
					if im, ok := it.(map[string]any); ok {
						*rep.into = append(*rep.into, im)
					}
				}
			}
		}
	}
	var hist struct {
		Commands []adminapi.ChannelCommandView `json:"commands"`
		Next     string                        `json:"next"`
	}
	v := url.Values{"limit": {"20"}}
	if b := r.URL.Query().Get("before"); b != "" {
		v.Set("before", b)
	}
	if err := c.call(r, actor, "GET", base+"/commands?"+v.Encode(), nil, &hist); err == nil {
		d.Commands, d.CmdNext = hist.Commands, hist.Next
	}
	// The buttons are the actions the actor's role allows, by the API's rule.
	for _, a := range consoleActions {
		if c.cfg.API.Allows(actor, "POST", base+"/actions/"+a.Name) {
			d.Actions = append(d.Actions, a)
		}
	}
	d.CanOwn = c.cfg.API.Allows(actor, "PUT", base+"/ownership")
	c.loadDeviceConfig(r, actor, base, d)
	c.render(w, r, http.StatusOK, "device", actor, &webui.Page{Title: d.Name, Data: d})
}

// action sends a device action through the API, which decides whether the
// actor may (a helpdesk erase is refused there, with 403, and audited).
func (c *Console) action(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	id, name := r.PathValue("id"), r.PathValue("action")
	if _, err := mdm.ParseChannelID(id); err != nil {
		webui.Refuse(w, http.StatusBadRequest, "bad request: invalid device id")
		return
	}
	page := Prefix + "/devices/" + url.PathEscape(id)
	var spec *deviceAction
	for i := range consoleActions {
		if consoleActions[i].Name == name {
			spec = &consoleActions[i]
		}
	}
	if spec == nil {
		webui.Refuse(w, http.StatusNotFound, "not found: no such device action")
		return
	}
	body := map[string]any{}
	if spec.Message {
		if m := strings.TrimSpace(r.PostFormValue("message")); m != "" {
			body["message"] = m
		}
	}
	if spec.Destructive {
		// Ask the API first, so a role that may not is refused (and
		// audited) whatever it typed.
		if !c.cfg.API.Allows(actor, "POST", "/v1/devices/"+id+"/actions/"+name) {
			c.after(w, r, page, c.call(r, actor, "POST", "/v1/devices/"+url.PathEscape(id)+"/actions/"+name, body, nil), "")
			return
		}
		d, err := c.loadDevice(r, actor, id)
		if err != nil {
			c.after(w, r, page, err, "")
			return
		}
		if strings.TrimSpace(r.PostFormValue("confirm")) != d.Name {
			c.site.Redirect(w, r, page, webui.Flash{Error: true,
				Message: fmt.Sprintf("%s not sent: type the device's name (%s) exactly to confirm.", spec.Label, d.Name)})
			return
		}
		body["confirm"] = true
	}
	var res struct {
		CommandUUID string `json:"command_uuid"`
	}
	err := c.call(r, actor, "POST", "/v1/devices/"+url.PathEscape(id)+"/actions/"+name, body, &res)
	msg := spec.Label + " sent."
	if res.CommandUUID != "" {
		msg = spec.Label + " queued as command " + res.CommandUUID + "."
	}
	c.after(w, r, page, err, msg)
}

// Enrollment.

type enrollmentData struct {
	Invitations  []map[string]any
	Configurator []map[string]any
	Tokens       []map[string]any
	ADEProfiles  map[string][]map[string]any
	Failures     []storage.EnrollmentFailure
}

func (c *Console) enrollment(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d := enrollmentData{ADEProfiles: map[string][]map[string]any{}}
	var inv struct {
		Invitations []map[string]any `json:"invitations"`
	}
	if err := c.call(r, actor, "GET", "/v1/enrollment/invitations?limit=100", nil, &inv); err == nil {
		d.Invitations = inv.Invitations
	}
	var conf struct {
		Profiles []map[string]any `json:"profiles"`
	}
	if err := c.call(r, actor, "GET", "/v1/configurator/profiles", nil, &conf); err == nil {
		d.Configurator = conf.Profiles
	}
	var toks struct {
		Tokens []map[string]any `json:"tokens"`
	}
	if err := c.call(r, actor, "GET", "/v1/dep/tokens", nil, &toks); err == nil {
		d.Tokens = toks.Tokens
		for _, t := range toks.Tokens {
			id, _ := t["id"].(string)
			var ps struct {
				Profiles []map[string]any `json:"profiles"`
			}
			if id != "" && c.call(r, actor, "GET", "/v1/dep/tokens/"+url.PathEscape(id)+"/profiles", nil, &ps) == nil {
				d.ADEProfiles[id] = ps.Profiles
			}
		}
	}
	var fails struct {
		Failures []storage.EnrollmentFailure `json:"failures"`
	}
	if err := c.call(r, actor, "GET", "/v1/enrollment/failures?limit=50", nil, &fails); err == nil {
		d.Failures = fails.Failures
	}
	c.render(w, r, http.StatusOK, "enrollment", actor, &webui.Page{Title: "Enrollment", Data: d})
}

// Push certificate.

type pushData struct {
	Info      map[string]any
	Missing   string
	CanUpload bool
}

func (c *Console) pushPage(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d := pushData{CanUpload: c.cfg.API.Allows(actor, "PUT", "/v1/push-certificate")}
	if err := c.call(r, actor, "GET", "/v1/push-certificate", nil, &d.Info); err != nil {
		d.Missing = reason(err)
	}
	c.render(w, r, http.StatusOK, "push", actor, &webui.Page{Title: "Push certificate", Data: d})
}

// pushUpload takes the certificate and key PEM files from a multipart form
// and uploads them through PUT /v1/push-certificate.
func (c *Console) pushUpload(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	read := func(field string) string { return string(upload(r, field, 128<<10)) }
	body := map[string]any{"cert_pem": read("cert"), "key_pem": read("key")}
	if id := strings.TrimSpace(r.PostFormValue("apple_id")); id != "" {
		body["apple_id"] = id
	}
	c.after(w, r, Prefix+"/push", c.call(r, actor, "PUT", "/v1/push-certificate", body, nil), "Push certificate uploaded.")
}

// upload reads a multipart form's file field (or, without a file, the
// field's text), at most max bytes (webui bounds the whole form already).
func upload(r *http.Request, field string, max int64) []byte {
	f, _, err := r.FormFile(field)
	if err != nil {
		return []byte(strings.TrimSpace(r.PostFormValue(field)))
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, max))
	return b
}

// Admins and tokens.

type adminsData struct {
	Admins    []adminapi.AdminView
	Tokens    []adminapi.TokenView
	CanManage bool
	Roles     []adminauth.Role
	NewToken  string // shown once, right after creation
}

func (c *Console) adminsData(r *http.Request, actor *adminauth.Actor) (*adminsData, error) {
	d := &adminsData{CanManage: c.cfg.API.Allows(actor, "POST", "/v1/admins"), Roles: adminauth.Roles}
	var admins struct {
		Admins []adminapi.AdminView `json:"admins"`
	}
	if err := c.call(r, actor, "GET", "/v1/admins", nil, &admins); err != nil {
		return nil, err
	}
	d.Admins = admins.Admins
	var toks struct {
		Tokens []adminapi.TokenView `json:"tokens"`
	}
	if err := c.call(r, actor, "GET", "/v1/tokens", nil, &toks); err != nil {
		return nil, err
	}
	d.Tokens = toks.Tokens
	return d, nil
}

func (c *Console) admins(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d, err := c.adminsData(r, actor)
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "admins", actor, &webui.Page{Title: "Admins and tokens", Data: d})
}

func (c *Console) createAdmin(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	name := strings.TrimSpace(r.PostFormValue("username"))
	body := map[string]any{"username": name, "role": r.PostFormValue("role"), "password": r.PostFormValue("password")}
	err := c.call(r, actor, "POST", "/v1/admins", body, nil)
	c.after(w, r, Prefix+"/admins", err, "Admin "+name+" created.")
}

type adminData struct {
	Admin    adminapi.AdminView
	CanReset bool
}

// adminPage shows one admin account and, to an owner, the two-factor reset.
func (c *Console) adminPage(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	base := "/v1/admins/" + url.PathEscape(r.PathValue("name"))
	d := adminData{CanReset: c.cfg.API.Allows(actor, "DELETE", base+"/two-factor")}
	if err := c.call(r, actor, "GET", base, nil, &d.Admin); err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "admin", actor, &webui.Page{Title: "Admin " + d.Admin.Username, Data: d})
}

// resetTwoFactor turns another admin's second factor off (a lost
// authenticator), through the owner-only API route that audits it.
func (c *Console) resetTwoFactor(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	name := r.PathValue("name")
	err := c.call(r, actor, "DELETE", "/v1/admins/"+url.PathEscape(name)+"/two-factor", nil, nil)
	c.after(w, r, Prefix+"/admins/"+url.PathEscape(name), err, "Two-factor sign-in of "+name+" is off: the password alone signs in until they set it up again.")
}

func (c *Console) createToken(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	body := map[string]any{"name": strings.TrimSpace(r.PostFormValue("name"))}
	if role := r.PostFormValue("role"); role != "" {
		body["role"] = role
	}
	var tok adminapi.TokenView
	if err := c.call(r, actor, "POST", "/v1/tokens", body, &tok); err != nil {
		c.after(w, r, Prefix+"/admins", err, "")
		return
	}
	d, err := c.adminsData(r, actor)
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	d.NewToken = tok.Token
	c.render(w, r, http.StatusOK, "admins", actor, &webui.Page{Title: "Admins and tokens", Data: d})
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	err := c.call(r, actor, "DELETE", "/v1/tokens/"+url.PathEscape(r.PathValue("id")), nil, nil)
	c.after(w, r, Prefix+"/admins", err, "Token revoked.")
}

// Audit log.

type auditData struct {
	Actor, Action, Target string
	Entries               []storage.AuditEntry
	Next                  string
	CSV                   string
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	q := r.URL.Query()
	d := auditData{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")), Target: strings.TrimSpace(q.Get("target"))}
	v := url.Values{"limit": {strconv.Itoa(pageSize)}}
	for k, s := range map[string]string{"actor": d.Actor, "action": d.Action, "target": d.Target, "after": q.Get("after")} {
		if s != "" {
			v.Set(k, s)
		}
	}
	var page struct {
		Entries []storage.AuditEntry `json:"entries"`
		Next    string               `json:"next"`
	}
	if err := c.call(r, actor, "GET", "/v1/audit?"+v.Encode(), nil, &page); err != nil {
		c.show(w, r, actor, err)
		return
	}
	d.Entries, d.Next = page.Entries, page.Next
	c.render(w, r, http.StatusOK, "audit", actor, &webui.Page{Title: "Audit log", Data: d})
}

// NextURL is the following page's link with the same filters.
func (d auditData) NextURL() string {
	v := url.Values{"after": {d.Next}}
	for k, s := range map[string]string{"actor": d.Actor, "action": d.Action, "target": d.Target} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return Prefix + "/audit?" + v.Encode()
}

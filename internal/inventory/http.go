package inventory

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// fail is an answer other than 500, with a one-line reason.
func fail(code int, format string, args ...any) error {
	return apijson.Errorf(code, format, args...)
}

// deviceID reads and checks the {id} path value: a device channel.
func deviceID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	ch, err := mdm.ParseChannelID(id)
	if err != nil {
		return "", fail(http.StatusBadRequest, "invalid device id: %v", err)
	}
	if ch.IsUser() {
		return "", fail(http.StatusBadRequest, "give a device id, not a user channel")
	}
	return id, nil
}

// View is a device's inventory as the API shows it.
type View struct {
	storage.DeviceInventory
	Enrolled               bool                   `json:"enrolled"`
	EnrollmentType         storage.EnrollmentType `json:"enrollment_type,omitempty"`
	EnrollmentMethod       string                 `json:"enrollment_method,omitempty"`
	LastSeen               *time.Time             `json:"last_seen,omitempty"`
	BootstrapTokenEscrowed bool                   `json:"bootstrap_token_escrowed"`
	Raw                    RawView                `json:"raw"`
}

// RawView holds the device's last answers as it sent them, secrets removed.
type RawView struct {
	DeviceInformation map[string]any `json:"device_information,omitempty"`
	SecurityInfo      map[string]any `json:"security_info,omitempty"`
}

// secretKeys are answer keys never shown: a push token, and the escrowed
// FileVault personal recovery key.
var secretKeys = map[string][]string{
	rtDeviceInformation: {"PushToken"},
	rtSecurityInfo:      {"FDE_PersonalRecoveryKeyCMS"},
}

// device loads what is known of a device: its enrollment and inventory,
// either of which may be missing (not both).
func (i *Inventory) device(r *http.Request, id string) (*storage.Enrollment, *storage.DeviceInventory, error) {
	e, err := i.store.Enrollment(r.Context(), id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, nil, err
	}
	rec, ierr := i.store.Inventory(r.Context(), id)
	switch {
	case ierr != nil && !errors.Is(ierr, storage.ErrNotFound):
		return nil, nil, ierr
	case rec == nil && e == nil:
		return nil, nil, fail(http.StatusNotFound, "unknown device %s", id)
	case rec == nil:
		rec = &storage.DeviceInventory{DeviceID: id}
		seed(rec, e, e.EnrolledAt, false)
	}
	return e, rec, nil
}

// Show serves GET /v1/devices/{id}/inventory.
func (i *Inventory) Show(w http.ResponseWriter, r *http.Request) {
	id, err := deviceID(r)
	if err != nil {
		apijson.Fail(w, r, i.log, err)
		return
	}
	e, rec, err := i.device(r, id)
	if err != nil {
		apijson.Fail(w, r, i.log, err)
		return
	}
	v := View{DeviceInventory: *rec}
	if e != nil {
		v.Enrolled, v.EnrollmentType, v.EnrollmentMethod = e.Enrolled, e.Type, e.EnrollmentMethod
		v.BootstrapTokenEscrowed = len(e.BootstrapTokenSealed) > 0
		if !e.LastSeen.IsZero() {
			v.LastSeen = &e.LastSeen
		}
	}
	if v.Raw.DeviceInformation, err = i.rawAnswer(r, id, rtDeviceInformation, "QueryResponses"); err != nil {
		apijson.Fail(w, r, i.log, err)
		return
	}
	if v.Raw.SecurityInfo, err = i.rawAnswer(r, id, rtSecurityInfo, "SecurityInfo"); err != nil {
		apijson.Fail(w, r, i.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, v)
}

// rawAnswer returns the dictionary under key of the latest answer of a
// kind, as JSON values, without secrets; nil when there is none.
func (i *Inventory) rawAnswer(r *http.Request, id, kind, key string) (map[string]any, error) {
	rep, err := i.store.DeviceReport(r.Context(), id, kind)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d, _ := apijson.ResponseJSON(rep.Raw)[key].(map[string]any)
	for _, k := range secretKeys[kind] {
		delete(d, k)
	}
	return d, nil
}

// Apps serves GET /v1/devices/{id}/apps: the latest InstalledApplicationList.
func (i *Inventory) Apps(w http.ResponseWriter, r *http.Request) {
	i.latest(w, r, rtApps, "InstalledApplicationList", "apps")
}

// Profiles serves GET /v1/devices/{id}/profiles: the latest ProfileList.
func (i *Inventory) Profiles(w http.ResponseWriter, r *http.Request) {
	i.latest(w, r, rtProfiles, "ProfileList", "profiles")
}

// Certificates serves GET /v1/devices/{id}/certificates: the latest CertificateList.
func (i *Inventory) Certificates(w http.ResponseWriter, r *http.Request) {
	i.latest(w, r, rtCertificates, "CertificateList", "certificates")
}

// Location serves GET /v1/devices/{id}/location: the latest DeviceLocation answer.
func (i *Inventory) Location(w http.ResponseWriter, r *http.Request) {
	i.latest(w, r, rtLocation, "", "location")
}

// latest serves the latest answer of a kind: the array under key, or
// the whole answer when key is "".
func (i *Inventory) latest(w http.ResponseWriter, r *http.Request, kind, key, name string) {
	id := r.PathValue("id")
	if _, err := mdm.ParseChannelID(id); err != nil {
		apijson.WriteError(w, http.StatusBadRequest, "invalid device or channel id: "+err.Error())
		return
	}
	rep, err := i.store.DeviceReport(r.Context(), id, kind)
	if errors.Is(err, storage.ErrNotFound) {
		apijson.WriteError(w, http.StatusNotFound, fmt.Sprintf("no %s answer from %s yet", kind, id))
		return
	}
	if err != nil {
		apijson.Fail(w, r, i.log, err)
		return
	}
	var body any = apijson.ResponseJSON(rep.Raw)
	if key != "" {
		body = body.(map[string]any)[key]
	}
	if body == nil {
		body = []any{}
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{
		"device_id": id, "command_uuid": rep.CommandUUID, "at": rep.At, name: body,
	})
}

// Filter selects devices in GET /v1/inventory. Empty fields match all.
type Filter struct {
	Platform   string // case-insensitive
	Model      string // Model, ProductName or ModelName, case-insensitive
	OSVersion  string // a version or a prefix of whole parts: "17" matches 17.5.1
	Supervised *bool  // devices that never said do not match
	Ownership  storage.Ownership
	// Search is a case-insensitive substring of the device name, serial
	// number, UDID or device ID (storage.DeviceInventory.MatchesText).
	Search string
}

// Match reports whether inv passes the filter.
func (f *Filter) Match(inv *storage.DeviceInventory) bool {
	switch {
	case f.Platform != "" && !strings.EqualFold(f.Platform, inv.Platform):
		return false
	case f.Model != "" && !strings.EqualFold(f.Model, inv.Model) && !strings.EqualFold(f.Model, inv.ProductName) && !strings.EqualFold(f.Model, inv.ModelName):
		return false
	case f.OSVersion != "" && inv.OSVersion != f.OSVersion && !strings.HasPrefix(inv.OSVersion, f.OSVersion+"."):
		return false
	case f.Supervised != nil && (inv.Supervised == nil || *inv.Supervised != *f.Supervised):
		return false
	case f.Ownership != "" && f.Ownership != inv.Ownership:
		return false
	case f.Search != "" && !inv.MatchesText(f.Search):
		return false
	}
	return true
}

var filterParams = []string{"platform", "model", "os_version", "supervised", "ownership", "q", "limit", "after"}

func parseFilter(r *http.Request) (*Filter, int, error) {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(filterParams, k) {
			return nil, 0, fail(http.StatusBadRequest, "unknown parameter %q (%s)", k, strings.Join(filterParams, ", "))
		}
	}
	f := &Filter{Platform: q.Get("platform"), Model: q.Get("model"), OSVersion: q.Get("os_version"), Search: strings.TrimSpace(q.Get("q"))}
	if len(f.Search) > 128 {
		return nil, 0, fail(http.StatusBadRequest, "q must be at most 128 characters")
	}
	if !utf8.ValidString(f.Search) {
		return nil, 0, fail(http.StatusBadRequest, "q must be UTF-8 text")
	}
	if s := q.Get("supervised"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, 0, fail(http.StatusBadRequest, "supervised must be true or false")
		}
		f.Supervised = &b
	}
	switch o := storage.Ownership(q.Get("ownership")); o {
	case "", storage.Corporate, storage.Personal:
		f.Ownership = o
	default:
		return nil, 0, fail(http.StatusBadRequest, "ownership must be corporate or personal")
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			return nil, 0, fail(http.StatusBadRequest, "limit must be 1..%d", maxPage)
		}
		limit = n
	}
	return f, limit, nil
}

const (
	maxPage  = 1000
	scanPage = 500
)

// List serves GET /v1/inventory (and GET /v1/devices with filters):
// devices matching the filter, in device ID order, with "next" as the
// cursor for the following page ("" at the end).
func (i *Inventory) List(w http.ResponseWriter, r *http.Request) {
	f, limit, err := parseFilter(r)
	if err != nil {
		apijson.Fail(w, r, i.log, err)
		return
	}
	after, next := r.URL.Query().Get("after"), ""
	out := []storage.DeviceInventory{}
	for {
		var page []storage.DeviceInventory
		if f.Search != "" {
			// The store skips what cannot match without decoding it.
			page, err = i.store.SearchInventory(r.Context(), f.Search, after, scanPage)
		} else {
			page, err = i.store.ListInventory(r.Context(), after, scanPage)
		}
		if err != nil {
			apijson.Fail(w, r, i.log, err)
			return
		}
		for n := range page {
			after = page[n].DeviceID
			if f.Match(&page[n]) {
				out = append(out, page[n])
				if len(out) == limit {
					next = after
					break
				}
			}
		}
		if next != "" || len(page) < scanPage {
			break
		}
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"devices": out, "next": next})
}

// checkInBuckets are the windows GET /v1/inventory/counts splits the last
// check-ins by, with their names in the answer.
var checkInBuckets = []struct {
	name   string
	within time.Duration
}{{"within_hour", time.Hour}, {"within_day", 24 * time.Hour}, {"within_week", 7 * 24 * time.Hour}}

// PlatformCount is one line of the counts by platform.
type PlatformCount struct {
	Platform string `json:"platform"` // "" when unknown
	Count    int    `json:"count"`
}

// VersionCount is one line of the counts by OS version.
type VersionCount struct {
	Platform  string `json:"platform"`
	OSVersion string `json:"os_version"`
	Count     int    `json:"count"`
}

// Counts is the answer of GET /v1/inventory/counts.
type Counts struct {
	At         time.Time       `json:"at"`
	Enrolled   int             `json:"enrolled"`
	Platforms  []PlatformCount `json:"platforms"`
	OSVersions []VersionCount  `json:"os_versions"`
	// LastCheckIn splits the enrolled devices: within_hour, within_day,
	// within_week, longer_ago, never.
	LastCheckIn map[string]int `json:"last_check_in"`
}

// Counts serves GET /v1/inventory/counts: the inventories not retired by
// platform and OS version (most first), and the enrolled devices by last
// check-in. Each call is a pass over the fleet; the console keeps one.
func (i *Inventory) Counts(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		apijson.WriteError(w, http.StatusBadRequest, "this endpoint takes no parameters")
		return
	}
	now := i.now()
	within := make([]time.Duration, len(checkInBuckets))
	for n, b := range checkInBuckets {
		within[n] = b.within
	}
	fc, err := i.store.CountFleet(r.Context(), now, within)
	if err != nil {
		apijson.Fail(w, r, i.log, err)
		return
	}
	out := Counts{At: now, Enrolled: fc.Enrolled, Platforms: []PlatformCount{}, OSVersions: []VersionCount{},
		LastCheckIn: map[string]int{"longer_ago": fc.Seen[len(within)], "never": fc.Never}}
	for n, b := range checkInBuckets {
		out.LastCheckIn[b.name] = fc.Seen[n]
	}
	for p, n := range fc.Platforms {
		out.Platforms = append(out.Platforms, PlatformCount{p, n})
	}
	for pv, n := range fc.OSVersions {
		out.OSVersions = append(out.OSVersions, VersionCount{pv.Platform, pv.OSVersion, n})
	}
	// Most first, then by name, so the answer is the same each time.
	slices.SortFunc(out.Platforms, func(a, b PlatformCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Platform, b.Platform))
	})
	slices.SortFunc(out.OSVersions, func(a, b VersionCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Platform, b.Platform), cmp.Compare(a.OSVersion, b.OSVersion))
	})
	apijson.WriteJSON(w, http.StatusOK, out)
}

package policy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/orchardmdm/orchard/storage"
)

// ErrInvalid: a policy or identifier breaks a rule (the message says which).
var ErrInvalid = errors.New("invalid")

// Import limits, as admins know them from other consoles.
const (
	MaxImportRows   = 5000
	MaxImportBytes  = 5 << 20
	MaxDetailsChars = 128
	maxNameChars    = 128
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Policies returns every policy, defaults first (built-in ones when not
// edited yet), then group policies by kind and priority.
func (e *Engine) Policies(ctx context.Context) ([]storage.EnrollmentPolicy, error) {
	all, err := e.store.EnrollmentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	for _, kind := range []string{storage.PolicyPlatform, storage.PolicyLimit} {
		if !slices.ContainsFunc(all, func(p storage.EnrollmentPolicy) bool { return p.Kind == kind && p.Default }) {
			all = append(all, BuiltinDefault(kind))
		}
	}
	slices.SortStableFunc(all, func(a, b storage.EnrollmentPolicy) int {
		switch {
		case a.Default != b.Default:
			if a.Default {
				return -1
			}
			return 1
		case a.Kind != b.Kind:
			return strings.Compare(a.Kind, b.Kind)
		}
		return a.Priority - b.Priority
	})
	return all, nil
}

// Policy returns one policy (a default even before it was edited).
func (e *Engine) Policy(ctx context.Context, id string) (*storage.EnrollmentPolicy, error) {
	all, err := e.Policies(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].ID == id {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("enrollment policy %q: %w", id, storage.ErrNotFound)
}

// Save checks p and stores it: a new policy when p.ID is "" (or an ID no
// policy has), else a replacement of the policy with that ID (which keeps
// its kind, default flag and creation time). It returns the stored policy and warnings,
// such as a default that blocks iOS, which breaks ADE.
func (e *Engine) Save(ctx context.Context, p storage.EnrollmentPolicy) (*storage.EnrollmentPolicy, []string, error) {
	all, err := e.Policies(ctx)
	if err != nil {
		return nil, nil, err
	}
	now := e.now().UTC()
	if p.ID == "" {
		if p.Default {
			return nil, nil, invalid("there is one default policy of each kind: edit %s or %s", DefaultPlatformID, DefaultLimitID)
		}
		p.ID, p.CreatedAt = newID(), now
	} else {
		i := slices.IndexFunc(all, func(o storage.EnrollmentPolicy) bool { return o.ID == p.ID })
		if i < 0 {
			// A group policy under an ID the admin chose.
			if !validID(p.ID) {
				return nil, nil, invalid("a policy ID is 1 to 64 lower-case letters, digits and dashes")
			}
			if p.Default {
				return nil, nil, invalid("there is one default policy of each kind")
			}
			p.CreatedAt = now
			all = append(all, storage.EnrollmentPolicy{ID: p.ID, Kind: p.Kind, CreatedAt: now})
			i = len(all) - 1
		}
		old := all[i]
		if p.Kind != "" && p.Kind != old.Kind {
			return nil, nil, invalid("a policy's kind cannot change")
		}
		p.Kind, p.Default, p.CreatedAt = old.Kind, old.Default, old.CreatedAt
		if p.CreatedAt.IsZero() {
			p.CreatedAt = now
		}
	}
	p.UpdatedAt = now
	if err := validate(&p); err != nil {
		return nil, nil, err
	}
	for _, o := range all {
		if o.ID != p.ID && !p.Default && !o.Default && o.Kind == p.Kind && o.Priority == p.Priority {
			return nil, nil, invalid("priority %d is taken by policy %s (%s)", p.Priority, o.ID, o.Name)
		}
	}
	for _, g := range p.Groups {
		if _, err := e.store.Group(ctx, g); err != nil {
			return nil, nil, fmt.Errorf("group %q: %w", g, err)
		}
	}
	if err := e.store.PutEnrollmentPolicy(ctx, &p); err != nil {
		return nil, nil, err
	}
	var warnings []string
	if r := p.Platforms[RuleIOS]; p.Default && r.Block {
		warnings = append(warnings, "the default policy blocks iOS/iPadOS: devices enrolling through Automated Device Enrollment "+
			"or Apple Configurator are refused too; block iOS in a group policy instead")
	}
	if r := p.Platforms[RuleMacOS]; p.Default && r.Block {
		warnings = append(warnings, "the default policy blocks macOS: Macs enrolling through Automated Device Enrollment are refused too")
	}
	e.log.Info("policy: enrollment policy saved", "id", p.ID, "kind", p.Kind, "default", p.Default)
	return &p, warnings, nil
}

// Delete removes a group policy; defaults cannot be deleted.
func (e *Engine) Delete(ctx context.Context, id string) error {
	if id == DefaultPlatformID || id == DefaultLimitID {
		return invalid("a default policy cannot be deleted; edit it instead")
	}
	return e.store.DeleteEnrollmentPolicy(ctx, id)
}

func validate(p *storage.EnrollmentPolicy) error {
	p.Name = strings.TrimSpace(p.Name)
	switch {
	case p.Kind != storage.PolicyPlatform && p.Kind != storage.PolicyLimit:
		return invalid("kind must be %s or %s", storage.PolicyPlatform, storage.PolicyLimit)
	case p.Name == "" || utf8.RuneCountInString(p.Name) > maxNameChars:
		return invalid("name must be 1 to %d characters", maxNameChars)
	case utf8.RuneCountInString(p.Description) > 1024:
		return invalid("description longer than 1024 characters")
	case p.Default && (len(p.Groups) > 0 || p.Priority != 0):
		return invalid("a default policy applies to everyone: it has no groups and no priority")
	case !p.Default && len(p.Groups) == 0:
		return invalid("a group policy needs at least one group")
	case !p.Default && (p.Priority < 1 || p.Priority > 10000):
		return invalid("priority must be 1 (highest) to 10000")
	case len(p.Groups) > 1000:
		return invalid("at most 1000 groups")
	}
	slices.Sort(p.Groups)
	p.Groups = slices.Compact(p.Groups)
	switch p.Kind {
	case storage.PolicyLimit:
		if p.DeviceLimit < 1 || p.DeviceLimit > MaxDeviceLimit {
			return invalid("device_limit must be 1 to %d", MaxDeviceLimit)
		}
		if len(p.Platforms) > 0 {
			return invalid("a device limit policy has no platform rules")
		}
	case storage.PolicyPlatform:
		if p.DeviceLimit != 0 {
			return invalid("a platform policy has no device limit")
		}
		for k, r := range p.Platforms {
			if k != RuleIOS && k != RuleMacOS {
				return invalid("platform %q: rules are for %s (also iPadOS, tvOS, visionOS) and %s", k, RuleIOS, RuleMacOS)
			}
			for _, v := range []string{r.MinOS, r.MaxOS} {
				if v != "" && !validVersion(v) {
					return invalid("platform %s: %q is not a version like 17.4", k, v)
				}
			}
			if r.MinOS != "" && r.MaxOS != "" && CompareVersions(r.MinOS, r.MaxOS) > 0 {
				return invalid("platform %s: min_os %s is above max_os %s", k, r.MinOS, r.MaxOS)
			}
		}
	}
	return nil
}

func validVersion(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 6 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ValidIdentifier reports whether a normalised identifier fits its kind:
// a serial number of 1 to 64 letters and digits, an IMEI of 14 to 16 digits.
func ValidIdentifier(kind, v string) bool {
	switch kind {
	case storage.IdentifierSerial:
		if len(v) == 0 || len(v) > 64 {
			return false
		}
		for _, r := range v {
			if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
		return true
	case storage.IdentifierIMEI:
		return len(v) >= 14 && len(v) <= 16
	}
	return false
}

// ParseIdentifierCSV reads a two-column CSV without header (identifier,
// details) of one kind: at most MaxImportRows rows and MaxImportBytes.
// It returns every problem with its line number, or the rows.
func ParseIdentifierCSV(kind string, data []byte) ([]storage.CorporateIdentifier, []string) {
	if kind != storage.IdentifierSerial && kind != storage.IdentifierIMEI {
		return nil, []string{"kind must be serial or imei"}
	}
	if len(data) > MaxImportBytes {
		return nil, []string{fmt.Sprintf("file larger than %d bytes", MaxImportBytes)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	rd := csv.NewReader(bytes.NewReader(data))
	rd.FieldsPerRecord = -1
	rd.ReuseRecord = true
	var (
		rows     []storage.CorporateIdentifier
		problems []string
		seen     = map[string]int{}
	)
	bad := func(line int, format string, args ...any) {
		if len(problems) < 100 {
			problems = append(problems, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
		}
	}
	for n := 0; ; n++ {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad(pe.Line, "%v", pe.Err)
			} else {
				problems = append(problems, err.Error())
			}
			break
		}
		line, _ := rd.FieldPos(0) // only after a good read: FieldPos panics on a failed one
		if n >= MaxImportRows {
			problems = append(problems, fmt.Sprintf("more than %d rows", MaxImportRows))
			break
		}
		if len(rec) != 2 {
			bad(line, "want 2 columns (identifier, details), got %d", len(rec))
			continue
		}
		raw, details := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		v := NormaliseIdentifier(kind, raw)
		switch {
		case !utf8.ValidString(raw) || !ValidIdentifier(kind, v) || kind == storage.IdentifierIMEI && strings.Trim(raw, "0123456789 -") != "":
			bad(line, "%q is not a valid %s", clipRunes(raw, 40), kind)
		case !utf8.ValidString(details):
			bad(line, "details are not UTF-8")
		case utf8.RuneCountInString(details) > MaxDetailsChars:
			bad(line, "details longer than %d characters", MaxDetailsChars)
		case seen[v] != 0:
			bad(line, "%s repeats line %d", v, seen[v])
		default:
			seen[v] = line
			rows = append(rows, storage.CorporateIdentifier{Kind: kind, Value: v, Details: details})
		}
	}
	if len(rows) == 0 && len(problems) == 0 {
		problems = append(problems, "no rows")
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return rows, nil
}

func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// ImportIdentifiers stores checked rows (ParseIdentifierCSV or the API's).
func (e *Engine) ImportIdentifiers(ctx context.Context, rows []storage.CorporateIdentifier, overwrite bool) (storage.CorporateImportResult, error) {
	now := e.now().UTC()
	for i := range rows {
		rows[i].AddedAt = now
	}
	return e.store.ImportCorporateIdentifiers(ctx, rows, overwrite)
}

// Limit is where a user stands against their device limit.
type Limit struct {
	User    string   `json:"user"`
	DEM     bool     `json:"dem"`
	Limit   int      `json:"limit"`
	Policy  string   `json:"policy,omitempty"`
	Devices []string `json:"devices"`
	Held    int      `json:"held"`
	AtLimit bool     `json:"at_limit"`
}

// UserLimit tells how many devices a user holds against their limit.
func (e *Engine) UserLimit(ctx context.Context, username string) (*Limit, error) {
	u, err := e.store.User(ctx, username)
	if err != nil {
		return nil, err
	}
	out := &Limit{User: u.Username, DEM: u.DEM}
	if u.DEM {
		out.Limit = DEMLimit
		out.Devices, err = e.store.DEMDevices(ctx, username)
	} else {
		groups, gerr := e.store.UserGroups(ctx, username)
		if gerr != nil {
			return nil, gerr
		}
		all, perr := e.policies(ctx)
		if perr != nil {
			return nil, perr
		}
		p := pick(all, storage.PolicyLimit, groups)
		out.Limit, out.Policy = p.DeviceLimit, p.ID
		out.Devices, err = e.store.UserDevices(ctx, username)
	}
	if err != nil {
		return nil, err
	}
	if out.Devices == nil {
		out.Devices = []string{}
	}
	out.Held = len(out.Devices)
	out.AtLimit = out.Held >= out.Limit
	return out, nil
}

// SetOwnership records an admin's word on who owns a device: on its
// enrollment and its inventory (which GET /v1/devices?ownership= reads).
// A later enrollment of the device decides again.
func (e *Engine) SetOwnership(ctx context.Context, deviceID string, own storage.Ownership) error {
	if own != storage.Corporate && own != storage.Personal {
		return invalid("ownership must be corporate or personal")
	}
	cur, err := e.store.Enrollment(ctx, deviceID)
	if err != nil {
		return err
	}
	if cur.ID != cur.DeviceID {
		return invalid("%s is a user channel; set its device's ownership", deviceID)
	}
	if err := e.store.UpdateEnrollment(ctx, cur.ID, nil, func(en *storage.Enrollment) error {
		en.Ownership, en.OwnershipBy = own, storage.OwnershipByAdmin
		return nil
	}); err != nil {
		return err
	}
	_, err = e.store.UpdateInventory(ctx, cur.ID, func(inv *storage.DeviceInventory) error {
		inv.Ownership = own
		return nil
	})
	if err != nil {
		return err
	}
	e.log.Info("policy: device ownership set by an admin", "device", cur.ID, "ownership", own)
	return nil
}

package simdevice

import (
	"slices"
	"sync"

	"github.com/orchardmdm/orchard/mdm/profile"
)

// profiles is what the simulated device has installed, by identifier.
type profiles struct {
	mu        sync.Mutex
	installed map[string]string // PayloadIdentifier -> PayloadUUID
	refuse    map[string]bool   // identifiers whose install fails
}

var deviceProfiles sync.Map // *Device -> *profiles: Device stays a plain, copyable struct

func (d *Device) profiles() *profiles {
	p, _ := deviceProfiles.LoadOrStore(d, &profiles{installed: map[string]string{}, refuse: map[string]bool{}})
	return p.(*profiles)
}

// RefuseProfile makes every InstallProfile of the profile with this
// identifier fail, as a device refuses a payload it cannot apply.
func (d *Device) RefuseProfile(identifier string) {
	p := d.profiles()
	p.mu.Lock()
	p.refuse[identifier] = true
	p.mu.Unlock()
}

// LoseProfile removes an installed profile as a user does in Settings: the
// next ProfileList no longer has it.
func (d *Device) LoseProfile(identifier string) {
	p := d.profiles()
	p.mu.Lock()
	delete(p.installed, identifier)
	p.mu.Unlock()
}

// InstalledProfiles lists the identifiers of the installed profiles, sorted.
func (d *Device) InstalledProfiles() []string {
	p := d.profiles()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id := range p.installed {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func profileError(code int, msg string) map[string]any {
	return map[string]any{"ErrorChain": []map[string]any{{
		"ErrorCode": code, "ErrorDomain": "MCProfileErrorDomain", "USEnglishDescription": msg,
	}}}
}

// answerProfile answers InstallProfile, RemoveProfile and ProfileList
// from what the device has installed.
func (d *Device) answerProfile(c *Command) (string, map[string]any) {
	p := d.profiles()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch c.RequestType {
	case "InstallProfile":
		raw, _ := c.Payload["Payload"].([]byte)
		prof, err := profile.Parse(raw)
		if err != nil {
			return "Error", profileError(1000, "The profile is malformed.")
		}
		if p.refuse[prof.Identifier] {
			return "Error", profileError(4001, "The profile could not be installed.")
		}
		p.installed[prof.Identifier] = prof.UUID
	case "RemoveProfile":
		id, _ := c.Payload["Identifier"].(string)
		if _, ok := p.installed[id]; !ok {
			return "Error", profileError(1003, "The profile is not installed.")
		}
		delete(p.installed, id)
	case "ProfileList":
		list := []any{}
		ids := make([]string, 0, len(p.installed))
		for id := range p.installed {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			list = append(list, map[string]any{"PayloadIdentifier": id, "PayloadUUID": p.installed[id], "IsManaged": true})
		}
		return "Acknowledged", map[string]any{"ProfileList": list}
	}
	return "Acknowledged", nil
}

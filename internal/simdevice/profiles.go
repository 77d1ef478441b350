package simdevice

import (
	"context"
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

var deviceProfiles sync.Map // *Device or userKey -> *profiles: Device stays a plain, copyable struct

// userKey names a user channel's own profiles.
type userKey struct {
	d    *Device
	user string
}

func (d *Device) profiles() *profiles { return profilesOf(d) }

func profilesOf(key any) *profiles {
	p, _ := deviceProfiles.LoadOrStore(key, &profiles{installed: map[string]string{}, refuse: map[string]bool{}})
	return p.(*profiles)
}

func (d *Device) userProfiles(u User) *profiles {
	return profilesOf(userKey{d, u.UserID + "/" + u.ShortName})
}

// UserInstalledProfiles lists the identifiers installed on a user channel.
func (d *Device) UserInstalledProfiles(u User) []string { return d.userProfiles(u).list() }

// UserSettle connects on a user channel until it has nothing more,
// answering profile commands from the user's own profiles (a macOS user's
// profiles are not the device's) and acknowledging anything else.
func (d *Device) UserSettle(ctx context.Context, u User) ([]*Command, error) {
	p := d.userProfiles(u)
	var done []*Command
	cmd, err := d.UserReport(ctx, u, "Idle", "")
	for err == nil && cmd != nil && len(done) < 10_000 {
		done = append(done, cmd)
		status, extra := "Acknowledged", map[string]any(nil)
		switch cmd.RequestType {
		case "InstallProfile", "RemoveProfile", "ProfileList":
			status, extra = p.answer(cmd)
		}
		x := d.userKeys(u)
		delete(x, "UDID")
		for k, v := range extra {
			x[k] = v
		}
		cmd, err = d.Report(ctx, status, cmd.UUID, x)
	}
	return done, err
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
func (d *Device) InstalledProfiles() []string { return d.profiles().list() }

func (p *profiles) list() []string {
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
func (d *Device) answerProfile(c *Command) (string, map[string]any) { return d.profiles().answer(c) }

func (p *profiles) answer(c *Command) (string, map[string]any) {
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

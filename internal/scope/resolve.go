package scope

import (
	"context"
	"fmt"
	"slices"
)

// Device is what the resolver needs to know of one enrolled device.
type Device struct {
	ID        string // the device channel's ID
	Platform  string // mdm.Platform name, "" when unknown
	Ownership string // storage.Ownership, "" when unknown
	// Users are the IDs of the device's enrolled user channels.
	Users []string
}

// Channel is one command channel in scope.
type Channel struct {
	ID       string // the channel ID commands are queued to
	DeviceID string
	User     bool
}

// GroupResolver answers which groups a device belongs to (through its
// users). It is implemented by Orchard's users-and-groups store.
type GroupResolver interface {
	GroupsOf(ctx context.Context, deviceID string) ([]string, error)
}

// CategoryResolver answers which device categories a device is in.
type CategoryResolver interface {
	CategoriesOf(ctx context.Context, deviceID string) ([]string, error)
}

// UserLister is a DeviceSource whose Device may leave Users empty, to be
// listed only when a user-channel scope needs them.
type UserLister interface {
	UsersOf(ctx context.Context, deviceID string) ([]string, error)
}

// DeviceSource walks the enrolled devices, and looks one up (ok false when
// it is not enrolled).
type DeviceSource interface {
	EachDevice(ctx context.Context, fn func(Device) error) error
	Device(ctx context.Context, id string) (d Device, ok bool, err error)
}

// Resolver answers scope questions. Groups and Categories may be nil (see
// the package comment); Devices must not.
type Resolver struct {
	Devices    DeviceSource
	Groups     GroupResolver
	Categories CategoryResolver
}

// Matches says whether device d is in scope s (its channels then follow
// s.Kind()).
func (r *Resolver) Matches(ctx context.Context, s Scope, d Device) (bool, error) {
	if slices.Contains(s.Exclude, d.ID) {
		return false, nil
	}
	var groups, cats []string
	var err error
	if s.UsesGroups() && r.Groups != nil {
		if groups, err = r.Groups.GroupsOf(ctx, d.ID); err != nil {
			return false, fmt.Errorf("groups of %s: %w", d.ID, err)
		}
	}
	if s.UsesCategories() && r.Categories != nil {
		if cats, err = r.Categories.CategoriesOf(ctx, d.ID); err != nil {
			return false, fmt.Errorf("categories of %s: %w", d.ID, err)
		}
	}
	if overlaps(s.ExcludeGroups, groups) || overlaps(s.ExcludeCategories, cats) {
		return false, nil
	}
	if slices.Contains(s.Devices, d.ID) {
		return true, nil
	}
	if !s.includesAll() && !overlaps(s.Groups, groups) && !overlaps(s.Categories, cats) {
		return false, nil
	}
	if len(s.Platforms) > 0 && !slices.Contains(s.Platforms, d.Platform) {
		return false, nil
	}
	if len(s.Ownership) > 0 && !slices.Contains(s.Ownership, d.Ownership) {
		return false, nil
	}
	return true, nil
}

// ChannelsOf lists the channels of d that s selects, when d is in scope.
func (r *Resolver) ChannelsOf(ctx context.Context, s Scope, d Device) ([]Channel, error) {
	ok, err := r.Matches(ctx, s, d)
	if err != nil || !ok {
		return nil, err
	}
	if s.Kind() == DeviceChannel {
		return []Channel{{ID: d.ID, DeviceID: d.ID}}, nil
	}
	users, err := r.UsersOf(ctx, d)
	if err != nil {
		return nil, err
	}
	out := make([]Channel, 0, len(users))
	for _, u := range users {
		out = append(out, Channel{ID: u, DeviceID: d.ID, User: true})
	}
	return out, nil
}

// UsersOf returns d's user channels: d.Users, or when the source left
// them out, what it lists.
func (r *Resolver) UsersOf(ctx context.Context, d Device) ([]string, error) {
	if d.Users != nil {
		return d.Users, nil
	}
	if ul, ok := r.Devices.(UserLister); ok {
		users, err := ul.UsersOf(ctx, d.ID)
		if err != nil {
			return nil, fmt.Errorf("user channels of %s: %w", d.ID, err)
		}
		return users, nil
	}
	return nil, nil
}

// InScope says whether the channel with this ID (a device channel, or a
// user channel of device deviceID) is in scope s.
func (r *Resolver) InScope(ctx context.Context, s Scope, deviceID, channelID string) (bool, error) {
	d, ok, err := r.Devices.Device(ctx, deviceID)
	if err != nil {
		return false, fmt.Errorf("device %s: %w", deviceID, err)
	}
	if !ok {
		return false, nil
	}
	chs, err := r.ChannelsOf(ctx, s, d)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(chs, func(c Channel) bool { return c.ID == channelID }), nil
}

// Resolve lists every channel in scope s. Explicit-device scopes look up
// only the listed devices; the others walk every enrolled device once.
func (r *Resolver) Resolve(ctx context.Context, s Scope) ([]Channel, error) {
	var out []Channel
	add := func(d Device) error {
		chs, err := r.ChannelsOf(ctx, s, d)
		out = append(out, chs...)
		return err
	}
	if !s.includesAll() && len(s.Groups) == 0 && len(s.Categories) == 0 {
		for _, id := range dedupe(s.Devices) {
			d, ok, err := r.Devices.Device(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("device %s: %w", id, err)
			}
			if ok {
				if err := add(d); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	if err := r.Devices.EachDevice(ctx, add); err != nil {
		return nil, err
	}
	return out, nil
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

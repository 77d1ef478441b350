package directory

import (
	"context"
	"slices"

	"github.com/orchardmdm/orchard/storage"
)

// MembershipHook is told, after the write, which devices may have changed
// groups: those whose primary user changed, or whose primary user joined
// or left a group (or lost it with the group). Scoping by group follows
// it instead of polling.
type MembershipHook func(ctx context.Context, deviceIDs []string)

// WithMembershipHook calls hook after every committed write that can move
// a device in or out of a group. It wraps the store, so writes made
// through Store() are seen too.
func WithMembershipHook(hook MembershipHook) Option {
	return func(s *Service) {
		if hook != nil {
			s.store = &observedStore{DirectoryStore: s.store, hook: hook}
		}
	}
}

// GroupsOf implements scope.GroupResolver: the groups of the device's
// primary user (none without one).
func (s *Service) GroupsOf(ctx context.Context, deviceID string) ([]string, error) {
	u, err := s.store.PrimaryUser(ctx, deviceID)
	if err != nil || u == "" {
		return nil, err
	}
	return s.store.UserGroups(ctx, u)
}

type observedStore struct {
	storage.DirectoryStore
	hook MembershipHook
}

// devicesOf lists the devices of users; a failed lookup is skipped, since
// the write it follows is already committed.
func (o *observedStore) devicesOf(ctx context.Context, users []string) []string {
	var out []string
	for _, u := range users {
		ds, err := o.DirectoryStore.UserDevices(ctx, u)
		if err == nil {
			out = append(out, ds...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (o *observedStore) notify(ctx context.Context, devices []string) {
	if len(devices) > 0 {
		o.hook(ctx, devices)
	}
}

func (o *observedStore) AddGroupMembers(ctx context.Context, group string, usernames []string) error {
	if err := o.DirectoryStore.AddGroupMembers(ctx, group, usernames); err != nil {
		return err
	}
	o.notify(ctx, o.devicesOf(ctx, usernames))
	return nil
}

func (o *observedStore) RemoveGroupMember(ctx context.Context, group, username string) error {
	if err := o.DirectoryStore.RemoveGroupMember(ctx, group, username); err != nil {
		return err
	}
	o.notify(ctx, o.devicesOf(ctx, []string{username}))
	return nil
}

func (o *observedStore) DeleteGroup(ctx context.Context, name string) error {
	members, _ := o.DirectoryStore.GroupMembers(ctx, name, "", 0) // before they are gone
	if err := o.DirectoryStore.DeleteGroup(ctx, name); err != nil {
		return err
	}
	o.notify(ctx, o.devicesOf(ctx, members))
	return nil
}

func (o *observedStore) SetPrimaryUser(ctx context.Context, deviceID, username string) error {
	before, _ := o.DirectoryStore.PrimaryUser(ctx, deviceID)
	if err := o.DirectoryStore.SetPrimaryUser(ctx, deviceID, username); err != nil {
		return err
	}
	if before != username {
		o.notify(ctx, []string{deviceID})
	}
	return nil
}

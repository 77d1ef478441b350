package category

import (
	"context"
	"slices"
)

// ChangeHook is told, after the write, which devices may have changed
// category or, through a category's group, groups: scoping by category
// follows it instead of polling.
type ChangeHook func(ctx context.Context, deviceIDs []string)

// WithChangeHook calls hook after every committed write that moves a
// device into or out of a category (setting it, deleting the category) or
// adds its user to the category's group. It wraps the store, so writes
// made through Store() are seen too.
func WithChangeHook(hook ChangeHook) Option {
	return func(s *Service) {
		if hook != nil {
			s.store = &observedStore{Store: s.store, hook: hook}
		}
	}
}

type observedStore struct {
	Store
	hook ChangeHook
}

// userDevices is what the store offers to find a user's devices; a store
// without it reports no devices for a group join.
type userDevices interface {
	UserDevices(ctx context.Context, username string) ([]string, error)
}

func (o *observedStore) SetDeviceCategory(ctx context.Context, deviceID, name string) error {
	before, _ := o.Store.DeviceCategory(ctx, deviceID)
	if err := o.Store.SetDeviceCategory(ctx, deviceID, name); err != nil {
		return err
	}
	if before != name {
		o.hook(ctx, []string{deviceID})
	}
	return nil
}

func (o *observedStore) DeleteCategory(ctx context.Context, name string) error {
	devices, _ := o.Store.CategoryDevices(ctx, name, "", 0) // before they leave it
	if err := o.Store.DeleteCategory(ctx, name); err != nil {
		return err
	}
	if len(devices) > 0 {
		o.hook(ctx, devices)
	}
	return nil
}

func (o *observedStore) AddGroupMembers(ctx context.Context, group string, usernames []string) error {
	if err := o.Store.AddGroupMembers(ctx, group, usernames); err != nil {
		return err
	}
	ud, ok := o.Store.(userDevices)
	if !ok {
		return nil
	}
	var devices []string
	for _, u := range usernames {
		if ds, err := ud.UserDevices(ctx, u); err == nil {
			devices = append(devices, ds...)
		}
	}
	slices.Sort(devices)
	if devices = slices.Compact(devices); len(devices) > 0 {
		o.hook(ctx, devices)
	}
	return nil
}

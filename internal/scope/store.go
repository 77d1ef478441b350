package scope

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// Enrollments is what StoreDevices reads: enrollments and inventory.
type Enrollments interface {
	Enrollment(ctx context.Context, id string) (*storage.Enrollment, error)
	ListEnrollments(ctx context.Context, after string, limit int) ([]storage.Enrollment, error)
	Inventory(ctx context.Context, deviceID string) (*storage.DeviceInventory, error)
}

// StoreDevices is the DeviceSource of Orchard's store: enrolled device
// channels, their platform from the Authenticate facts and their ownership
// from the inventory. EachDevice lists each device's user channels with
// it; Device leaves them to UsersOf, which only user-channel scopes ask.
type StoreDevices struct{ Store Enrollments }

// Device implements DeviceSource.
func (s StoreDevices) Device(ctx context.Context, id string) (Device, bool, error) {
	e, err := s.Store.Enrollment(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return Device{}, false, nil
	}
	if err != nil {
		return Device{}, false, err
	}
	if !e.Enrolled || e.ID != e.DeviceID {
		return Device{}, false, nil
	}
	d, err := s.device(ctx, e)
	return d, err == nil, err
}

// UsersOf implements UserLister: the enrolled user channels of device id.
// Their IDs are id:user, so they sort together right after id+":".
func (s StoreDevices) UsersOf(ctx context.Context, id string) ([]string, error) {
	prefix := id + mdm.ChannelSeparator
	after := prefix
	var out []string
	// Most devices have no user channel: the first page is small, since
	// each record read past the last user is decoded for nothing.
	for limit := 2; ; limit = 100 {
		page, err := s.Store.ListEnrollments(ctx, after, limit)
		if err != nil {
			return nil, fmt.Errorf("user channels of %s: %w", id, err)
		}
		for _, e := range page {
			if !strings.HasPrefix(e.ID, prefix) {
				return out, nil
			}
			if e.Enrolled && e.DeviceID == id {
				out = append(out, e.ID)
			}
		}
		if len(page) < limit {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

func (s StoreDevices) device(ctx context.Context, e *storage.Enrollment) (Device, error) {
	d := Device{ID: e.ID}
	if e.Facts != nil {
		d.Platform = mdm.Platform(e.Facts.ProductName, e.Facts.Model)
	}
	inv, err := s.Store.Inventory(ctx, e.ID)
	switch {
	case err == nil:
		d.Ownership = string(inv.Ownership)
		if d.Platform == "" {
			d.Platform = inv.Platform
		}
	case !errors.Is(err, storage.ErrNotFound):
		return Device{}, fmt.Errorf("inventory of %s: %w", e.ID, err)
	}
	return d, nil
}

// EachDevice implements DeviceSource: one ordered walk of the enrollments,
// a page at a time; user channels sort right after their device.
func (s StoreDevices) EachDevice(ctx context.Context, fn func(Device) error) error {
	// IDs come in order, so every ID that starts with a device's ID (its
	// user channels id:user, but also other devices such as id0 or id-x,
	// which sort between it and them) comes in one run after it. Devices
	// wait on a stack while the run goes on; a device is handed to fn once
	// an ID outside its run shows its user channels are all seen.
	var stack []*Device
	// flushUntil hands over the devices whose run id ends; all of them at
	// the end of the walk (end true).
	flushUntil := func(id string, end bool) error {
		for len(stack) > 0 && (end || !strings.HasPrefix(id, stack[len(stack)-1].ID)) {
			d := *stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	}
	after := ""
	for {
		page, err := s.Store.ListEnrollments(ctx, after, 1000)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return flushUntil("", true)
		}
		for i := range page {
			e := &page[i]
			if err := flushUntil(e.ID, false); err != nil {
				return err
			}
			if e.ID == e.DeviceID {
				if !e.Enrolled {
					continue
				}
				d, err := s.device(ctx, e)
				if err != nil {
					return err
				}
				d.Users = []string{} // listed by this walk: not nil, so not looked up again
				stack = append(stack, &d)
				continue
			}
			if !e.Enrolled {
				continue
			}
			for _, d := range stack {
				if d.ID == e.DeviceID {
					d.Users = append(d.Users, e.ID)
				}
			}
		}
		after = page[len(page)-1].ID
	}
}

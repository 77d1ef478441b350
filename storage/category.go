package storage

import (
	"context"
	"time"
)

// Category is an admin-defined device category. Group, when set, names
// the directory group that the primary users of the category's devices
// are added to (internal/category does the joining; the store only keeps
// the name).
type Category struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Group       string    `json:"group,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// CategoryStore keeps device categories and which device is in which.
// A device is in at most one category; the record is keyed by device ID
// and kept apart from the enrollment, so it survives re-enrollment.
type CategoryStore interface {
	// CreateCategory adds a category; ErrConflict when the name is taken.
	CreateCategory(ctx context.Context, c *Category) error
	// Category returns a category, or ErrNotFound.
	Category(ctx context.Context, name string) (*Category, error)
	// ListCategories returns categories ordered by name, after the given
	// one, at most limit (limit <= 0: all).
	ListCategories(ctx context.Context, after string, limit int) ([]Category, error)
	// UpdateCategory applies fn to a category in one write and returns the
	// record written; ErrNotFound when there is none. fn may run more than
	// once and must only change c; the name cannot change. When fn fails
	// nothing is written and its error is returned.
	UpdateCategory(ctx context.Context, name string, fn func(c *Category) error) (*Category, error)
	// DeleteCategory removes a category and takes its devices out of it (they
	// are left with no category); ErrNotFound when there is none.
	DeleteCategory(ctx context.Context, name string) error

	// SetDeviceCategory puts a device in a category, replacing any other;
	// "" takes it out of any. ErrNotFound, and nothing written, for an
	// unknown category.
	SetDeviceCategory(ctx context.Context, deviceID, name string) error
	// DeviceCategory returns a device's category, "" when it has none.
	DeviceCategory(ctx context.Context, deviceID string) (string, error)
	// CategoryDevices returns the devices in a category, in ID order, after
	// the given one, at most limit (limit <= 0: all); ErrNotFound for an
	// unknown category.
	CategoryDevices(ctx context.Context, name, after string, limit int) ([]string, error)
}

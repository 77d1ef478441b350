// Package category is device categories: admin-defined names (with a
// description and an optional group) that a device is put in by an admin
// or, on the portal, by its user. A device is in at most one category.
//
// A category's group is joined by people, not devices: Orchard's groups are
// groups of users, so when a device with a primary user is put in a
// category that names a group, that user is added to the group. Joining
// only ever adds: moving a device to another category, clearing it or
// deleting the category leaves group memberships as they are (an admin
// may have added the same person by hand).
package category

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/storage"
)

// ErrInvalid wraps every refusal of bad input (the admin API answers 400).
var ErrInvalid = errors.New("invalid")

// MaxDescription bounds a category's description, in bytes.
const MaxDescription = 1024

// Store is what the service reads and writes: the categories and, for
// joining groups, the directory's groups and primary users.
type Store interface {
	storage.CategoryStore
	Group(ctx context.Context, name string) (*storage.Group, error)
	PrimaryUser(ctx context.Context, deviceID string) (string, error)
	AddGroupMembers(ctx context.Context, group string, usernames []string) error
}

// Service is device categories over a store.
type Service struct {
	store Store
	now   func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the category service over store.
func New(store Store, opts ...Option) (*Service, error) {
	if store == nil {
		return nil, errors.New("category: a store is required")
	}
	s := &Service{store: store, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Store is the service's store, for reads the service adds nothing to
// (Category, ListCategories, DeviceCategory, CategoryDevices).
func (s *Service) Store() storage.CategoryStore { return s.store }

// NormalizeName lowercases and checks a category name (the rules of
// directory names: 1 to 64 of a-z 0-9 . _ @ -).
func NormalizeName(name string) (string, error) {
	return directory.NormalizeName("category", name)
}

// NewCategory is what an admin gives for a category.
type NewCategory struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Group, when set, must name an existing group.
	Group string `json:"group,omitempty"`
}

// Change is a partial update: nil fields stay as they are; an empty group
// removes it.
type Change struct {
	Description *string `json:"description,omitempty"`
	Group       *string `json:"group,omitempty"`
}

func checkDescription(d string) error {
	if !utf8.ValidString(d) || len(d) > MaxDescription || strings.ContainsAny(d, "\x00\r\n") {
		return fmt.Errorf("%w: description: at most %d bytes of UTF-8 on one line", ErrInvalid, MaxDescription)
	}
	return nil
}

// group normalises a group name and checks that the group exists; "" is
// no group.
func (s *Service) group(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	g, err := directory.NormalizeName("group", name)
	if err != nil {
		return "", err
	}
	if _, err := s.store.Group(ctx, g); err != nil {
		return "", err
	}
	return g, nil
}

// Create adds a category; storage.ErrConflict when the name is taken,
// storage.ErrNotFound when its group does not exist.
func (s *Service) Create(ctx context.Context, nc NewCategory) (*storage.Category, error) {
	name, err := NormalizeName(nc.Name)
	if err != nil {
		return nil, err
	}
	if err := checkDescription(nc.Description); err != nil {
		return nil, err
	}
	g, err := s.group(ctx, nc.Group)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	c := &storage.Category{Name: name, Description: nc.Description, Group: g, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateCategory(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Update applies a change to a category.
func (s *Service) Update(ctx context.Context, name string, c Change) (*storage.Category, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return nil, err
	}
	if c.Description != nil {
		if err := checkDescription(*c.Description); err != nil {
			return nil, err
		}
	}
	var g string
	if c.Group != nil {
		if g, err = s.group(ctx, *c.Group); err != nil {
			return nil, err
		}
	}
	now := s.now().UTC()
	return s.store.UpdateCategory(ctx, n, func(cat *storage.Category) error {
		if c.Description != nil {
			cat.Description = *c.Description
		}
		if c.Group != nil {
			cat.Group = g
		}
		cat.UpdatedAt = now
		return nil
	})
}

// Delete removes a category; its devices are left in none.
func (s *Service) Delete(ctx context.Context, name string) error {
	n, err := NormalizeName(name)
	if err != nil {
		return err
	}
	return s.store.DeleteCategory(ctx, n)
}

// Assignment is what SetDevice did.
type Assignment struct {
	DeviceID string `json:"id"`
	Category string `json:"category"`
	// Joined is the group the device's primary user was added to, if any.
	Joined string `json:"joined_group,omitempty"`
}

// SetDevice puts a device in a category ("" takes it out of any) and then
// joins the category's group (see the package comment). The caller checks
// that the device exists. storage.ErrNotFound, and nothing written, for an
// unknown category. The join is a second write: when it fails the category
// is set and the error returned; calling again is safe.
func (s *Service) SetDevice(ctx context.Context, deviceID, name string) (*Assignment, error) {
	n := ""
	if name != "" {
		var err error
		if n, err = NormalizeName(name); err != nil {
			return nil, err
		}
	}
	if err := s.store.SetDeviceCategory(ctx, deviceID, n); err != nil {
		return nil, err
	}
	a := &Assignment{DeviceID: deviceID, Category: n}
	var err error
	a.Joined, err = s.Join(ctx, deviceID)
	return a, err
}

// Join adds a device's primary user to its category's group, and returns
// that group ("" when the device has no category, the category no group,
// the device no primary user, or the group was deleted since). Call it
// again when a device's primary user changes.
func (s *Service) Join(ctx context.Context, deviceID string) (string, error) {
	name, err := s.store.DeviceCategory(ctx, deviceID)
	if err != nil || name == "" {
		return "", err
	}
	c, err := s.store.Category(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil // deleted since
	}
	if err != nil || c.Group == "" {
		return "", err
	}
	user, err := s.store.PrimaryUser(ctx, deviceID)
	if err != nil || user == "" {
		return "", err
	}
	if _, err := s.store.Group(ctx, c.Group); errors.Is(err, storage.ErrNotFound) {
		return "", nil // the group was deleted after the category named it
	} else if err != nil {
		return "", err
	}
	if err := s.store.AddGroupMembers(ctx, c.Group, []string{user}); err != nil {
		return "", fmt.Errorf("category %q: join group %q: %w", name, c.Group, err)
	}
	return c.Group, nil
}

// CategoriesOf answers scope.CategoryResolver: the device's category, as a
// list of at most one.
func (s *Service) CategoriesOf(ctx context.Context, deviceID string) ([]string, error) {
	c, err := s.store.DeviceCategory(ctx, deviceID)
	if err != nil || c == "" {
		return nil, err
	}
	return []string{c}, nil
}

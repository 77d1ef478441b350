package server

import (
	"context"

	"github.com/orchardmdm/orchard/internal/category"
	"github.com/orchardmdm/orchard/internal/portal"
	"github.com/orchardmdm/orchard/storage"
)

// categorySetter puts a device enrolled through the portal in the category
// its user chose, and joins the category's group (category.Service).
type categorySetter struct{ c *category.Service }

func (s categorySetter) SetDeviceCategory(ctx context.Context, deviceID, name string) error {
	_, err := s.c.SetDevice(ctx, deviceID, name)
	return err
}

// maxPortalCategories bounds the category page's list.
const maxPortalCategories = 200

// portalCategories lists the categories the portal offers.
type portalCategories struct{ store storage.CategoryStore }

func (p portalCategories) PortalCategories(ctx context.Context) ([]portal.Category, error) {
	cs, err := p.store.ListCategories(ctx, "", maxPortalCategories)
	if err != nil {
		return nil, err
	}
	out := make([]portal.Category, len(cs))
	for i, c := range cs {
		out[i] = portal.Category{Name: c.Name, Description: c.Description}
	}
	return out, nil
}

package server

import (
	"context"

	"github.com/orchardmdm/orchard/internal/category"
	"github.com/orchardmdm/orchard/internal/enrollstage"
	"github.com/orchardmdm/orchard/internal/portal"
	"github.com/orchardmdm/orchard/internal/terms"
	"github.com/orchardmdm/orchard/mdm"
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

// portalTerms hands the portal the documents a user must still accept and
// records acceptances (terms.Service).
type portalTerms struct{ t *terms.Service }

func (p portalTerms) Pending(ctx context.Context, username string) ([]portal.Document, error) {
	ds, err := p.t.Pending(ctx, username)
	if err != nil {
		return nil, err
	}
	out := make([]portal.Document, len(ds))
	for i, d := range ds {
		out[i] = portal.Document{Name: d.Name, Title: d.Title, Summary: d.Summary, Text: d.Text, Version: d.Version}
	}
	return out, nil
}

func (p portalTerms) Accept(ctx context.Context, username, name string, version int, addr, userAgent string) error {
	return p.t.Accept(ctx, username, name, version, terms.Meta{Address: addr, UserAgent: userAgent})
}

// portalStages records the portal's stages for the incomplete-enrollment
// report (enrollstage.Recorder), and the device's enrolling at its first
// TokenUpdate (enroll.Affinity).
type portalStages struct{ r *enrollstage.Recorder }

func (p portalStages) Record(ctx context.Context, sessionID, stage string, f portal.Facts) error {
	return p.r.Record(ctx, sessionID, enrollstage.Stage(stage), enrollstage.Facts{Username: f.Username, Method: f.Method,
		Platform: f.Platform, Serial: f.Serial, UDID: f.UDID, Model: f.Model, OSVersion: f.OSVersion})
}

func (p portalStages) Enrolled(ctx context.Context, sessionID string, e *storage.Enrollment) error {
	var f enrollstage.Facts
	if d := e.Facts; d != nil {
		f = enrollstage.Facts{Platform: mdm.Platform(d.ProductName, d.Model), Serial: d.SerialNumber, UDID: d.UDID,
			Model: d.ProductName, OSVersion: d.OSVersion}
	}
	return p.r.Record(ctx, sessionID, enrollstage.Enrolled, f)
}

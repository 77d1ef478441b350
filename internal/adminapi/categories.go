package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/category"
	"github.com/orchardmdm/orchard/storage"
)

func (a *API) listCategories(w http.ResponseWriter, r *http.Request) {
	after, limit, err := page(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	cs, err := a.cats.Store().ListCategories(r.Context(), after, limit)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if cs == nil {
		cs = []storage.Category{}
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"categories": cs})
}

func (a *API) createCategory(w http.ResponseWriter, r *http.Request) {
	var nc category.NewCategory
	if err := apijson.Decode(w, r, 64<<10, &nc); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	c, err := a.cats.Create(r.Context(), nc)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusCreated, c)
}

func (a *API) showCategory(w http.ResponseWriter, r *http.Request) {
	name, err := category.NormalizeName(r.PathValue("name"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	c, err := a.cats.Store().Category(r.Context(), name)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, c)
}

func (a *API) updateCategory(w http.ResponseWriter, r *http.Request) {
	var c category.Change
	if err := apijson.Decode(w, r, 64<<10, &c); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	out, err := a.cats.Update(r.Context(), r.PathValue("name"), c)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, out)
}

func (a *API) deleteCategory(w http.ResponseWriter, r *http.Request) {
	if err := a.cats.Delete(r.Context(), r.PathValue("name")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setDeviceCategory serves PUT /v1/devices/{id}/category: {"category":
// "kiosk"} puts the device in kiosk (and its primary user in kiosk's
// group), "" takes it out of any.
func (a *API) setDeviceCategory(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceOnly(w, r, "a category")
	if !ok {
		return
	}
	var req struct {
		Category string `json:"category"`
	}
	if err := apijson.Decode(w, r, 64<<10, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if req.Category != "" {
		if _, err := category.NormalizeName(req.Category); err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
	}
	if _, err := a.store.Enrollment(r.Context(), id); err != nil {
		apijson.Fail(w, r, a.log, fmt.Errorf("device %s: %w", id, err))
		return
	}
	out, err := a.cats.SetDevice(r.Context(), id, req.Category)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, out)
}

// withCategory adds the category to a device view.
func (a *API) withCategory(ctx context.Context, v *DeviceView) error {
	if a.cats == nil || v.ID == "" {
		return nil
	}
	c, err := a.cats.Store().DeviceCategory(ctx, v.ID)
	v.Category = c
	return err
}

// listDevicesByCategory serves GET /v1/devices?category=: the devices in
// that category, in ID order.
func (a *API) listDevicesByCategory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if a.cats == nil {
		unavailable(w, r)
		return
	}
	if q.Has("user") || q.Has("group") {
		apijson.WriteError(w, http.StatusBadRequest, "filter by user, group or category, one at a time")
		return
	}
	after, limit, err := page(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	name, err := category.NormalizeName(q.Get("category"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	out := []DeviceView{}
	next := ""
	for {
		// One more than a page, to know whether another follows.
		ids, err := a.cats.Store().CategoryDevices(r.Context(), name, after, limit+1)
		if err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
		for _, id := range ids {
			after = id
			if len(out) == limit {
				next = out[len(out)-1].ID
				break
			}
			e, err := a.store.Enrollment(r.Context(), id)
			if errors.Is(err, storage.ErrNotFound) {
				continue // a device record removed since
			}
			if err != nil {
				apijson.Fail(w, r, a.log, err)
				return
			}
			v := viewOf(e)
			if err := a.withPrimaryUser(r.Context(), &v); err != nil {
				apijson.Fail(w, r, a.log, err)
				return
			}
			v.Category = name
			out = append(out, v)
		}
		if next != "" || len(ids) <= limit {
			break
		}
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"devices": out, "next": next})
}

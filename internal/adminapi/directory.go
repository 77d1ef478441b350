package adminapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/storage"
)

// maxCSVBody bounds a CSV import (10,000 rows of a few fields).
const maxCSVBody = 4 << 20

// UserView is a user as the API shows it: never the password hash.
type UserView struct {
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name,omitempty"`
	Email       string    `json:"email,omitempty"`
	Disabled    bool      `json:"disabled"`
	HasPassword bool      `json:"has_password"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Groups      []string  `json:"groups,omitempty"`
}

func userView(u *storage.DirectoryUser) UserView {
	return UserView{Username: u.Username, DisplayName: u.DisplayName, Email: u.Email, Disabled: u.Disabled,
		HasPassword: u.PasswordHash != "", CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// page reads ?after= and ?limit= (default 100, at most maxPage).
func page(r *http.Request) (string, int, error) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			return "", 0, apijson.Bad("limit must be 1..%d", maxPage)
		}
		limit = n
	}
	return r.URL.Query().Get("after"), limit, nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	after, limit, err := page(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	us, err := a.dir.Store().ListUsers(r.Context(), after, limit)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	out := make([]UserView, 0, len(us))
	for i := range us {
		out = append(out, userView(&us[i]))
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	var nu directory.NewUser
	if err := apijson.Decode(w, r, 64<<10, &nu); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	u, err := a.dir.CreateUser(r.Context(), nu)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusCreated, userView(u))
}

func (a *API) importUsers(w http.ResponseWriter, r *http.Request) {
	body, err := apijson.ReadBody(w, r, maxCSVBody)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	n, err := a.dir.ImportUsers(r.Context(), bytes.NewReader(body))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusCreated, map[string]int{"imported": n})
}

func (a *API) showUser(w http.ResponseWriter, r *http.Request) {
	name, err := directory.NormalizeName("username", r.PathValue("username"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	u, err := a.dir.Store().User(r.Context(), name)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	v := userView(u)
	if v.Groups, err = a.dir.Store().UserGroups(r.Context(), name); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, v)
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request) {
	var c directory.UserChange
	if err := apijson.Decode(w, r, 64<<10, &c); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	u, err := a.dir.UpdateUser(r.Context(), r.PathValue("username"), c)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, userView(u))
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request) {
	after, limit, err := page(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	gs, err := a.dir.Store().ListGroups(r.Context(), after, limit)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if gs == nil {
		gs = []storage.Group{}
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"groups": gs})
}

func (a *API) createGroup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
	}
	if err := apijson.Decode(w, r, 64<<10, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	g, err := a.dir.CreateGroup(r.Context(), req.Name, req.Description)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusCreated, g)
}

// groupName reads and normalises the {name} path value.
func groupName(r *http.Request) (string, error) {
	return directory.NormalizeName("group", r.PathValue("name"))
}

func (a *API) showGroup(w http.ResponseWriter, r *http.Request) {
	name, err := groupName(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	g, err := a.dir.Store().Group(r.Context(), name)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, g)
}

func (a *API) deleteGroup(w http.ResponseWriter, r *http.Request) {
	name, err := groupName(r)
	if err == nil {
		err = a.dir.Store().DeleteGroup(r.Context(), name)
	}
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listMembers(w http.ResponseWriter, r *http.Request) {
	name, err := groupName(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	after, limit, err := page(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	m, err := a.dir.Store().GroupMembers(r.Context(), name, after, limit)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if m == nil {
		m = []string{}
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"group": name, "members": m})
}

func (a *API) addMembers(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Usernames []string `json:"usernames"`
	}
	if err := apijson.Decode(w, r, maxCSVBody, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if err := a.dir.AddMembers(r.Context(), r.PathValue("name"), req.Usernames); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]int{"added": len(req.Usernames)})
}

func (a *API) importMembers(w http.ResponseWriter, r *http.Request) {
	body, err := apijson.ReadBody(w, r, maxCSVBody)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	n, err := a.dir.ImportMembers(r.Context(), r.PathValue("name"), bytes.NewReader(body))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]int{"added": n})
}

func (a *API) removeMember(w http.ResponseWriter, r *http.Request) {
	name, err := groupName(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	user, err := directory.NormalizeName("username", r.PathValue("username"))
	if err == nil {
		err = a.dir.Store().RemoveGroupMember(r.Context(), name, user)
	}
	if err != nil {
		apijson.Fail(w, r, a.log, fmt.Errorf("remove member: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setPrimaryUser serves PUT /v1/devices/{id}/user: {"username": "ann"}
// makes ann the device's primary user, "" clears it.
func (a *API) setPrimaryUser(w http.ResponseWriter, r *http.Request) {
	id, ok := deviceOnly(w, r, "a primary user")
	if !ok {
		return
	}
	var req struct {
		Username string `json:"username"`
	}
	if err := apijson.Decode(w, r, 64<<10, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	name := ""
	if req.Username != "" {
		var err error
		if name, err = directory.NormalizeName("username", req.Username); err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
	}
	if _, err := a.store.Enrollment(r.Context(), id); err != nil {
		apijson.Fail(w, r, a.log, fmt.Errorf("device %s: %w", id, err))
		return
	}
	if err := a.dir.Store().SetPrimaryUser(r.Context(), id, name); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if a.cats != nil && name != "" {
		// The new user joins the group of the device's category.
		if _, err := a.cats.Join(r.Context(), id); err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]string{"id": id, "primary_user": name})
}

// withPrimaryUser adds the primary user to a device view.
func (a *API) withPrimaryUser(ctx context.Context, v *DeviceView) error {
	if a.dir == nil || v.ID == "" {
		return nil
	}
	u, err := a.dir.Store().PrimaryUser(ctx, v.ID)
	v.PrimaryUser = u
	return err
}

// listDevicesByUser serves GET /v1/devices?user= or ?group=: the devices
// whose primary user is that user or a member of that group, in ID order.
func (a *API) listDevicesByUser(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if a.dir == nil {
		unavailable(w, r)
		return
	}
	after, limit, err := page(r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if q.Has("user") && q.Has("group") {
		apijson.WriteError(w, http.StatusBadRequest, "filter by user or by group, not both")
		return
	}
	var users []string
	if q.Has("user") {
		n, err := directory.NormalizeName("username", q.Get("user"))
		if err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
		users = []string{n}
	} else {
		g, err := directory.NormalizeName("group", q.Get("group"))
		if err == nil {
			users, err = a.dir.Store().GroupMembers(r.Context(), g, "", 0)
		}
		if err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
	}
	var ids []string
	for _, u := range users {
		d, err := a.dir.Store().UserDevices(r.Context(), u)
		if err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
		ids = append(ids, d...)
	}
	slices.Sort(ids)
	out := []DeviceView{}
	next := ""
	for _, id := range ids {
		if id <= after && after != "" {
			continue
		}
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
		if err := a.withCategory(r.Context(), &v); err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
		out = append(out, v)
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"devices": out, "next": next})
}

package adminapi

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/storage"
)

// DEPService is Apple Business Manager on Orchard's side; *dep.Service.
type DEPService interface {
	PublicKeyPEM() []byte
	AddToken(ctx context.Context, name, note string, p7m []byte) (dep.TokenView, error)
	RenewToken(ctx context.Context, id string, p7m []byte) (dep.TokenView, error)
	Token(ctx context.Context, id string) (dep.TokenView, error)
	Tokens(ctx context.Context) ([]dep.TokenView, error)
	DeleteToken(ctx context.Context, id string) error
	SyncNow(ctx context.Context, id string) (dep.SyncResult, error)
	Devices(ctx context.Context, f storage.DEPDeviceFilter) ([]storage.DEPDevice, error)
	DeleteDevice(ctx context.Context, serial string) error
	CreateProfile(ctx context.Context, tokenID string, spec dep.ProfileSpec) (dep.ProfileView, error)
	UpdateProfile(ctx context.Context, tokenID, id string, spec dep.ProfileSpec) (dep.ProfileView, error)
	Profile(ctx context.Context, tokenID, id string) (dep.ProfileView, error)
	Profiles(ctx context.Context, tokenID string) ([]dep.ProfileView, error)
	DeleteProfile(ctx context.Context, tokenID, id string) error
	AssignProfile(ctx context.Context, tokenID, id string, serials []string) (dep.AssignResult, error)
}

const (
	maxDEPJSON  = 1 << 20  // profiles with certificates fit easily
	maxDEPToken = 64 << 10 // an ABM .p7m is a few KB
	maxDEPList  = 5000
	defDEPList  = 500
)

func badRequest(format string, a ...any) error {
	return apijson.Bad("bad request: "+format, a...)
}

func (a *API) depPublicKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="orchard-dep-public-key.pem"`)
	w.Write(a.dep.PublicKeyPEM())
}

type tokenUpload struct {
	Name  string `json:"name"`
	Note  string `json:"note"`
	Token string `json:"token"` // the .p7m file's text
}

// readToken accepts JSON {name, note, token} or the raw .p7m body with
// name and note in the query.
func readToken(w http.ResponseWriter, r *http.Request) (tokenUpload, error) {
	var up tokenUpload
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		err := apijson.Decode(w, r, maxDEPJSON, &up)
		return up, err
	}
	body, err := apijson.ReadBody(w, r, maxDEPToken)
	if err != nil {
		return up, err
	}
	q := r.URL.Query()
	return tokenUpload{Name: q.Get("name"), Note: q.Get("note"), Token: string(body)}, nil
}

func (a *API) depAddToken(w http.ResponseWriter, r *http.Request) {
	up, err := readToken(w, r)
	if err == nil && len(bytes.TrimSpace([]byte(up.Token))) == 0 {
		err = badRequest("token: upload the .p7m file downloaded from Apple Business Manager")
	}
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	v, err := a.dep.AddToken(r.Context(), up.Name, up.Note, []byte(up.Token))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusCreated, v)
}

func (a *API) depRenewToken(w http.ResponseWriter, r *http.Request) {
	up, err := readToken(w, r)
	if err == nil && (up.Name != "" || up.Note != "") {
		err = badRequest("renewal takes only the token file")
	}
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	v, err := a.dep.RenewToken(r.Context(), r.PathValue("id"), []byte(up.Token))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, v)
}

func (a *API) depListTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := a.dep.Tokens(r.Context())
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

func (a *API) depGetToken(w http.ResponseWriter, r *http.Request) {
	v, err := a.dep.Token(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, v)
}

func (a *API) depDeleteToken(w http.ResponseWriter, r *http.Request) {
	if err := a.dep.DeleteToken(r.Context(), r.PathValue("id")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) depSync(w http.ResponseWriter, r *http.Request) {
	res, err := a.dep.SyncNow(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, res)
}

func (a *API) depListProfiles(w http.ResponseWriter, r *http.Request) {
	ps, err := a.dep.Profiles(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"profiles": ps})
}

func (a *API) depCreateProfile(w http.ResponseWriter, r *http.Request) {
	var spec dep.ProfileSpec
	if err := apijson.Decode(w, r, maxDEPJSON, &spec); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	v, err := a.dep.CreateProfile(r.Context(), r.PathValue("id"), spec)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusCreated, v)
}

func (a *API) depGetProfile(w http.ResponseWriter, r *http.Request) {
	v, err := a.dep.Profile(r.Context(), r.PathValue("id"), r.PathValue("pid"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, v)
}

func (a *API) depUpdateProfile(w http.ResponseWriter, r *http.Request) {
	var spec dep.ProfileSpec
	if err := apijson.Decode(w, r, maxDEPJSON, &spec); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	v, err := a.dep.UpdateProfile(r.Context(), r.PathValue("id"), r.PathValue("pid"), spec)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, v)
}

func (a *API) depDeleteProfile(w http.ResponseWriter, r *http.Request) {
	if err := a.dep.DeleteProfile(r.Context(), r.PathValue("id"), r.PathValue("pid")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) depAssignProfile(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Devices []string `json:"devices"`
	}
	if err := apijson.Decode(w, r, maxDEPJSON, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	res, err := a.dep.AssignProfile(r.Context(), r.PathValue("id"), r.PathValue("pid"), req.Devices)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, res)
}

func (a *API) depListDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := storage.DEPDeviceFilter{TokenID: q.Get("token"), Status: storage.DEPDeviceStatus(q.Get("status")),
		Serial: q.Get("serial"), After: q.Get("after"), Limit: defDEPList}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxDEPList {
			apijson.Fail(w, r, a.log, badRequest("limit must be between 1 and %d", maxDEPList))
			return
		}
		f.Limit = n
	}
	ds, err := a.dep.Devices(r.Context(), f)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	out := map[string]any{"devices": ds}
	if len(ds) == f.Limit {
		out["next"] = ds[len(ds)-1].Serial // pass as after= for the next page
	}
	apijson.WriteJSON(w, http.StatusOK, out)
}

func (a *API) depDeleteDevice(w http.ResponseWriter, r *http.Request) {
	if err := a.dep.DeleteDevice(r.Context(), r.PathValue("serial")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

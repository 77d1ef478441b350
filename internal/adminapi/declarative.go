package adminapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/declarative"
	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/mdm/ddm"
	"github.com/orchardmdm/orchard/storage"
)

// Declarative is Declarative Device Management (*declarative.Engine).
type Declarative interface {
	PutDeclaration(ctx context.Context, declType, identifier string, payload json.RawMessage) (*storage.StoredDeclaration, error)
	Declarations(ctx context.Context) ([]storage.StoredDeclaration, error)
	Declaration(ctx context.Context, id string) (*storage.StoredDeclaration, error)
	DeleteDeclaration(ctx context.Context, id string) error
	DeclarationStatus(ctx context.Context, id string) ([]declarative.DeclarationChannelState, error)
	PutSet(ctx context.Context, set *storage.DeclarationSet) error
	Sets(ctx context.Context) ([]storage.DeclarationSet, error)
	Set(ctx context.Context, name string) (*storage.DeclarationSet, error)
	DeleteSet(ctx context.Context, name string) error
	ScopeSet(ctx context.Context, name string, s scope.Scope) (*storage.DeclarationSet, error)
	Status(ctx context.Context, channel string) (*declarative.ChannelStatus, error)
	SoftwareUpdates(ctx context.Context) (*declarative.Fleet, error)
}

// maxDeclarationBody bounds a declaration or set upload (a payload is at
// most 64 KiB; a set may list 10,000 channels).
const maxDeclarationBody = 1 << 20

func (a *API) putDeclaration(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Type       string          `json:"type"`
		Identifier string          `json:"identifier"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := apijson.Decode(w, r, maxDeclarationBody, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	d, err := a.ddm.PutDeclaration(r.Context(), req.Type, req.Identifier, req.Payload)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, d)
}

func (a *API) listDeclarations(w http.ResponseWriter, r *http.Request) {
	ds, err := a.ddm.Declarations(r.Context())
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if ds == nil {
		ds = []storage.StoredDeclaration{}
	}
	apijson.WriteJSON(w, http.StatusOK, struct {
		Declarations []storage.StoredDeclaration `json:"declarations"`
	}{ds})
}

func (a *API) showDeclaration(w http.ResponseWriter, r *http.Request) {
	d, err := a.ddm.Declaration(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, d)
}

func (a *API) deleteDeclaration(w http.ResponseWriter, r *http.Request) {
	if err := a.ddm.DeleteDeclaration(r.Context(), r.PathValue("id")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) declarationStatus(w http.ResponseWriter, r *http.Request) {
	st, err := a.ddm.DeclarationStatus(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, struct {
		Channels []declarative.DeclarationChannelState `json:"channels"`
	}{st})
}

func (a *API) putDeclarationSet(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name         string   `json:"name"`
		Declarations []string `json:"declarations"`
		Channels     []string `json:"channels"`
		// Scope is optional: a set replaced without one keeps its scope.
		Scope *scope.Scope `json:"scope,omitempty"`
	}
	if err := apijson.Decode(w, r, maxDeclarationBody, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	set := &storage.DeclarationSet{Name: req.Name, Declarations: req.Declarations, Channels: req.Channels}
	if req.Scope != nil {
		if err := req.Scope.Validate(); err != nil {
			apijson.Fail(w, r, a.log, apijson.Bad("%v", err))
			return
		}
		b, err := json.Marshal(req.Scope)
		if err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
		set.Scope = b
	}
	if err := a.ddm.PutSet(r.Context(), set); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, set)
}

func (a *API) listDeclarationSets(w http.ResponseWriter, r *http.Request) {
	sets, err := a.ddm.Sets(r.Context())
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if sets == nil {
		sets = []storage.DeclarationSet{}
	}
	apijson.WriteJSON(w, http.StatusOK, struct {
		Sets []storage.DeclarationSet `json:"declaration_sets"`
	}{sets})
}

func (a *API) showDeclarationSet(w http.ResponseWriter, r *http.Request) {
	s, err := a.ddm.Set(r.Context(), r.PathValue("name"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, s)
}

func (a *API) deleteDeclarationSet(w http.ResponseWriter, r *http.Request) {
	if err := a.ddm.DeleteSet(r.Context(), r.PathValue("name")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) deviceDeclarations(w http.ResponseWriter, r *http.Request) {
	if _, err := a.store.Enrollment(r.Context(), r.PathValue("id")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	st, err := a.ddm.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, st)
}

func (a *API) softwareUpdates(w http.ResponseWriter, r *http.Request) {
	f, err := a.ddm.SoftwareUpdates(r.Context())
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, f)
}

// declarationSchema serves the declaration types of Apple's schema that
// POST /v1/declarations checks payloads against.
func (a *API) declarationSchema(w http.ResponseWriter, r *http.Request) {
	body, err := ddm.TypesListingJSON()
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// scopeDeclarationSet is PUT /v1/declaration-sets/{name}/scope, with the
// body of PUT /v1/profiles/{id}/scope: {"scope": {...}}.
func (a *API) scopeDeclarationSet(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Scope scope.Scope `json:"scope"`
	}
	if err := apijson.Decode(w, r, 4<<20, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	set, err := a.ddm.ScopeSet(r.Context(), r.PathValue("name"), req.Scope)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, set)
}

package profiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/mdm/profile"
	"github.com/orchardmdm/orchard/storage"
)

// Signer signs profile content (mdm/enrollprofile's Signer is one).
type Signer interface {
	Sign(content []byte) ([]byte, error)
}

// LibraryStore is what the admin handlers read and write.
type LibraryStore interface {
	Store
	PutProfile(ctx context.Context, p *storage.Profile, v *storage.ProfileVersion) error
	GetProfile(ctx context.Context, id string) (*storage.Profile, error)
}

// Handler serves /v1/profiles; the admin route table mounts its methods.
type Handler struct {
	store  LibraryStore
	rec    *Reconciler
	signer Signer // nil: ?sign=true is refused
	log    *slog.Logger
	now    func() time.Time
}

// NewHandler returns the admin handlers over store and rec.
func NewHandler(store LibraryStore, rec *Reconciler, signer Signer, log *slog.Logger) (*Handler, error) {
	if store == nil || rec == nil {
		return nil, errors.New("profiles: store and reconciler are required")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Handler{store: store, rec: rec, signer: signer, log: log, now: time.Now}, nil
}

const maxPage = 1000

// View is a profile as the API shows it.
type View struct {
	storage.Profile
	Scope    scope.Scope                  `json:"scope"`
	Counts   map[storage.ProfileState]int `json:"counts"`
	Warnings []string                     `json:"warnings,omitempty"`
}

func (h *Handler) view(ctx context.Context, p *storage.Profile, warnings []string) (*View, error) {
	v := &View{Profile: *p, Warnings: warnings}
	if err := unmarshalScope(p.Scope, &v.Scope); err != nil {
		return nil, err
	}
	v.Profile.Scope = nil
	counts, err := h.rec.Counts(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	v.Counts = counts
	return v, nil
}

// upload reads and checks a .mobileconfig body, signing it when asked.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request) (*profile.Profile, []byte, bool, error) {
	body, err := apijson.ReadBody(w, r, profile.MaxSize)
	if err != nil {
		return nil, nil, false, err
	}
	p, err := profile.Parse(body)
	if err != nil {
		return nil, nil, false, apijson.Bad("%v", err)
	}
	data, signed := body, p.Signed
	if r.URL.Query().Get("sign") == "true" {
		if h.signer == nil {
			return nil, nil, false, apijson.Errorf(http.StatusConflict, "no profile signer is configured")
		}
		if data, err = h.signer.Sign(p.Plist); err != nil {
			return nil, nil, false, fmt.Errorf("sign profile: %w", err)
		}
		signed = true
	}
	return p, data, signed, nil
}

func reinstallParam(r *http.Request, def bool) (bool, error) {
	v := r.URL.Query().Get("reinstall")
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, apijson.Bad("reinstall: want true or false")
	}
	return b, nil
}

// Create is POST /v1/profiles: a new profile from a .mobileconfig body
// (plain or signed), version 1, scoped to nothing until its scope is set.
func (h *Handler) Create(w http.ResponseWriter, r *http.Request) {
	reinstall, err := reinstallParam(r, true)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	p, data, signed, err := h.upload(w, r)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	if _, err := h.store.GetProfile(r.Context(), p.Identifier); err == nil {
		apijson.Fail(w, r, h.log, apijson.Errorf(http.StatusConflict, "a profile with PayloadIdentifier %q exists: upload a new version with PUT /v1/profiles/{id}", p.Identifier))
		return
	} else if !errors.Is(err, storage.ErrNotFound) {
		apijson.Fail(w, r, h.log, err)
		return
	}
	now := h.now().UTC()
	rec := &storage.Profile{ID: p.Identifier, DisplayName: p.DisplayName, Version: 1, UUID: p.UUID, Reinstall: reinstall, CreatedAt: now, UpdatedAt: now}
	ver := &storage.ProfileVersion{ProfileID: rec.ID, Version: 1, UUID: p.UUID, Data: data, Signed: signed, CreatedAt: now}
	if err := h.store.PutProfile(r.Context(), rec, ver); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	h.rec.LibraryChanged()
	h.answer(w, r, http.StatusCreated, rec, p.Warnings)
}

// NewVersion is PUT /v1/profiles/{id}: a new version from a .mobileconfig
// with the same PayloadIdentifier; every channel in scope gets it.
func (h *Handler) NewVersion(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cur, err := h.store.GetProfile(r.Context(), id)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	reinstall, err := reinstallParam(r, cur.Reinstall)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	p, data, signed, err := h.upload(w, r)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	if p.Identifier != id {
		apijson.Fail(w, r, h.log, apijson.Bad("PayloadIdentifier is %q, want %q (a new identifier is a new profile)", p.Identifier, id))
		return
	}
	if p.UUID == cur.UUID {
		apijson.Fail(w, r, h.log, apijson.Bad("PayloadUUID %s is the current version's: change it, or devices cannot tell the versions apart", p.UUID))
		return
	}
	now := h.now().UTC()
	next := *cur
	next.Version, next.UUID, next.DisplayName, next.Reinstall, next.UpdatedAt = cur.Version+1, p.UUID, p.DisplayName, reinstall, now
	ver := &storage.ProfileVersion{ProfileID: id, Version: next.Version, UUID: p.UUID, Data: data, Signed: signed, CreatedAt: now}
	if err := h.store.PutProfile(r.Context(), &next, ver); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	h.changed(r.Context(), id)
	h.answer(w, r, http.StatusOK, &next, p.Warnings)
}

// pageLimit reads ?limit=, 1..maxPage (default maxPage).
func pageLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return maxPage, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPage {
		return 0, apijson.Bad("limit must be 1..%d", maxPage)
	}
	return n, nil
}

// List is GET /v1/profiles.
func (h *Handler) List(w http.ResponseWriter, r *http.Request) {
	limit, err := pageLimit(r)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	ps, err := h.store.ListProfiles(r.Context(), r.URL.Query().Get("after"), limit)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	out := make([]*View, 0, len(ps))
	for i := range ps {
		v, err := h.view(r.Context(), &ps[i], nil)
		if err != nil {
			apijson.Fail(w, r, h.log, err)
			return
		}
		out = append(out, v)
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"profiles": out})
}

// Show is GET /v1/profiles/{id}.
func (h *Handler) Show(w http.ResponseWriter, r *http.Request) {
	p, err := h.store.GetProfile(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	h.answer(w, r, http.StatusOK, p, nil)
}

// ScopeRequest is the body of PUT /v1/profiles/{id}/scope.
type ScopeRequest struct {
	Scope     scope.Scope `json:"scope"`
	Reinstall *bool       `json:"reinstall,omitempty"`
}

// SetScope is PUT /v1/profiles/{id}/scope: the channels now in scope get
// the profile, those out of it lose it.
func (h *Handler) SetScope(w http.ResponseWriter, r *http.Request) {
	var req ScopeRequest
	if err := apijson.Decode(w, r, 4<<20, &req); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	if err := req.Scope.Validate(); err != nil {
		apijson.Fail(w, r, h.log, apijson.Bad("%v", err))
		return
	}
	p, err := h.store.GetProfile(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	if p.Scope, err = marshalScope(req.Scope); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	if req.Reinstall != nil {
		p.Reinstall = *req.Reinstall
	}
	p.UpdatedAt = h.now().UTC()
	if err := h.store.PutProfile(r.Context(), p, nil); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	h.changed(r.Context(), p.ID)
	h.answer(w, r, http.StatusOK, p, nil)
}

// Status is GET /v1/profiles/{id}/status: the state on every channel.
func (h *Handler) Status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	limit, err := pageLimit(r)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	if _, err := h.store.GetProfile(r.Context(), id); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	sts, err := h.store.ProfileStates(r.Context(), id, r.URL.Query().Get("after"), limit)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	if sts == nil {
		sts = []storage.ChannelProfile{}
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"profile_id": id, "channels": sts})
}

// maxVersions bounds the versions GET /v1/profiles/{id}/versions lists.
const maxVersions = 100

// VersionView is one stored version as the API shows it: what it holds,
// never its content (a payload may carry a Wi-Fi password or a key).
type VersionView struct {
	Version     int               `json:"version"`
	UUID        string            `json:"uuid"`
	Signed      bool              `json:"signed"`
	Size        int               `json:"size"`
	CreatedAt   time.Time         `json:"created_at"`
	DisplayName string            `json:"display_name,omitempty"`
	Scope       string            `json:"payload_scope,omitempty"`
	Removable   bool              `json:"removable"`
	Payloads    []profile.Payload `json:"payloads"`
}

// Versions is GET /v1/profiles/{id}/versions: the newest versions first
// (at most maxVersions), each with its payload summary.
func (h *Handler) Versions(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p, err := h.store.GetProfile(r.Context(), id)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	out := []VersionView{}
	for n := p.Version; n >= 1 && len(out) < maxVersions; n-- {
		v, err := h.store.GetProfileVersion(r.Context(), id, n)
		if err != nil {
			apijson.Fail(w, r, h.log, fmt.Errorf("profile %s version %d: %w", id, n, err))
			return
		}
		vv := VersionView{Version: v.Version, UUID: v.UUID, Signed: v.Signed, Size: len(v.Data), CreatedAt: v.CreatedAt, Payloads: []profile.Payload{}}
		// Every stored version passed Parse on upload; one that no longer
		// does (a signer's certificate gone bad) is listed without payloads.
		if parsed, err := profile.Parse(v.Data); err == nil {
			vv.DisplayName, vv.Scope, vv.Removable = parsed.DisplayName, parsed.Scope, parsed.Removable
			if parsed.Payloads != nil {
				vv.Payloads = parsed.Payloads
			}
		}
		out = append(out, vv)
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"profile_id": id, "versions": out})
}

// ChannelStates is GET /v1/devices/{id}/profile-states: the state of every
// library profile on one channel (the admin API checks it is enrolled).
func (h *Handler) ChannelStates(w http.ResponseWriter, r *http.Request) {
	sts, err := h.store.ChannelProfiles(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	if sts == nil {
		sts = []storage.ChannelProfile{}
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"channel_id": r.PathValue("id"), "profiles": sts})
}

// ResendRequest is the body of POST /v1/profiles/{id}/resend.
type ResendRequest struct {
	// Channel resends to one channel; empty: to every failed one.
	Channel string `json:"channel,omitempty"`
}

// Resend is POST /v1/profiles/{id}/resend.
func (h *Handler) Resend(w http.ResponseWriter, r *http.Request) {
	var req ResendRequest
	if err := apijson.DecodeOptional(w, r, 4096, &req); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	id := r.PathValue("id")
	if _, err := h.store.GetProfile(r.Context(), id); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	if err := h.rec.Resend(r.Context(), id, req.Channel); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	h.Show(w, r)
}

func (h *Handler) changed(ctx context.Context, id string) {
	h.rec.LibraryChanged()
	// The write is durable; a failure to queue is redone by the next change.
	if err := h.rec.ScopeChanged(context.WithoutCancel(ctx), id); err != nil {
		h.log.Error("queue profile reconcile", "profile", id, "err", err)
	}
}

func (h *Handler) answer(w http.ResponseWriter, r *http.Request, status int, p *storage.Profile, warnings []string) {
	v, err := h.view(r.Context(), p, warnings)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	apijson.WriteJSON(w, status, v)
}

func marshalScope(s scope.Scope) ([]byte, error) {
	var b bytes.Buffer
	if err := jsonEncode(&b, s); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b.Bytes()), nil
}

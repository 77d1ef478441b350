package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/commands"
	"github.com/orchardmdm/orchard/storage"
)

// Store is what the admin API reads and writes.
type Store interface {
	storage.CheckinStore
	storage.CommandQueue
}

// Pusher wakes channels after commands are queued for them. It must return
// promptly; pushes proceed in the background.
type Pusher interface {
	PushChannels(ctx context.Context, channels []string)
}

// Targets tells what Orchard knows of a channel for Apple's eligibility
// rules (the inventory does).
type Targets interface {
	Target(ctx context.Context, e *storage.Enrollment) commands.Target
}

// Secrets opens a device's sealed secrets when the admin asks by name.
type Secrets interface {
	UnlockToken(ctx context.Context, channel string) ([]byte, error)
}

// Handler serves the core admin API.
type Handler struct {
	store   Store
	pusher  Pusher
	secrets Secrets
	targets Targets
	filter  http.Handler
	log     *slog.Logger
}

// Config wires the handler. Pusher, Secrets and Targets may be nil.
type Config struct {
	Store   Store
	Pusher  Pusher
	Secrets Secrets
	Targets Targets
	// Filter serves GET /v1/devices when inventory filters are given.
	Filter http.Handler
	Logger *slog.Logger
}

// New builds the admin API handler.
func New(c Config) (*Handler, error) {
	if c.Store == nil {
		return nil, errors.New("api: store is required")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Handler{store: c.Store, pusher: c.Pusher, secrets: c.Secrets, targets: c.Targets, filter: c.Filter, log: c.Logger}, nil
}

// Register mounts the routes on mux (which the caller puts behind RequireKey).
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/devices", h.listDevices)
	mux.HandleFunc("GET /v1/devices/{id}", h.showDevice)
	mux.HandleFunc("POST /v1/commands", h.sendCommand)
	mux.HandleFunc("GET /v1/commands/{uuid}", h.showCommand)
	mux.HandleFunc("DELETE /v1/commands/{uuid}", h.cancelCommand)
	mux.HandleFunc("GET /v1/schema/commands", h.schema)
}

func (h *Handler) schema(w http.ResponseWriter, r *http.Request) {
	body, err := commands.ListingJSON()
	if err != nil {
		writeErr(w, h.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// DeviceView is a device as the API shows it: no secrets unless revealed.
type DeviceView struct {
	ID               string                 `json:"id"`
	Type             storage.EnrollmentType `json:"type"`
	Enrolled         bool                   `json:"enrolled"`
	EnrollmentMethod string                 `json:"enrollment_method,omitempty"`
	EnrollmentRef    string                 `json:"enrollment_ref,omitempty"`
	EnrolledAt       time.Time              `json:"enrolled_at"`
	CheckedOutAt     *time.Time             `json:"checked_out_at,omitempty"`
	LastSeen         *time.Time             `json:"last_seen,omitempty"`
	Facts            *storage.DeviceFacts   `json:"device,omitempty"`
	CertSerial       string                 `json:"identity_cert_serial,omitempty"`
	CertNotAfter     *time.Time             `json:"identity_cert_not_after,omitempty"`
	Push             PushView               `json:"push"`
	AwaitingConfig   bool                   `json:"awaiting_configuration"`
	BootstrapToken   bool                   `json:"bootstrap_token_escrowed"`
	UnlockToken      bool                   `json:"unlock_token_escrowed"`
	QueueDepth       *int                   `json:"queue_depth,omitempty"`
	Users            []DeviceView           `json:"users,omitempty"`
	UserID           string                 `json:"user_id,omitempty"`
	UserShortName    string                 `json:"user_short_name,omitempty"`
	Revealed         map[string]string      `json:"revealed,omitempty"`
}

// PushView is a channel's push state.
type PushView struct {
	Topic        string     `json:"topic,omitempty"`
	HasToken     bool       `json:"has_token"`
	TokenInvalid bool       `json:"token_invalid,omitempty"`
	UpdatedAt    *time.Time `json:"token_updated_at,omitempty"`
	LastPushAt   *time.Time `json:"last_push_at,omitempty"`
	LastPushSent bool       `json:"last_push_sent,omitempty"`
	LastPushErr  string     `json:"last_push_error,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func viewOf(e *storage.Enrollment) DeviceView {
	return DeviceView{
		ID: e.ID, Type: e.Type, Enrolled: e.Enrolled,
		EnrollmentMethod: e.EnrollmentMethod, EnrollmentRef: e.EnrollmentRef,
		EnrolledAt: e.EnrolledAt, CheckedOutAt: timePtr(e.CheckedOutAt), LastSeen: timePtr(e.LastSeen),
		Facts: e.Facts, CertSerial: e.CertSerial, CertNotAfter: timePtr(e.CertNotAfter),
		Push: PushView{Topic: e.Topic, HasToken: len(e.Token) > 0, TokenInvalid: e.TokenInvalid, UpdatedAt: timePtr(e.TokenUpdatedAt),
			LastPushAt: timePtr(e.LastPushAt), LastPushSent: e.LastPushSent, LastPushErr: e.LastPushError},
		AwaitingConfig: e.AwaitingConfiguration, BootstrapToken: len(e.BootstrapTokenSealed) > 0,
		UnlockToken: len(e.UnlockTokenSealed) > 0, UserID: e.UserID, UserShortName: e.UserShortName,
	}
}

const maxPage = 1000

// inventoryFilters are the GET /v1/devices parameters the inventory answers.
var inventoryFilters = []string{"platform", "model", "os_version", "supervised", "ownership"}

func (h *Handler) listDevices(w http.ResponseWriter, r *http.Request) {
	if h.filter != nil && slices.ContainsFunc(inventoryFilters, r.URL.Query().Has) {
		h.filter.ServeHTTP(w, r)
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit must be 1..%d", maxPage))
			return
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	var out []DeviceView
	next := ""
	for len(out) < limit {
		page, err := h.store.ListEnrollments(r.Context(), after, limit)
		if err != nil {
			writeErr(w, h.log, err)
			return
		}
		for i := range page {
			after = page[i].ID
			if page[i].DeviceID == page[i].ID && len(out) < limit {
				out = append(out, viewOf(&page[i]))
				next = page[i].ID
			}
		}
		if len(page) < limit {
			next = ""
			break
		}
	}
	if out == nil {
		out = []DeviceView{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"devices": out, "next": next})
}

func (h *Handler) showDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := mdm.ParseChannelID(id); err != nil {
		WriteError(w, http.StatusBadRequest, "invalid device id: "+err.Error())
		return
	}
	e, err := h.store.Enrollment(r.Context(), id)
	if err != nil {
		writeErr(w, h.log, err)
		return
	}
	v := viewOf(e)
	depth, err := h.store.QueueDepth(r.Context(), id)
	if err != nil {
		writeErr(w, h.log, err)
		return
	}
	v.QueueDepth = &depth
	if e.DeviceID == e.ID {
		users, err := h.store.ListEnrollments(r.Context(), id+mdm.ChannelSeparator, maxPage)
		if err != nil {
			writeErr(w, h.log, err)
			return
		}
		for i := range users {
			if !strings.HasPrefix(users[i].ID, id+mdm.ChannelSeparator) {
				break
			}
			v.Users = append(v.Users, viewOf(&users[i]))
		}
	}
	if reveal := r.URL.Query().Get("reveal"); reveal != "" {
		if v.Revealed, err = h.reveal(r.Context(), e, reveal); err != nil {
			writeErr(w, h.log, err)
			return
		}
		h.log.Info("secrets revealed to the admin", "device", id, "fields", reveal)
	}
	WriteJSON(w, http.StatusOK, v)
}

// reveal returns secrets the admin named: push_magic, push_token, unlock_token.
func (h *Handler) reveal(ctx context.Context, e *storage.Enrollment, names string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range strings.Split(names, ",") {
		switch n {
		case "push_magic":
			out[n] = e.PushMagic
		case "push_token":
			out[n] = fmt.Sprintf("%x", e.Token)
		case "unlock_token":
			if h.secrets == nil || len(e.UnlockTokenSealed) == 0 {
				out[n] = ""
				continue
			}
			tok, err := h.secrets.UnlockToken(ctx, e.ID)
			if err != nil {
				return nil, err
			}
			out[n] = base64.StdEncoding.EncodeToString(tok)
		default:
			return nil, Badf("reveal: unknown field %q (push_magic, push_token, unlock_token)", n)
		}
	}
	return out, nil
}

// CommandRequest is the body of POST /v1/commands.
type CommandRequest struct {
	Targets []string `json:"targets"`
	// UserID, when set, targets that user's channel on every target device.
	UserID string `json:"user_id,omitempty"`
	// Either Plist (base64 of a {CommandUUID, Command} plist) ...
	Plist string `json:"plist,omitempty"`
	// ... or RequestType with Payload.
	RequestType string         `json:"request_type,omitempty"`
	Payload     map[string]any `json:"payload,omitempty"`
}

// TargetResult says what happened for one target.
type TargetResult struct {
	Target string `json:"target"`
	Queued bool   `json:"queued"`
	Error  string `json:"error,omitempty"`
	// Warnings name keys the target's platform does not support: the
	// device ignores or rejects them.
	Warnings []string `json:"warnings,omitempty"`
}

// MaxTargets bounds one API call.
const MaxTargets = 100_000

func (h *Handler) sendCommand(w http.ResponseWriter, r *http.Request) {
	var req CommandRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		writeErr(w, h.log, err)
		return
	}
	uuid, cmd, err := h.buildCommand(&req)
	if err != nil {
		writeErr(w, h.log, err)
		return
	}
	if len(req.Targets) == 0 || len(req.Targets) > MaxTargets {
		WriteError(w, http.StatusBadRequest, fmt.Sprintf("targets: give 1..%d device or channel IDs", MaxTargets))
		return
	}
	rt, _ := cmd["RequestType"].(string)
	spec, _ := commands.Lookup(rt)
	results, channels := h.resolveTargets(r.Context(), spec, cmd, req.Targets, req.UserID)
	if len(channels) == 0 {
		WriteJSON(w, http.StatusBadRequest, map[string]any{"error": "no target can receive the command", "targets": results})
		return
	}
	raw, err := mdm.EncodeCommand(uuid, cmd)
	if err != nil {
		writeErr(w, h.log, Badf("%v", err))
		return
	}
	c := &storage.Command{UUID: uuid, RequestType: rt, Raw: raw, CreatedAt: time.Now()}
	if err := h.store.Enqueue(r.Context(), c, channels); err != nil {
		writeErr(w, h.log, err)
		return
	}
	if h.pusher != nil {
		h.pusher.PushChannels(context.WithoutCancel(r.Context()), channels)
	}
	h.log.Info("command queued", "command", uuid, "request_type", rt, "targets", len(channels))
	WriteJSON(w, http.StatusCreated, map[string]any{"command_uuid": uuid, "request_type": rt, "targets": results})
}

func (h *Handler) buildCommand(req *CommandRequest) (string, mdm.CommandPayload, error) {
	switch {
	case req.Plist != "" && req.RequestType != "":
		return "", nil, Badf("give either plist or request_type, not both")
	case req.Plist != "":
		raw, err := base64.StdEncoding.DecodeString(req.Plist)
		if err != nil {
			return "", nil, Badf("plist: not base64")
		}
		checked, err := commands.ValidatePlist(raw)
		if err != nil {
			return "", nil, Badf("plist: %v", err)
		}
		uuid := checked.CommandUUID
		if uuid == "" {
			uuid = mdm.NewUUID()
		}
		if len(uuid) > mdm.MaxCommandUUIDLen {
			return "", nil, Badf("plist: CommandUUID longer than %d bytes", mdm.MaxCommandUUIDLen)
		}
		return uuid, checked.Command, nil
	case req.RequestType != "":
		cmd, err := commands.BuildCommand(req.RequestType, req.Payload)
		if err != nil {
			return "", nil, Badf("%v", err)
		}
		return mdm.NewUUID(), cmd, nil
	}
	return "", nil, Badf("give a command: plist (base64) or request_type with payload")
}

// resolveTargets turns device IDs (plus an optional user) into enrolled
// channels, reporting each target that cannot receive the command.
func (h *Handler) resolveTargets(ctx context.Context, spec *commands.Command, cmd mdm.CommandPayload, targets []string, user string) ([]TargetResult, []string) {
	results := make([]TargetResult, 0, len(targets))
	var channels []string
	seen := map[string]bool{}
	for _, t := range targets {
		id := t
		if user != "" {
			id = t + mdm.ChannelSeparator + user
		}
		res := TargetResult{Target: id}
		switch _, err := mdm.ParseChannelID(id); {
		case err != nil:
			res.Error = "invalid id: " + err.Error()
		case seen[id]:
			res.Error = "listed twice"
		default:
			e, err := h.store.Enrollment(ctx, id)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				res.Error = "unknown device or channel"
			case err != nil:
				res.Error = "lookup failed"
				h.log.Error("resolve target", "target", id, "err", err)
			case !e.Enrolled:
				res.Error = "not enrolled"
			default:
				t := h.target(ctx, e)
				if err := spec.Eligible(t); err != nil {
					res.Error = err.Error()
					break
				}
				res.Warnings = spec.Unsupported(t.Platform, cmd)
				res.Queued = true
				channels = append(channels, id)
			}
		}
		seen[id] = true
		results = append(results, res)
	}
	return results, channels
}

// target is what Orchard knows of a channel for Apple's eligibility
// rules; what it does not know never refuses.
func (h *Handler) target(ctx context.Context, e *storage.Enrollment) commands.Target {
	if h.targets != nil {
		return h.targets.Target(ctx, e)
	}
	t := commands.Target{Channel: commands.DeviceChannel}
	if e.ID != e.DeviceID {
		t.Channel = commands.UserChannel
	}
	t.UserEnrollment = commands.Known(e.Type == storage.UserEnrollmentDevice || e.Type == storage.UserEnrollment)
	facts := e.Facts
	if facts == nil {
		if dev, err := h.store.Enrollment(ctx, e.DeviceID); err == nil {
			facts = dev.Facts
		}
	}
	if facts != nil {
		t.Platform = mdm.Platform(facts.ProductName, facts.Model)
		t.OSVersion = facts.OSVersion
	}
	return t
}

// CommandView is a command with per-target status and results.
type CommandView struct {
	UUID        string       `json:"command_uuid"`
	RequestType string       `json:"request_type"`
	CreatedAt   time.Time    `json:"created_at"`
	Targets     []TargetView `json:"targets"`
}

// TargetView is one target of a command.
type TargetView struct {
	storage.Target
	Results []ResultView `json:"results,omitempty"`
}

// ResultView is one stored result.
type ResultView struct {
	Status     storage.TargetStatus `json:"status"`
	At         time.Time            `json:"at"`
	ErrorChain []storage.ErrorChain `json:"error_chain,omitempty"`
	Response   map[string]any       `json:"response,omitempty"`
}

func (h *Handler) showCommand(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	cmd, targets, err := h.store.Command(r.Context(), uuid)
	if err != nil {
		writeErr(w, h.log, err)
		return
	}
	results, err := h.store.Results(r.Context(), uuid)
	if err != nil {
		writeErr(w, h.log, err)
		return
	}
	byChannel := map[string][]ResultView{}
	for _, res := range results {
		byChannel[res.ChannelID] = append(byChannel[res.ChannelID], ResultView{
			Status: res.Status, At: res.At, ErrorChain: res.ErrorChain, Response: responseOf(res.Raw),
		})
	}
	v := CommandView{UUID: cmd.UUID, RequestType: cmd.RequestType, CreatedAt: cmd.CreatedAt}
	for _, t := range targets {
		v.Targets = append(v.Targets, TargetView{Target: t, Results: byChannel[t.ChannelID]})
	}
	WriteJSON(w, http.StatusOK, v)
}

func (h *Handler) cancelCommand(w http.ResponseWriter, r *http.Request) {
	n, err := h.store.Cancel(r.Context(), r.PathValue("uuid"))
	if err != nil {
		writeErr(w, h.log, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]int{"canceled": n})
}

// NewUUID is mdm.NewUUID, kept so callers outside this package need no edit.
func NewUUID() string { return mdm.NewUUID() }

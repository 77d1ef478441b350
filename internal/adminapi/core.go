package adminapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/inventory"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/commands"
	"github.com/orchardmdm/orchard/storage"
)

func (a *API) schema(w http.ResponseWriter, r *http.Request) {
	body, err := commands.ListingJSON()
	if err != nil {
		apijson.Fail(w, r, a.log, err)
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
	Ownership        storage.Ownership      `json:"ownership,omitempty"`
	OwnershipBy      string                 `json:"ownership_by,omitempty"`
	EnrolledAt       time.Time              `json:"enrolled_at"`
	CheckedOutAt     *time.Time             `json:"checked_out_at,omitempty"`
	LastSeen         *time.Time             `json:"last_seen,omitempty"`
	Facts            *storage.DeviceFacts   `json:"device,omitempty"`
	CertSerial       string                 `json:"identity_cert_serial,omitempty"`
	CertNotAfter     *time.Time             `json:"identity_cert_not_after,omitempty"`
	Renewal          *RenewalView           `json:"identity_renewal,omitempty"`
	Push             PushView               `json:"push"`
	AwaitingConfig   bool                   `json:"awaiting_configuration"`
	BootstrapToken   bool                   `json:"bootstrap_token_escrowed"`
	UnlockToken      bool                   `json:"unlock_token_escrowed"`
	QueueDepth       *int                   `json:"queue_depth,omitempty"`
	Users            []DeviceView           `json:"users,omitempty"`
	UserID           string                 `json:"user_id,omitempty"`
	UserShortName    string                 `json:"user_short_name,omitempty"`
	PrimaryUser      string                 `json:"primary_user,omitempty"`
	Category         string                 `json:"category,omitempty"`
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

// RenewalView is where a device's identity renewal stands: none, queued,
// installed or failed (with the reason).
type RenewalView struct {
	State       string     `json:"state"`
	Reason      string     `json:"reason,omitempty"`
	CommandUUID string     `json:"command_uuid,omitempty"`
	QueuedAt    *time.Time `json:"queued_at,omitempty"`
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
}

func renewalView(e *storage.Enrollment) *RenewalView {
	if e.ID != e.DeviceID {
		return nil
	}
	r := e.Renewal
	if r == nil {
		return &RenewalView{State: "none"}
	}
	return &RenewalView{State: r.State, Reason: r.Reason, CommandUUID: r.CommandUUID,
		QueuedAt: timePtr(r.QueuedAt), UpdatedAt: timePtr(r.UpdatedAt)}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// ownershipOf is a device's ownership and why (nothing for a user
// channel). Enrollments from before the policy recorded them are judged as
// the inventory judges them, by how they enrolled.
func ownershipOf(e *storage.Enrollment) (storage.Ownership, string) {
	if e.ID != e.DeviceID {
		return "", ""
	}
	own, by := e.Ownership, e.OwnershipBy
	if own == "" {
		own = inventory.OwnershipOf(e.EnrollmentMethod, "")
	}
	if own == storage.Corporate && by == "" {
		switch {
		case e.EnrollmentMethod == storage.KindADE || e.EnrollmentMethod == storage.KindConfigurator:
			by = e.EnrollmentMethod
		case e.EnrolledBy != "":
			by = storage.OwnershipByDEM
		}
	}
	return own, by
}

func viewOf(e *storage.Enrollment) DeviceView {
	own, by := ownershipOf(e)
	return DeviceView{
		ID: e.ID, Type: e.Type, Enrolled: e.Enrolled,
		EnrollmentMethod: e.EnrollmentMethod, EnrollmentRef: e.EnrollmentRef, Ownership: own, OwnershipBy: by,
		EnrolledAt: e.EnrolledAt, CheckedOutAt: timePtr(e.CheckedOutAt), LastSeen: timePtr(e.LastSeen),
		Facts: e.Facts, CertSerial: e.CertSerial, CertNotAfter: timePtr(e.CertNotAfter), Renewal: renewalView(e),
		Push: PushView{Topic: e.Topic, HasToken: len(e.Token) > 0, TokenInvalid: e.TokenInvalid, UpdatedAt: timePtr(e.TokenUpdatedAt),
			LastPushAt: timePtr(e.LastPushAt), LastPushSent: e.LastPushSent, LastPushErr: e.LastPushError},
		AwaitingConfig: e.AwaitingConfiguration, BootstrapToken: len(e.BootstrapTokenSealed) > 0,
		UnlockToken: len(e.UnlockTokenSealed) > 0, UserID: e.UserID, UserShortName: e.UserShortName,
	}
}

const maxPage = 1000

// inventoryFilters are the GET /v1/devices parameters the inventory answers.
var inventoryFilters = []string{"platform", "model", "os_version", "supervised", "ownership", "q"}

func (a *API) listDevices(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("category") {
		a.listDevicesByCategory(w, r)
		return
	}
	if r.URL.Query().Has("user") || r.URL.Query().Has("group") {
		a.listDevicesByUser(w, r)
		return
	}
	if a.inv != nil && slices.ContainsFunc(inventoryFilters, r.URL.Query().Has) {
		a.inv.List(w, r)
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			apijson.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit must be 1..%d", maxPage))
			return
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	var out []DeviceView
	next := ""
	for len(out) < limit {
		page, err := a.store.ListEnrollments(r.Context(), after, limit)
		if err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
		for i := range page {
			after = page[i].ID
			if page[i].DeviceID == page[i].ID && len(out) < limit {
				v := viewOf(&page[i])
				if err := a.withPrimaryUser(r.Context(), &v); err != nil {
					apijson.Fail(w, r, a.log, err)
					return
				}
				if err := a.withCategory(r.Context(), &v); err != nil {
					apijson.Fail(w, r, a.log, err)
					return
				}
				out = append(out, v)
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
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"devices": out, "next": next})
}

func (a *API) showDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := mdm.ParseChannelID(id); err != nil {
		apijson.WriteError(w, http.StatusBadRequest, "invalid device id: "+err.Error())
		return
	}
	e, err := a.store.Enrollment(r.Context(), id)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	v := viewOf(e)
	if e.DeviceID == e.ID {
		if err := a.withPrimaryUser(r.Context(), &v); err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
		if err := a.withCategory(r.Context(), &v); err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
	}
	depth, err := a.store.QueueDepth(r.Context(), id)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	v.QueueDepth = &depth
	if e.DeviceID == e.ID {
		users, err := a.store.ListEnrollments(r.Context(), id+mdm.ChannelSeparator, maxPage)
		if err != nil {
			apijson.Fail(w, r, a.log, err)
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
		if v.Revealed, err = a.reveal(r.Context(), e, reveal); err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
		a.log.Info("secrets revealed to the admin", "device", id, "fields", reveal)
	}
	apijson.WriteJSON(w, http.StatusOK, v)
}

// reveal returns secrets the admin named: push_magic, push_token, unlock_token.
func (a *API) reveal(ctx context.Context, e *storage.Enrollment, names string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range strings.Split(names, ",") {
		switch n {
		case "push_magic":
			out[n] = e.PushMagic
		case "push_token":
			out[n] = fmt.Sprintf("%x", e.Token)
		case "unlock_token":
			if a.secrets == nil || len(e.UnlockTokenSealed) == 0 {
				out[n] = ""
				continue
			}
			tok, err := a.secrets.UnlockToken(ctx, e.ID)
			if err != nil {
				return nil, err
			}
			out[n] = base64.StdEncoding.EncodeToString(tok)
		default:
			return nil, apijson.Bad("reveal: unknown field %q (push_magic, push_token, unlock_token)", n)
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
	// AllowUnknown accepts a plist with keys or a request type newer than
	// the bundled schema, with a warning for each.
	AllowUnknown bool `json:"allow_unknown,omitempty"`
}

// TargetResult says what happened for one target.
type TargetResult = command.TargetResult

// MaxTargets bounds one API call.
const MaxTargets = command.MaxTargets

func (a *API) sendCommand(w http.ResponseWriter, r *http.Request) {
	var req CommandRequest
	if err := apijson.Decode(w, r, MaxJSONBody, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	creq := &command.Request{Targets: req.Targets, UserID: req.UserID, RequestType: req.RequestType, Payload: req.Payload,
		AllowUnknown: req.AllowUnknown}
	if req.Plist != "" && req.RequestType == "" {
		raw, err := base64.StdEncoding.DecodeString(req.Plist)
		if err != nil {
			apijson.Fail(w, r, a.log, apijson.Bad("plist: not base64"))
			return
		}
		creq.Plist = raw
	} else if req.Plist != "" {
		creq.Plist = []byte(req.Plist) // refused: both forms given
	}
	out, err := a.commands.Send(r.Context(), creq)
	if errors.Is(err, command.ErrNoTarget) {
		err = &apijson.Error{Status: http.StatusBadRequest, Msg: err.Error(), Fields: map[string]any{"targets": out.Targets}}
	}
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	resp := map[string]any{"command_uuid": out.UUID, "request_type": out.RequestType, "targets": out.Targets}
	if len(out.Warnings) > 0 {
		resp["warnings"] = out.Warnings
	}
	apijson.WriteJSON(w, http.StatusCreated, resp)
}

// CommandView is a command with per-target status and results.
type CommandView struct {
	UUID        string    `json:"command_uuid"`
	RequestType string    `json:"request_type"`
	CreatedAt   time.Time `json:"created_at"`
	Sender      string    `json:"sender,omitempty"`
	// Command is the request as sent, secrets hidden (apijson.CommandJSON).
	Command map[string]any `json:"command,omitempty"`
	Targets []TargetView   `json:"targets"`
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

func (a *API) showCommand(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	cmd, targets, err := a.store.Command(r.Context(), uuid)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	results, err := a.store.Results(r.Context(), uuid)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	byChannel := map[string][]ResultView{}
	for _, res := range results {
		byChannel[res.ChannelID] = append(byChannel[res.ChannelID], ResultView{
			Status: res.Status, At: res.At, ErrorChain: res.ErrorChain, Response: apijson.ResponseJSON(res.Raw),
		})
	}
	v := CommandView{UUID: cmd.UUID, RequestType: cmd.RequestType, CreatedAt: cmd.CreatedAt, Sender: cmd.Sender,
		Command: apijson.CommandJSON(cmd.Raw)}
	for _, t := range targets {
		v.Targets = append(v.Targets, TargetView{Target: t, Results: byChannel[t.ChannelID]})
	}
	apijson.WriteJSON(w, http.StatusOK, v)
}

func (a *API) cancelCommand(w http.ResponseWriter, r *http.Request) {
	n, err := a.store.Cancel(r.Context(), r.PathValue("uuid"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]int{"canceled": n})
}

// deviceOnly reads the {id} of a route that sets something only a device
// channel has (what names it: "a category"); a bad or user-channel ID is
// answered with 400 and ok false.
func deviceOnly(w http.ResponseWriter, r *http.Request, what string) (id string, ok bool) {
	id = r.PathValue("id")
	ch, err := mdm.ParseChannelID(id)
	if err != nil {
		apijson.WriteError(w, http.StatusBadRequest, "invalid device id: "+err.Error())
		return "", false
	}
	if ch.IsUser() {
		apijson.WriteError(w, http.StatusBadRequest, what+" belongs to a device, not a user channel")
		return "", false
	}
	return id, true
}

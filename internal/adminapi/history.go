package adminapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// ChannelCommandView is one command in a channel's history.
type ChannelCommandView struct {
	UUID        string    `json:"uuid"`
	RequestType string    `json:"request_type"`
	CreatedAt   time.Time `json:"created_at"`
	Sender      string    `json:"sender,omitempty"`
	// ChannelID is the target's channel (in the fleet-wide list).
	ChannelID string               `json:"channel_id,omitempty"`
	Status    storage.TargetStatus `json:"status"`
	UpdatedAt time.Time            `json:"updated_at"`
	Seq       uint64               `json:"seq"`
	// ErrorChain is the latest result's, when the device answered Error.
	ErrorChain []storage.ErrorChain `json:"error_chain,omitempty"`
	AnsweredAt *time.Time           `json:"answered_at,omitempty"`
}

// deviceCommands serves GET /v1/devices/{id}/commands: the channel's
// commands newest first, limit (1..1000, default 50) at a time; next is the
// before of the following page ("" at the end).
func (a *API) deviceCommands(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := mdm.ParseChannelID(id); err != nil {
		apijson.WriteError(w, http.StatusBadRequest, "invalid device id: "+err.Error())
		return
	}
	q := r.URL.Query()
	limit := 50
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			apijson.WriteError(w, http.StatusBadRequest, "limit must be 1..1000")
			return
		}
		limit = n
	}
	var before uint64
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			apijson.WriteError(w, http.StatusBadRequest, "before must be a positive integer (a page's next)")
			return
		}
		before = n
	}
	if _, err := a.store.Enrollment(r.Context(), id); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	page, err := a.history.ChannelCommands(r.Context(), id, before, limit+1)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	next := ""
	if len(page) > limit {
		page = page[:limit]
		next = strconv.FormatUint(page[limit-1].Target.Seq, 10)
	}
	out := make([]ChannelCommandView, 0, len(page))
	for i := range page {
		out = append(out, channelCommandView(&page[i]))
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"commands": out, "next": next})
}

func channelCommandView(cc *storage.ChannelCommand) ChannelCommandView {
	v := ChannelCommandView{UUID: cc.Command.UUID, RequestType: cc.Command.RequestType, CreatedAt: cc.Command.CreatedAt,
		Sender: cc.Command.Sender, Status: cc.Target.Status, UpdatedAt: cc.Target.UpdatedAt, Seq: cc.Target.Seq}
	if cc.Result != nil {
		v.ErrorChain = cc.Result.ErrorChain
		v.AnsweredAt = timePtr(cc.Result.At)
	}
	return v
}

package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/mdm/commands"
	"github.com/orchardmdm/orchard/storage"
)

// The Commands pages: the fleet's command log (GET /v1/commands) with its
// filters, and one command's detail (GET /v1/commands/{uuid}).

// commandFilters are the log's filters the page takes from its query and
// passes to the API as they are.
var commandFilters = []string{"request_type", "status", "sender", "since", "until"}

type commandsData struct {
	F        map[string]string
	UUID     string // the lookup form's value
	Rows     []adminapi.ChannelCommandView
	Next     string
	Before   string // this page's cursor ("" for the newest)
	Types    []string
	Statuses []storage.TargetStatus
}

// NextURL is the older page's link with the same filters.
func (d commandsData) NextURL() string { return d.pageURL(d.Next) }

// NewestURL is the first page's link with the same filters.
func (d commandsData) NewestURL() string { return d.pageURL("") }

func (d commandsData) pageURL(before string) string {
	v := url.Values{}
	if before != "" {
		v.Set("before", before)
	}
	for k, s := range d.F {
		if s != "" {
			v.Set(k, s)
		}
	}
	if len(v) == 0 {
		return Prefix + "/commands"
	}
	return Prefix + "/commands?" + v.Encode()
}

// CSV is the export's link with the same filters.
func (d commandsData) CSV() string { return csvURL("/commands.csv", d.F) }

// Filtered says whether any filter is set.
func (d commandsData) Filtered() bool {
	for _, s := range d.F {
		if s != "" {
			return true
		}
	}
	return false
}

// requestTypes are the schema's request types, for the filter's suggestions.
var requestTypes = func() []string {
	all := commands.All()
	out := make([]string, len(all))
	for i := range all {
		out[i] = all[i].RequestType
	}
	return out
}()

// commands lists the command log, newest first, a page at a time; a UUID
// typed in the lookup opens that command.
func (c *Console) commands(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d := commandsData{F: filtersOf(r, commandFilters), UUID: strings.TrimSpace(r.URL.Query().Get("uuid")),
		Before: r.URL.Query().Get("before"), Types: requestTypes, Statuses: storage.TargetStatuses}
	var errs webui.FormErrors
	status := http.StatusOK
	if d.UUID != "" {
		cmd, err := c.loadCommand(r, actor, d.UUID)
		if err == nil {
			c.render(w, r, http.StatusOK, "command", actor, &webui.Page{Title: "Command " + d.UUID, Data: cmd})
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound && ae.Status != http.StatusBadRequest {
			c.show(w, r, actor, err)
			return
		}
		errs, status = webui.FormErrors{"uuid": reason(err)}, http.StatusNotFound
	}
	args := map[string]string{"before": d.Before}
	for k, v := range d.F {
		args[k] = v
	}
	var page struct {
		Commands []adminapi.ChannelCommandView `json:"commands"`
		Next     string                        `json:"next"`
	}
	ferrs, ok := c.readReport(w, r, actor, query("/v1/commands", args), &page)
	if !ok {
		return
	}
	if ferrs != nil {
		errs, status = ferrs, http.StatusBadRequest
	}
	d.Rows, d.Next = page.Commands, page.Next
	c.render(w, r, status, "commands", actor, &webui.Page{Title: "Commands", Data: d, Errors: errs})
}

// maxTargetsShown bounds the targets a command's page lists.
const maxTargetsShown = 500

// commandData is one command as its page shows it.
type commandData struct {
	adminapi.CommandView
	// Request is the command as sent (secrets hidden by the API), indented.
	Request string
	Rows    []targetRow
	// More counts the targets left off the page.
	More int
}

// targetRow is one target of a command with its results.
type targetRow struct {
	storage.Target
	Results []resultRow
}

// resultRow is one result; Response is its plist as indented JSON
// (secrets hidden by the API).
type resultRow struct {
	adminapi.ResultView
	Response string
}

func indented(v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return string(b), err
}

func (c *Console) loadCommand(r *http.Request, actor *adminauth.Actor, uuid string) (*commandData, error) {
	d := &commandData{}
	if err := c.call(r, actor, "GET", "/v1/commands/"+url.PathEscape(uuid), nil, &d.CommandView); err != nil {
		return nil, err
	}
	var err error
	if d.Command != nil {
		if d.Request, err = indented(d.Command); err != nil {
			return nil, err
		}
	}
	shown := d.Targets
	if len(shown) > maxTargetsShown {
		shown, d.More = shown[:maxTargetsShown], len(shown)-maxTargetsShown
	}
	for _, t := range shown {
		row := targetRow{Target: t.Target}
		for _, res := range t.Results {
			rr := resultRow{ResultView: res}
			if len(res.Response) > 0 {
				if rr.Response, err = indented(res.Response); err != nil {
					return nil, err
				}
			}
			row.Results = append(row.Results, rr)
		}
		d.Rows = append(d.Rows, row)
	}
	return d, nil
}

// command shows one command: its request, sender, and each target's
// state and results.
func (c *Console) command(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	uuid := r.PathValue("uuid")
	d, err := c.loadCommand(r, actor, uuid)
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "command", actor, &webui.Page{Title: "Command " + uuid, Data: d})
}

package adminapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/storage"
)

// TestInProcess: Do runs the route table's own role check and audit for an
// actor its caller signed in, and Allows answers from the same rule.
func TestInProcess(t *testing.T) {
	db, _, _, _ := openStore(t)
	a, err := adminapi.New(adminapi.Config{APIKey: testKey, Store: db, Admins: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	helpdesk := &adminauth.Actor{Admin: "hana", Role: adminauth.Helpdesk}
	owner := &adminauth.Actor{Admin: "olga", Role: adminauth.Owner}
	const dev = "/v1/devices/00008030-001A35E11E88802E"
	for _, tc := range []struct {
		actor        *adminauth.Actor
		method, path string
		want         bool
	}{
		{helpdesk, "POST", dev + "/actions/lock", true},
		{helpdesk, "POST", dev + "/actions/erase", false},
		{helpdesk, "POST", dev + "/actions/retire", false},
		{helpdesk, "POST", dev + "/actions/no-such-action", false},
		{helpdesk, "GET", "/v1/devices", true},
		{helpdesk, "POST", "/v1/admins", false},
		{owner, "POST", dev + "/actions/erase", true},
		{owner, "POST", "/v1/admins", true},
		{owner, "POST", "/v1/no-such-route", false},
		{nil, "GET", "/v1/devices", false},
	} {
		if got := a.Allows(tc.actor, tc.method, tc.path); got != tc.want {
			t.Errorf("Allows(%v, %s %s) = %v, want %v", tc.actor, tc.method, tc.path, got, tc.want)
		}
	}

	st, body := a.Do(t.Context(), helpdesk, "192.0.2.7:5000", "POST", dev+"/actions/erase", []byte(`{}`))
	if st != http.StatusForbidden {
		t.Fatalf("helpdesk erase in-process: %d %s", st, body)
	}
	audit, err := db.ListAudit(t.Context(), storage.AuditFilter{Actor: "hana"}, "", 0)
	if err != nil || len(audit) != 1 || audit[0].Result != "denied" || audit[0].Source != "192.0.2.7" ||
		audit[0].Action != "POST /v1/devices/{id}/actions/{action}" {
		t.Fatalf("audit of the refused erase = %+v, %v", audit, err)
	}
	st, body = a.Do(t.Context(), helpdesk, "192.0.2.7:5000", "GET", "/v1/devices?limit=5", nil)
	var list struct {
		Devices []json.RawMessage `json:"devices"`
	}
	if st != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("list in-process: %d %s", st, body)
	}
	if st, _ := a.Do(t.Context(), nil, "192.0.2.7:5000", "GET", "/v1/devices", nil); st != http.StatusUnauthorized {
		t.Fatalf("no actor: %d", st)
	}
	if st, _ := a.Do(t.Context(), owner, "192.0.2.7:5000", "GET", "/console/", nil); st != http.StatusBadRequest {
		t.Fatalf("a path outside /v1: %d", st)
	}
}

package adminapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// newAdminServer is newServer with admin accounts and the audit log wired;
// it also returns the database path.
func newAdminServer(t *testing.T) (*httptest.Server, *bolt.Store, string) {
	t.Helper()
	return serveAPI(t, true)
}

// jsonCall sends body as JSON with key and decodes the answer into out.
func jsonCall(t *testing.T, srv *httptest.Server, method, path, key string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// makeAdmin creates an admin with the bootstrap key and returns a token
// of the admin's own role.
func makeAdmin(t *testing.T, srv *httptest.Server, name, role string) string {
	t.Helper()
	if st := jsonCall(t, srv, "POST", "/v1/admins", testKey, map[string]string{"username": name, "role": role, "password": "pw-" + name + "-long-enough"}, nil); st != 201 {
		t.Fatalf("create %s: %d", name, st)
	}
	var tok adminapi.TokenView
	if st := jsonCall(t, srv, "POST", "/v1/admins/"+name+"/tokens", testKey, map[string]string{"name": "test"}, &tok); st != 201 || !strings.HasPrefix(tok.Token, adminapi.TokenPrefix) {
		t.Fatalf("token for %s: %d %+v", name, st, tok)
	}
	return tok.Token
}

// wantNeed is the access policy written out route by route, apart from
// the table it checks: a route added without a line here fails the walk.
var wantNeed = map[string]adminauth.Need{
	"GET /v1/openapi.json": adminauth.Read,
	"GET /v1/devices":      adminauth.Read, "GET /v1/devices/{id}": adminauth.Read,
	"GET /v1/devices/{id}/inventory": adminauth.Read, "GET /v1/devices/{id}/apps": adminauth.Read,
	"GET /v1/devices/{id}/profiles": adminauth.Read, "GET /v1/devices/{id}/certificates": adminauth.Read,
	"GET /v1/devices/{id}/location": adminauth.Read, "POST /v1/devices/{id}/release": adminauth.Destructive,
	"POST /v1/devices/{id}/actions/{action}": 0, // per action: actionWant
	"GET /v1/inventory":                      adminauth.Read,
	"GET /v1/inventory/counts":               adminauth.Read,
	"POST /v1/commands":                      adminauth.Policy, "GET /v1/commands/{uuid}": adminauth.Read,
	"GET /v1/commands": adminauth.Read, "GET /v1/commands.csv": adminauth.Read,
	"DELETE /v1/commands/{uuid}": adminauth.Action, "GET /v1/schema/commands": adminauth.Read,
	"PUT /v1/push-certificate": adminauth.Policy, "GET /v1/push-certificate": adminauth.Read, "POST /v1/push": adminauth.Action,
	"POST /v1/enrollment/invitations": adminauth.Policy, "GET /v1/enrollment/invitations": adminauth.Read,
	"GET /v1/enrollment/profile": adminauth.Policy, "GET /v1/enrollment/failures": adminauth.Read,
	"POST /v1/configurator/profiles": adminauth.Policy, "GET /v1/configurator/profiles": adminauth.Read,
	"GET /v1/configurator/profiles/{id}": adminauth.Read, "DELETE /v1/configurator/profiles/{id}": adminauth.Destructive,
	"GET /v1/configurator/profiles/{id}/mobileconfig": adminauth.Policy, "GET /v1/configurator/profiles/{id}/downloads": adminauth.Read,
	"DELETE /v1/configurator/profiles/{id}/downloads/{download}": adminauth.Destructive,
	"POST /v1/configurator/serials":                              adminauth.Policy, "GET /v1/configurator/serials": adminauth.Read,
	"POST /v1/configurator/serials/assign": adminauth.Policy, "GET /v1/certificates": adminauth.Read,
	"POST /v1/certificates/{serial}/revoke": adminauth.Destructive,
	"GET /v1/dep/public-key":                adminauth.Read, "GET /v1/dep/tokens": adminauth.Read, "POST /v1/dep/tokens": adminauth.Policy,
	"GET /v1/dep/tokens/{id}": adminauth.Read, "PUT /v1/dep/tokens/{id}": adminauth.Policy, "DELETE /v1/dep/tokens/{id}": adminauth.Destructive,
	"POST /v1/dep/tokens/{id}/sync": adminauth.Action, "GET /v1/dep/tokens/{id}/profiles": adminauth.Read,
	"POST /v1/dep/tokens/{id}/profiles": adminauth.Policy, "GET /v1/dep/tokens/{id}/profiles/{pid}": adminauth.Read,
	"PUT /v1/dep/tokens/{id}/profiles/{pid}": adminauth.Policy, "DELETE /v1/dep/tokens/{id}/profiles/{pid}": adminauth.Destructive,
	"POST /v1/dep/tokens/{id}/profiles/{pid}/devices": adminauth.Policy, "GET /v1/dep/devices": adminauth.Read,
	"DELETE /v1/dep/devices/{serial}": adminauth.Destructive,
	"GET /v1/backup":                  adminauth.ManageAdmins,
	"GET /v1/admins":                  adminauth.Read, "POST /v1/admins": adminauth.ManageAdmins,
	"GET /v1/admins/{username}": adminauth.Read, "PATCH /v1/admins/{username}": adminauth.ManageAdmins,
	"DELETE /v1/admins/{username}": adminauth.ManageAdmins, "GET /v1/admins/{username}/tokens": adminauth.ManageAdmins,
	"DELETE /v1/admins/{username}/two-factor": adminauth.ManageAdmins,
	"POST /v1/admins/{username}/tokens":       adminauth.ManageAdmins, "DELETE /v1/admins/{username}/tokens/{id}": adminauth.ManageAdmins,
	"GET /v1/tokens": adminauth.Read, "POST /v1/tokens": adminauth.Read, "DELETE /v1/tokens/{id}": adminauth.Read,
	"GET /v1/audit": adminauth.Read, "GET /v1/audit.csv": adminauth.Read,
	"POST /v1/profiles": adminauth.Policy, "GET /v1/profiles": adminauth.Read, "GET /v1/profiles/{id}": adminauth.Read,
	"PUT /v1/profiles/{id}": adminauth.Policy, "PUT /v1/profiles/{id}/scope": adminauth.Policy,
	"GET /v1/profiles/{id}/status": adminauth.Read, "POST /v1/profiles/{id}/resend": adminauth.Action,
	"GET /v1/profiles/{id}/versions": adminauth.Read, "GET /v1/devices/{id}/profile-states": adminauth.Read,
	"GET /v1/users": adminauth.Read, "POST /v1/users": adminauth.Policy, "POST /v1/users/import": adminauth.Policy,
	"GET /v1/users/{username}": adminauth.Read, "PATCH /v1/users/{username}": adminauth.Policy,
	"GET /v1/groups": adminauth.Read, "POST /v1/groups": adminauth.Policy, "GET /v1/groups/{name}": adminauth.Read,
	"DELETE /v1/groups/{name}": adminauth.Destructive, "GET /v1/groups/{name}/members": adminauth.Read,
	"POST /v1/groups/{name}/members": adminauth.Policy, "POST /v1/groups/{name}/members/import": adminauth.Policy,
	"DELETE /v1/groups/{name}/members/{username}": adminauth.Policy, "PUT /v1/devices/{id}/user": adminauth.Policy,
	// Declarations change what devices install: policy, like commands.
	"GET /v1/declarations": adminauth.Read, "POST /v1/declarations": adminauth.Policy,
	"GET /v1/declarations/{id}": adminauth.Read, "DELETE /v1/declarations/{id}": adminauth.Policy,
	"GET /v1/declarations/{id}/status": adminauth.Read, "GET /v1/declaration-sets": adminauth.Read,
	"POST /v1/declaration-sets": adminauth.Policy, "GET /v1/declaration-sets/{name}": adminauth.Read,
	"DELETE /v1/declaration-sets/{name}": adminauth.Policy, "GET /v1/devices/{id}/declarations": adminauth.Read,
	"GET /v1/software-updates": adminauth.Read,
	// Enrollment policy: rules are policy, deleting is destructive.
	"GET /v1/enrollment/failures.csv": adminauth.Read, "GET /v1/enrollment/summary": adminauth.Read,
	"GET /v1/enrollment/policies": adminauth.Read, "POST /v1/enrollment/policies": adminauth.Policy,
	"GET /v1/enrollment/policies/{id}": adminauth.Read, "PUT /v1/enrollment/policies/{id}": adminauth.Policy,
	"DELETE /v1/enrollment/policies/{id}": adminauth.Destructive, "POST /v1/enrollment/decide": adminauth.Read,
	"GET /v1/corporate-identifiers": adminauth.Read, "POST /v1/corporate-identifiers": adminauth.Policy,
	"POST /v1/corporate-identifiers/import": adminauth.Policy, "DELETE /v1/corporate-identifiers/{kind}/{value}": adminauth.Destructive,
	"GET /v1/users/{username}/limit": adminauth.Read, "PUT /v1/users/{username}/dem": adminauth.Policy,
	"PUT /v1/devices/{id}/ownership": adminauth.Policy,
	// Categories: deleting one takes every device out of it.
	"GET /v1/categories": adminauth.Read, "POST /v1/categories": adminauth.Policy,
	"GET /v1/categories/{name}": adminauth.Read, "PATCH /v1/categories/{name}": adminauth.Policy,
	"DELETE /v1/categories/{name}": adminauth.Destructive, "PUT /v1/devices/{id}/category": adminauth.Policy,
	"GET /v1/devices/{id}/commands": adminauth.Read,
	// Webhooks can be sent device data: managing them is policy.
	"GET /v1/webhooks": adminauth.Read, "POST /v1/webhooks": adminauth.Policy,
	"GET /v1/webhooks/events": adminauth.Read, "POST /v1/webhooks/events/{id}/replay": adminauth.Policy,
	"GET /v1/webhooks/{id}": adminauth.Read, "PATCH /v1/webhooks/{id}": adminauth.Policy,
	"DELETE /v1/webhooks/{id}": adminauth.Policy, "GET /v1/webhooks/{id}/deliveries": adminauth.Read,
	"POST /v1/webhooks/{id}/replay": adminauth.Policy,
	// Terms: deleting a document deletes its acceptances.
	"GET /v1/terms": adminauth.Read, "POST /v1/terms": adminauth.Policy, "GET /v1/terms/acceptances": adminauth.Read,
	"GET /v1/terms/acceptances.csv": adminauth.Read, "GET /v1/terms/{name}": adminauth.Read,
	"PUT /v1/terms/{name}": adminauth.Policy, "DELETE /v1/terms/{name}": adminauth.Destructive,
	"GET /v1/enrollment/incomplete": adminauth.Read, "GET /v1/enrollment/incomplete.csv": adminauth.Read,
	"GET /v1/schema/declarations": adminauth.Read, "PUT /v1/declaration-sets/{name}/scope": adminauth.Policy,
}

// actionWant is what each device action needs: helpdesk gets the listed
// non-destructive ones only.
var actionWant = map[string]adminauth.Need{
	"sync": adminauth.Action, "refresh": adminauth.Action, "lock": adminauth.Action, "clear-passcode": adminauth.Action,
	"lost-mode-enable": adminauth.Action, "lost-mode-disable": adminauth.Action, "lost-mode-location": adminauth.Action,
	"restart": adminauth.Destructive, "shutdown": adminauth.Destructive, "erase": adminauth.Destructive,
	"retire": adminauth.Destructive, "rename": adminauth.Policy, "no-such-action": adminauth.Destructive,
}

// TestEveryRouteEveryRole walks the whole route table with a token of
// every role (and the bootstrap key): a role that lacks the route's access
// gets 403 before the handler runs; one that has it never does.
func TestEveryRouteEveryRole(t *testing.T) {
	srv, db, _ := newAdminServer(t)
	keys := map[adminauth.Role]string{adminauth.Owner: testKey}
	for _, r := range []adminauth.Role{adminauth.Admin, adminauth.Helpdesk, adminauth.Auditor} {
		keys[r] = makeAdmin(t, srv, "walk-"+string(r), string(r))
	}
	keys["owner-token"] = makeAdmin(t, srv, "walk-owner", "owner")
	type probe struct {
		route, path string
		need        adminauth.Need
	}
	var probes []probe
	for _, rt := range adminapi.Routes() {
		n, ok := wantNeed[rt]
		if !ok {
			t.Errorf("route %s has no expected access in wantNeed", rt)
			continue
		}
		method, path, _ := strings.Cut(rt, " ")
		fill := strings.NewReplacer("{id}", "X", "{uuid}", "X", "{pid}", "X", "{serial}", "X", "{download}", "X", "{username}", "nobody", "{kind}", "serial", "{value}", "X")
		if strings.Contains(path, "{action}") {
			for act, an := range actionWant {
				probes = append(probes, probe{rt, method + " " + fill.Replace(strings.Replace(path, "{action}", act, 1)), an})
			}
			continue
		}
		probes = append(probes, probe{rt, method + " " + fill.Replace(path), n})
	}
	for route := range wantNeed {
		if !strings.Contains(strings.Join(adminapi.Routes(), "\n"), route) {
			t.Errorf("wantNeed lists %s, which the table lacks", route)
		}
	}
	// Asking for a device's secrets is more than a read.
	probes = append(probes, probe{"GET /v1/devices/{id}", "GET /v1/devices/X?reveal=push_magic", adminauth.Policy})
	for role, key := range keys {
		r := role
		if r == "owner-token" {
			r = adminauth.Owner
		}
		for _, p := range probes {
			method, path, _ := strings.Cut(p.path, " ")
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if denied, want := resp.StatusCode == http.StatusForbidden, !r.Allows(p.need); denied != want {
				t.Errorf("%s as %s: status %d, want denied=%v (needs %s)", p.path, role, resp.StatusCode, want, p.need)
			}
		}
	}
	// Every refusal is in the audit log, as the helpdesk's token.
	denied, err := db.ListAudit(t.Context(), storage.AuditFilter{Actor: "walk-helpdesk"}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var erase bool
	for _, e := range denied {
		erase = erase || (e.Result == "denied" && e.Status == 403 && e.Target == "id=X action=erase")
	}
	if !erase {
		t.Errorf("helpdesk's refused erase is not audited: %+v", denied)
	}
}

// TestTokenRoleBoundsAndRevocation: a token never exceeds its admin's
// role, now or later; a disabled admin's or revoked token answers 401.
func TestTokenRoleBoundsAndRevocation(t *testing.T) {
	srv, _, _ := newAdminServer(t)
	help := makeAdmin(t, srv, "hana", "helpdesk")
	var tok adminapi.TokenView
	if st := jsonCall(t, srv, "POST", "/v1/tokens", help, map[string]string{"role": "admin"}, nil); st != 400 {
		t.Fatalf("helpdesk made an admin token: %d", st)
	}
	if st := jsonCall(t, srv, "POST", "/v1/tokens", help, map[string]string{"role": "auditor", "name": "ro"}, &tok); st != 201 || tok.Role != "auditor" {
		t.Fatalf("auditor token: %d %+v", st, tok)
	}
	ro := tok.Token
	if st := jsonCall(t, srv, "POST", "/v1/devices/X/actions/lock", ro, nil, nil); st != 403 {
		t.Fatalf("auditor token locked: %d", st)
	}
	if st := jsonCall(t, srv, "POST", "/v1/devices/X/actions/lock", help, nil, nil); st == 403 {
		t.Fatal("helpdesk could not lock")
	}
	// Demoted: the helpdesk-role token now reads only.
	if st := jsonCall(t, srv, "PATCH", "/v1/admins/hana", testKey, map[string]string{"role": "auditor"}, nil); st != 200 {
		t.Fatalf("demote: %d", st)
	}
	if st := jsonCall(t, srv, "POST", "/v1/devices/X/actions/lock", help, nil, nil); st != 403 {
		t.Fatalf("demoted admin's token still locks: %d", st)
	}
	// An admin cannot see or revoke another's token through /v1/tokens.
	other := makeAdmin(t, srv, "omar", "admin")
	if st := jsonCall(t, srv, "DELETE", "/v1/tokens/"+tok.ID, other, nil, nil); st != 404 {
		t.Fatalf("omar revoked hana's token: %d", st)
	}
	var list struct{ Tokens []adminapi.TokenView }
	jsonCall(t, srv, "GET", "/v1/tokens", help, nil, &list)
	if len(list.Tokens) != 2 {
		t.Fatalf("hana's tokens: %+v", list.Tokens)
	}
	for _, v := range list.Tokens {
		if v.Token != "" {
			t.Fatal("a listed token shows its secret")
		}
	}
	if st := jsonCall(t, srv, "DELETE", "/v1/tokens/"+tok.ID, help, nil, nil); st != 204 {
		t.Fatalf("revoke: %d", st)
	}
	if st := jsonCall(t, srv, "GET", "/v1/devices", ro, nil, nil); st != 401 {
		t.Fatalf("revoked token: %d", st)
	}
	if st := jsonCall(t, srv, "PATCH", "/v1/admins/hana", testKey, map[string]any{"disabled": true}, nil); st != 200 {
		t.Fatalf("disable: %d", st)
	}
	if st := jsonCall(t, srv, "GET", "/v1/devices", help, nil, nil); st != 401 {
		t.Fatalf("disabled admin's token: %d", st)
	}
	for _, bad := range []map[string]string{
		{"username": "Bad Name", "role": "admin", "password": "long enough password"},
		{"username": "ok", "role": "root", "password": "long enough password"},
		{"username": "ok", "role": "admin", "password": "short"},
	} {
		if st := jsonCall(t, srv, "POST", "/v1/admins", testKey, bad, nil); st != 400 {
			t.Errorf("create %v: %d, want 400", bad, st)
		}
	}
	if st := jsonCall(t, srv, "POST", "/v1/admins", testKey, map[string]string{"username": "omar", "role": "admin", "password": "long enough password"}, nil); st != 409 {
		t.Errorf("second omar: %d", st)
	}
}

// TestAuditRecordsMutationsAndNoSecrets: every mutation is in the log with
// its actor, source, action, target and result, and no password, token or
// key is anywhere in the database file.
func TestAuditRecordsMutationsAndNoSecrets(t *testing.T) {
	srv, db, path := newAdminServer(t)
	tok := makeAdmin(t, srv, "ines", "admin")
	const pw = "my very secret password"
	jsonCall(t, srv, "PATCH", "/v1/admins/ines", testKey, map[string]string{"password": pw}, nil)
	jsonCall(t, srv, "DELETE", "/v1/commands/abc", tok, nil, nil)
	var e struct {
		Entries []storage.AuditEntry
		Next    string
	}
	if st := jsonCall(t, srv, "GET", "/v1/audit?actor=ines&limit=1", tok, nil, &e); st != 200 || len(e.Entries) != 1 {
		t.Fatalf("audit: %d %+v", st, e)
	}
	got := e.Entries[0]
	if !strings.HasPrefix(got.Actor, "ines/token:") || got.Source != "127.0.0.1" || got.Action != "DELETE /v1/commands/{uuid}" ||
		got.Target != "uuid=abc" || got.Status != 404 || !strings.HasPrefix(got.Result, "failed: ") || got.Time.IsZero() {
		t.Fatalf("entry = %+v", got)
	}
	if st := jsonCall(t, srv, "GET", "/v1/audit?actor=bootstrap", tok, nil, &e); st != 200 || len(e.Entries) != 3 {
		t.Fatalf("bootstrap's entries: %+v", e.Entries) // create, token, password
	}
	if e.Entries[2].Action != "PATCH /v1/admins/{username}" || e.Entries[2].Result != "ok" {
		t.Fatalf("password change entry: %+v", e.Entries[2])
	}
	if st := jsonCall(t, srv, "GET", "/v1/audit?since=yesterday", tok, nil, nil); st != 400 {
		t.Fatalf("bad since: %d", st)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/audit.csv?action=PATCH", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	if resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || len(lines) != 2 || !strings.HasPrefix(lines[0], "id,time,actor") ||
		!strings.Contains(lines[1], "PATCH /v1/admins/{username}") {
		t.Fatalf("csv %q", csv)
	}
	db.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{pw, tok, strings.TrimPrefix(tok, adminapi.TokenPrefix), testKey, "pw-ines-long-enough"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the database holds the secret %q", secret)
		}
	}
}

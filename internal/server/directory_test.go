package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// testDirectoryAPI drives users, groups and their CSV imports through the
// admin API of a running server on loopback TLS, checking every exchange
// against openapi.json, and that no answer ever carries a password hash.
func testDirectoryAPI(t *testing.T, b servertest.Backend) {
	srv := b.Start(t)
	ctx := context.Background()
	do := dirCaller(t, srv)
	const js, csv = "application/json", "text/csv"

	u := do("POST", "/v1/users", js, `{"username": "Ann", "display_name": "Ann A.", "email": "ann@example.com", "password": "ann-secret-1"}`, 201)
	if u["username"] != "ann" || u["has_password"] != true || u["disabled"] != false {
		t.Fatalf("created %v", u)
	}
	rec, err := srv.Store().User(ctx, "ann")
	if err != nil || !strings.HasPrefix(rec.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("stored hash %q: %v", rec.PasswordHash, err)
	}
	if ok, _ := directory.VerifyPassword(rec.PasswordHash, "ann-secret-1"); !ok {
		t.Fatal("stored hash does not verify the password")
	}
	do("POST", "/v1/users", js, `{"username": "ann"}`, 409)
	do("POST", "/v1/users", js, `{"username": "ann/../x"}`, 400)
	do("POST", "/v1/users", js, `{"username": "dan", "password": "short"}`, 400)
	do("POST", "/v1/users", js, `{"username": "dan", "password_hash": "$argon2id$..."}`, 400) // no way to plant a hash
	if _, err := srv.Store().User(ctx, "dan"); err == nil {
		t.Fatal("a refused create wrote dan")
	}

	// A CSV with bad rows is refused whole, with the lines.
	bad := do("POST", "/v1/users/import", csv, "username,email\nbob,bob@example.com\nbad name,\nann,\n", 400)
	problems, _ := bad["problems"].([]any)
	if len(problems) != 2 || problems[0].(map[string]any)["line"] != 3.0 || problems[1].(map[string]any)["line"] != 4.0 {
		t.Fatalf("problems: %v", bad)
	}
	if _, err := srv.Store().User(ctx, "bob"); err == nil {
		t.Fatal("a refused CSV wrote bob")
	}
	if got := do("POST", "/v1/users/import", csv, "username,email,password\nbob,bob@example.com,bob-secret-1\ncy,,\n", 201); got["imported"] != 2.0 {
		t.Fatalf("import: %v", got)
	}
	list := do("GET", "/v1/users?limit=2", "", "", 200)
	if us := list["users"].([]any); len(us) != 2 || us[0].(map[string]any)["username"] != "ann" {
		t.Fatalf("list: %v", list)
	}
	do("GET", "/v1/users?limit=0", "", "", 400)
	if d := do("PATCH", "/v1/users/ann", js, `{"disabled": true}`, 200); d["disabled"] != true || d["display_name"] != "Ann A." {
		t.Fatalf("disable: %v", d)
	}
	do("PATCH", "/v1/users/nobody", js, `{"disabled": true}`, 404)

	// Groups and members.
	do("POST", "/v1/groups", js, `{"name": "Sales", "description": "Sales team"}`, 201)
	do("POST", "/v1/groups", js, `{"name": "sales"}`, 409)
	do("POST", "/v1/groups/sales/members", js, `{"usernames": ["ann", "nobody"]}`, 404)
	if m := do("GET", "/v1/groups/sales/members", "", "", 200); len(m["members"].([]any)) != 0 {
		t.Fatalf("refused add wrote members: %v", m)
	}
	do("POST", "/v1/groups/sales/members", js, `{"usernames": ["ann"]}`, 200)
	bad = do("POST", "/v1/groups/sales/members/import", csv, "username\nbob\nnobody\n", 400)
	if problems, _ := bad["problems"].([]any); len(problems) != 1 || problems[0].(map[string]any)["line"] != 3.0 {
		t.Fatalf("member problems: %v", bad)
	}
	do("POST", "/v1/groups/sales/members/import", csv, "username\nbob\ncy\n", 200)
	m := do("GET", "/v1/groups/sales/members", "", "", 200)
	if got, _ := json.Marshal(m["members"]); string(got) != `["ann","bob","cy"]` {
		t.Fatalf("members: %s", got)
	}
	if ann := do("GET", "/v1/users/ann", "", "", 200); ann["groups"] == nil || ann["groups"].([]any)[0] != "sales" {
		t.Fatalf("ann's groups: %v", ann)
	}
	do("DELETE", "/v1/groups/sales/members/cy", "", "", 204)
	do("DELETE", "/v1/groups/sales/members/cy", "", "", 404)
	do("GET", "/v1/groups/sales", "", "", 200)
	do("GET", "/v1/groups", "", "", 200)
	do("DELETE", "/v1/groups/sales", "", "", 204)
	do("GET", "/v1/groups/sales/members", "", "", 404)
	if ann := do("GET", "/v1/users/ann", "", "", 200); ann["groups"] != nil {
		t.Fatalf("deleted group still listed: %v", ann)
	}
}

// dirCaller sends admin requests, checks each exchange against
// openapi.json and its status, and fails on any password or hash shown.
func dirCaller(t *testing.T, srv *servertest.Server) func(method, path, ctype, body string, want int) map[string]any {
	return func(method, path, ctype, body string, want int) map[string]any {
		t.Helper()
		st, data := conformingCall(t, srv, method, path, ctype, body)
		if st != want {
			t.Fatalf("%s %s = %d, want %d: %s", method, path, st, want, data)
		}
		if s := string(data); strings.Contains(s, "$argon2") || strings.Contains(s, `"password_hash":`) || strings.Contains(s, "ann-secret-1") {
			t.Fatalf("%s %s leaked a password or its hash: %s", method, path, s)
		}
		var out map[string]any
		if len(data) > 0 {
			if err := json.Unmarshal(data, &out); err != nil {
				t.Fatalf("%s %s: %s", method, path, data)
			}
		}
		return out
	}
}

// testPrimaryUser sets a device's primary user through the API and finds
// the device by its user and by the user's group.
func testPrimaryUser(t *testing.T, b servertest.Backend) {
	srv := b.Start(t)
	do := dirCaller(t, srv)
	const js = "application/json"
	dev := srv.EnrollOTA(t)
	srv.EnrollOTA(t) // a second device, without a user
	do("POST", "/v1/users", js, `{"username": "ann"}`, 201)
	do("POST", "/v1/groups", js, `{"name": "sales"}`, 201)
	do("POST", "/v1/groups/sales/members", js, `{"usernames": ["ann"]}`, 200)

	if d := do("GET", "/v1/devices/"+dev.UDID, "", "", 200); d["primary_user"] != nil {
		t.Fatalf("userless enrollment has a user: %v", d)
	}
	do("PUT", "/v1/devices/"+dev.UDID+"/user", js, `{"username": "nobody"}`, 404)
	do("PUT", "/v1/devices/NO-SUCH-DEVICE/user", js, `{"username": "ann"}`, 404)
	do("PUT", "/v1/devices/"+dev.UDID+"/user", js, `{"username": "Ann"}`, 200)
	if d := do("GET", "/v1/devices/"+dev.UDID, "", "", 200); d["primary_user"] != "ann" {
		t.Fatalf("device view: %v", d)
	}
	for _, q := range []string{"user=ann", "group=sales", "group=sales&limit=1"} {
		list := do("GET", "/v1/devices?"+q, "", "", 200)
		ds := list["devices"].([]any)
		if len(ds) != 1 || ds[0].(map[string]any)["id"] != dev.UDID || ds[0].(map[string]any)["primary_user"] != "ann" {
			t.Fatalf("devices?%s: %v", q, list)
		}
	}
	if all := do("GET", "/v1/devices", "", "", 200); len(all["devices"].([]any)) != 2 {
		t.Fatalf("all devices: %v", all)
	}
	do("GET", "/v1/devices?group=nope", "", "", 404)
	do("GET", "/v1/devices?user=ann&group=sales", "", "", 400)
	if list := do("GET", "/v1/devices?user=bob", "", "", 200); len(list["devices"].([]any)) != 0 {
		t.Fatalf("bob has devices: %v", list)
	}
	do("PUT", "/v1/devices/"+dev.UDID+"/user", js, `{"username": ""}`, 200)
	if list := do("GET", "/v1/devices?user=ann", "", "", 200); len(list["devices"].([]any)) != 0 {
		t.Fatalf("cleared, still listed: %v", list)
	}
}

package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
)

// testCategories drives device categories through the admin API of a
// running server on loopback TLS: the category routes, a device's category
// (set, moved, cleared, kept across a re-enrollment), the join of the
// category's group by the device's primary user, the ?category= filter, and
// refusals that write nothing.
func testCategories(t *testing.T, b servertest.Backend) {
	srv := b.Start(t)
	ctx := context.Background()
	do := dirCaller(t, srv)
	const js = "application/json"
	dev := srv.EnrollOTA(t)
	other := srv.EnrollOTA(t)
	do("POST", "/v1/users", js, `{"username": "ann"}`, 201)
	do("POST", "/v1/groups", js, `{"name": "kiosk-staff"}`, 201)

	// Refusals write nothing.
	do("POST", "/v1/categories", js, `{"name": "bad name"}`, 400)
	do("POST", "/v1/categories", js, `{"name": "`+strings.Repeat("k", 65)+`"}`, 400)
	do("POST", "/v1/categories", js, `{"name": "kiosk", "description": "`+strings.Repeat("d", 1025)+`"}`, 400)
	do("POST", "/v1/categories", js, `{"name": "kiosk", "group": "nosuch"}`, 404)
	do("POST", "/v1/categories", js, `{"name": "kiosk", "colour": "red"}`, 400)
	if l := do("GET", "/v1/categories", "", "", 200); len(l["categories"].([]any)) != 0 {
		t.Fatalf("refused creates wrote %v", l)
	}

	c := do("POST", "/v1/categories", js, `{"name": "Kiosk", "description": "Front desk iPads", "group": "kiosk-staff"}`, 201)
	if c["name"] != "kiosk" || c["group"] != "kiosk-staff" {
		t.Fatalf("created %v", c)
	}
	do("POST", "/v1/categories", js, `{"name": "kiosk"}`, 409)
	do("POST", "/v1/categories", js, `{"name": "lab", "description": "Lab Macs"}`, 201)
	if l := do("GET", "/v1/categories?limit=1", "", "", 200); len(l["categories"].([]any)) != 1 || l["categories"].([]any)[0].(map[string]any)["name"] != "kiosk" {
		t.Fatalf("first page: %v", l)
	}
	if l := do("GET", "/v1/categories?after=kiosk", "", "", 200); len(l["categories"].([]any)) != 1 || l["categories"].([]any)[0].(map[string]any)["name"] != "lab" {
		t.Fatalf("after kiosk: %v", l)
	}
	if g := do("PATCH", "/v1/categories/lab", js, `{"description": "Lab Macs, 2nd floor"}`, 200); g["description"] != "Lab Macs, 2nd floor" {
		t.Fatalf("patched %v", g)
	}
	do("PATCH", "/v1/categories/lab", js, `{"group": "nosuch"}`, 404)
	do("PATCH", "/v1/categories/nosuch", js, `{"description": "x"}`, 404)
	do("GET", "/v1/categories/lab", "", "", 200)
	do("GET", "/v1/categories/nosuch", "", "", 404)

	// A device's category, and the join of the category's group.
	do("PUT", "/v1/devices/"+dev.UDID+"/user", js, `{"username": "ann"}`, 200)
	do("PUT", "/v1/devices/"+dev.UDID+"/category", js, `{"category": "nosuch"}`, 404)
	do("PUT", "/v1/devices/NO-SUCH-DEVICE/category", js, `{"category": "kiosk"}`, 404)
	do("PUT", "/v1/devices/"+dev.UDID+"/category", js, `{"category": "bad name"}`, 400)
	if got, _ := srv.Store().DeviceCategory(ctx, dev.UDID); got != "" {
		t.Fatalf("a refused set wrote %q", got)
	}
	a := do("PUT", "/v1/devices/"+dev.UDID+"/category", js, `{"category": "Kiosk"}`, 200)
	if a["category"] != "kiosk" || a["joined_group"] != "kiosk-staff" {
		t.Fatalf("assignment %v", a)
	}
	if m, _ := srv.Store().GroupMembers(ctx, "kiosk-staff", "", 0); len(m) != 1 || m[0] != "ann" {
		t.Fatalf("kiosk-staff members: %v", m)
	}
	if d := do("GET", "/v1/devices/"+dev.UDID, "", "", 200); d["category"] != "kiosk" || d["primary_user"] != "ann" {
		t.Fatalf("device view: %v", d)
	}
	do("PUT", "/v1/devices/"+other.UDID+"/category", js, `{"category": "lab"}`, 200)
	for q, want := range map[string]string{"category=kiosk": dev.UDID, "category=LAB": other.UDID} {
		l := do("GET", "/v1/devices?"+q, "", "", 200)
		ds := l["devices"].([]any)
		if len(ds) != 1 || ds[0].(map[string]any)["id"] != want {
			t.Fatalf("devices?%s: %v", q, l)
		}
	}
	do("GET", "/v1/devices?category=nosuch", "", "", 404)
	do("GET", "/v1/devices?category=kiosk&user=ann", "", "", 400)
	if all := do("GET", "/v1/devices", "", "", 200); len(all["devices"].([]any)) != 2 || all["devices"].([]any)[0].(map[string]any)["category"] == nil {
		t.Fatalf("all devices: %v", all)
	}

	// Paging over the category's devices.
	do("PUT", "/v1/devices/"+other.UDID+"/category", js, `{"category": "kiosk"}`, 200)
	p1 := do("GET", "/v1/devices?category=kiosk&limit=1", "", "", 200)
	if len(p1["devices"].([]any)) != 1 || p1["next"] == "" {
		t.Fatalf("page 1: %v", p1)
	}
	p2 := do("GET", "/v1/devices?category=kiosk&limit=1&after="+p1["next"].(string), "", "", 200)
	if len(p2["devices"].([]any)) != 1 || p2["next"] != "" || p2["devices"].([]any)[0].(map[string]any)["id"] == p1["devices"].([]any)[0].(map[string]any)["id"] {
		t.Fatalf("page 2: %v", p2)
	}

	// The category outlives a re-enrollment of the same device.
	srv.Enroll(t, dev)
	if d := do("GET", "/v1/devices/"+dev.UDID, "", "", 200); d["category"] != "kiosk" {
		t.Fatalf("after re-enrollment: %v", d)
	}

	// Clearing, then deleting: devices are left in none, members stay.
	do("PUT", "/v1/devices/"+other.UDID+"/category", js, `{"category": ""}`, 200)
	if d := do("GET", "/v1/devices/"+other.UDID, "", "", 200); d["category"] != nil {
		t.Fatalf("cleared device: %v", d)
	}
	do("DELETE", "/v1/categories/kiosk", "", "", 204)
	do("DELETE", "/v1/categories/kiosk", "", "", 404)
	if d := do("GET", "/v1/devices/"+dev.UDID, "", "", 200); d["category"] != nil {
		t.Fatalf("device of a deleted category: %v", d)
	}
	if m, _ := srv.Store().GroupMembers(ctx, "kiosk-staff", "", 0); len(m) != 1 {
		t.Fatalf("deleting the category changed the group: %v", m)
	}
}

// testCategoryJoinOnUser: a device put in a category before it has a
// primary user joins the category's group once an admin sets the user.
func testCategoryJoinOnUser(t *testing.T, b servertest.Backend) {
	srv := b.Start(t)
	do := dirCaller(t, srv)
	const js = "application/json"
	dev := srv.EnrollOTA(t)
	do("POST", "/v1/users", js, `{"username": "bob"}`, 201)
	do("POST", "/v1/groups", js, `{"name": "lab-users"}`, 201)
	do("POST", "/v1/categories", js, `{"name": "lab", "group": "lab-users"}`, 201)
	if a := do("PUT", "/v1/devices/"+dev.UDID+"/category", js, `{"category": "lab"}`, 200); a["joined_group"] != nil {
		t.Fatalf("userless device joined: %v", a)
	}
	if m := do("GET", "/v1/groups/lab-users/members", "", "", 200); len(m["members"].([]any)) != 0 {
		t.Fatalf("members before a user: %v", m)
	}
	do("PUT", "/v1/devices/"+dev.UDID+"/user", js, `{"username": "bob"}`, 200)
	if m := do("GET", "/v1/groups/lab-users/members", "", "", 200); len(m["members"].([]any)) != 1 || m["members"].([]any)[0] != "bob" {
		t.Fatalf("members after the user was set: %v", m)
	}
}

package console_test

import (
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/storage"
)

// TestDashboardCounts: the dashboard shows the fleet's counts by platform,
// OS version and last check-in, keeps them for a minute (saying when they
// were counted) and counts again after that.
func TestDashboardCounts(t *testing.T) {
	var skew atomic.Int64
	srv := start(t, func(cfg *server.Config) {
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	seed(t, srv.Store(), 3)
	c := newClient(t, srv)
	if st, _ := c.signIn("olga", ownerPW); st != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", st)
	}
	cell := func(body, row string) string {
		m := regexp.MustCompile(`<tr><(?:td|th scope="row")>` + regexp.QuoteMeta(row) + `</(?:td|th)><td>(\d+)</td></tr>`).FindStringSubmatch(body)
		if m == nil {
			return "missing"
		}
		return m[1]
	}
	check := func(want string) {
		t.Helper()
		st, body := c.get("/console/")
		if st != http.StatusOK {
			t.Fatalf("dashboard: %d", st)
		}
		for _, row := range []string{"iOS", "iOS 18.1", "within an hour"} {
			if got := cell(body, row); got != want {
				t.Errorf("row %q = %s, want %s", row, got, want)
			}
		}
		if got := cell(body, "never"); got != "0" {
			t.Errorf("never = %s", got)
		}
		if !regexp.MustCompile(`<p class="big">`+want+`</p>`).MatchString(body) || !regexp.MustCompile(`Counted [^<]+\.`).MatchString(body) {
			t.Errorf("enrolled count or its time missing, want %s", want)
		}
	}
	check("3")
	// A fourth device: its enrollment and inventory.
	const id = "00008030-0000000000000004"
	ctx := t.Context()
	if err := srv.Store().UpdateEnrollment(ctx, id, &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, LastSeen: time.Now()},
		func(*storage.Enrollment) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store().UpdateInventory(ctx, id, func(inv *storage.DeviceInventory) error {
		inv.Platform, inv.OSVersion = "iOS", "18.1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check("3") // the snapshot, within its minute
	skew.Add(int64(2 * time.Minute))
	check("4")
}

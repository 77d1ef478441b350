package console_test

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/server"
)

var benchDevices = flag.Int("console.devices", 100_000, "devices BenchmarkDeviceList seeds")

// BenchmarkDeviceList measures the console of a signed-in admin over
// loopback TLS, on a real bbolt file with -console.devices (100,000)
// seeded devices: the devices page (first page, a page deep in the list,
// searches that match few devices, which must look at the whole fleet to
// know there are no more, and the devices of one user) and the dashboard
// with its counts recomputed every time (the clock moves past their
// snapshot before each request).
func BenchmarkDeviceList(b *testing.B) {
	var skew atomic.Int64 // nanoseconds the server's clock is ahead
	srv := start(b, func(cfg *server.Config) {
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	ids := seed(b, srv.Store(), *benchDevices)
	if st := srv.API(b, "POST", "/v1/users", map[string]string{"username": "ulla"}, nil); st != http.StatusCreated {
		b.Fatalf("create user: %d", st)
	}
	for _, id := range []string{ids[7], ids[len(ids)/2], ids[len(ids)-1]} {
		if st := srv.API(b, "PUT", "/v1/devices/"+id+"/user", map[string]string{"username": "ulla"}, nil); st != http.StatusOK {
			b.Fatalf("set primary user: %d", st)
		}
	}
	c := newClient(b, srv)
	if st, _ := c.signIn("olga", ownerPW); st != http.StatusSeeOther {
		b.Fatalf("sign-in: %d", st)
	}
	mid := ids[len(ids)/2]
	last := ids[len(ids)-1]
	n := len(ids)
	serial := fmt.Sprintf("SER%07d", n-1)[:9] // the last ten serials
	namePart := fmt.Sprintf("ice %04d", n-1)  // one device's name
	for _, bc := range []struct {
		name, path, want string
		cold             bool
	}{
		{"first-page", "/console/devices", "Device 0000", false},
		{"middle-page", "/console/devices?after=" + url.QueryEscape(mid), ">Device ", false},
		{"search-udid", "/console/devices?q=" + url.QueryEscape(strings.ToLower(last)), last, false},
		{"search-serial-prefix", "/console/devices?q=" + serial, last, false},
		{"search-name-part", "/console/devices?q=" + url.QueryEscape(namePart), "Dev" + namePart, false},
		{"by-user", "/console/devices?user=ulla", last, false},
		{"dashboard", "/console/", "Counted", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if bc.cold {
					b.StopTimer()
					skew.Add(int64(2 * time.Minute))
					b.StartTimer()
				}
				st, body := c.get(bc.path)
				if st != http.StatusOK || !strings.Contains(body, bc.want) {
					b.Fatalf("%s: %d", bc.path, st)
				}
			}
		})
	}
}

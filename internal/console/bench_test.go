package console_test

import (
	"flag"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

var benchDevices = flag.Int("console.devices", 100_000, "devices BenchmarkDeviceList seeds")

// BenchmarkDeviceList measures the devices page of a signed-in admin over
// loopback TLS, on a real bbolt file with -console.devices (100,000)
// seeded devices: the first page, a page deep in the list, and a search
// that matches one device (the worst case: it reads every inventory
// record until the page is full or the list ends).
func BenchmarkDeviceList(b *testing.B) {
	srv := start(b)
	ids := seed(b, srv.Store(), *benchDevices)
	c := newClient(b, srv)
	if st, _ := c.signIn("olga", ownerPW); st != http.StatusSeeOther {
		b.Fatalf("sign-in: %d", st)
	}
	mid := ids[len(ids)/2]
	last := strings.TrimPrefix(ids[len(ids)-1], "")
	for _, bc := range []struct{ name, path, want string }{
		{"first-page", "/console/devices", "Device 0000"},
		{"middle-page", "/console/devices?after=" + url.QueryEscape(mid), ">Device "},
		{"search-one", "/console/devices?q=" + url.QueryEscape(last), last},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				st, body := c.get(bc.path)
				if st != http.StatusOK || !strings.Contains(body, bc.want) {
					b.Fatalf("%s: %d", bc.path, st)
				}
			}
		})
	}
}

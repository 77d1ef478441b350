package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// testConsoleLockRoundTrip: an owner signs in to the console, locks an
// enrolled device from its page, the device fetches and acknowledges the
// lock, and the device page's history shows it answered; on every backend.
func testConsoleLockRoundTrip(t *testing.T, backend servertest.Backend) {
	s := backend.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	if code := s.API(t, "POST", "/v1/admins", map[string]any{"username": "olga", "role": "owner", "password": "olga-long-password"}, nil); code != http.StatusCreated {
		t.Fatalf("create admin = %d", code)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: s.Client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	token := func(path string) string {
		t.Helper()
		_, body := do("GET", path, nil)
		const mark = `name="csrf" value="`
		i := strings.Index(body, mark)
		if i < 0 {
			t.Fatalf("no form token on %s", path)
		}
		rest := body[i+len(mark):]
		return rest[:strings.IndexByte(rest, '"')]
	}
	if st, _ := do("POST", "/console/sign-in", url.Values{"username": {"olga"}, "password": {"olga-long-password"}, "csrf": {token("/console/sign-in")}}); st != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", st)
	}
	page := "/console/devices/" + dev.UDID
	if st, _ := do("POST", page+"/actions/lock", url.Values{"message": {"Call IT"}, "csrf": {token(page)}}); st != http.StatusSeeOther {
		t.Fatalf("lock = %d", st)
	}
	var locked bool
	if _, err := dev.Drain(context.Background(), func(cmd *simdevice.Command) (string, map[string]any) {
		locked = locked || cmd.RequestType == "DeviceLock"
		return dev.Answer(cmd)
	}); err != nil {
		t.Fatal(err)
	}
	if !locked {
		t.Fatal("the device never got the lock")
	}
	st, body := do("GET", page, nil)
	i := strings.Index(body, `id="history"`)
	if st != http.StatusOK || i < 0 {
		t.Fatalf("device page = %d", st)
	}
	if hist := body[i:]; !strings.Contains(hist, "<td>DeviceLock</td><td>Acknowledged") {
		t.Fatalf("history does not show the answered lock: %s", hist[:min(len(hist), 1500)])
	}
}

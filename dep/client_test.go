package dep_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/dep/deptest"
)

func newClient(t *testing.T, n int) (*dep.Client, *deptest.Server, *deptest.Clock, *dep.Counters) {
	tok := deptest.NewToken()
	fake := deptest.NewServer(t, tok, n)
	clk := deptest.NewClock(start)
	m := dep.NewCounters()
	c, err := dep.NewClient(dep.Credentials{ConsumerKey: tok.ConsumerKey, ConsumerSecret: tok.ConsumerSecret,
		AccessToken: tok.AccessToken, AccessSecret: tok.AccessSecret},
		dep.WithBaseURL(fake.URL), dep.WithClock(clk), dep.WithLogger(quietLogger()), dep.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	return c, fake, clk, m
}

func TestClientSessionIsReusedAndRenewed(t *testing.T) {
	c, fake, _, _ := newClient(t, 3)
	ctx := context.Background()
	for range 3 {
		if _, err := c.Account(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if fake.Sessions() != 1 {
		t.Fatalf("sessions = %d, want 1 reused session", fake.Sessions())
	}
	fake.ExpireSessions()
	a, err := c.Account(ctx)
	if err != nil || a.ServerName == "" {
		t.Fatalf("after session expiry: %v", err)
	}
	if fake.Sessions() != 2 {
		t.Fatalf("sessions = %d, want a new one after 401", fake.Sessions())
	}
}

func TestClientBadSignatureIsTokenRejected(t *testing.T) {
	tok := deptest.NewToken()
	fake := deptest.NewServer(t, tok, 1)
	tok.AccessSecret = "wrong"
	c, err := dep.NewClient(dep.Credentials{ConsumerKey: tok.ConsumerKey, ConsumerSecret: tok.ConsumerSecret,
		AccessToken: tok.AccessToken, AccessSecret: tok.AccessSecret}, dep.WithBaseURL(fake.URL), dep.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Account(context.Background())
	var apiErr *dep.APIError
	if !errors.Is(err, dep.ErrTokenRejected) || !errors.As(err, &apiErr) || apiErr.Code != "oauth_problem=signature_invalid" {
		t.Fatalf("err = %v", err)
	}
}

func TestClientHonoursThrottling(t *testing.T) {
	tests := []struct {
		name  string
		fault deptest.Fault
		want  time.Duration
	}{
		{"429 Retry-After", deptest.Fault{Status: 429, Body: "TOO_MANY_REQUESTS", RetryAfter: "7"}, 7 * time.Second},
		{"503 Retry-After", deptest.Fault{Status: 503, Body: "SERVICE_UNAVAILABLE", RetryAfter: "3"}, 3 * time.Second},
		{"THROTTLED retry_after_seconds", deptest.Fault{Status: 400, Body: `{"code":"THROTTLED","retry_after_seconds":9}`}, 9 * time.Second},
		{"503 without hint backs off", deptest.Fault{Status: 503, Body: "SERVICE_UNAVAILABLE"}, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, fake, clk, m := newClient(t, 5)
			fake.Inject("POST /server/devices", tc.fault)
			page, err := c.FetchDevices(context.Background(), "", 100)
			if err != nil || len(page.Devices) != 5 {
				t.Fatalf("fetch after throttle: %v", err)
			}
			if s := clk.Sleeps(); len(s) != 1 || s[0] != tc.want {
				t.Fatalf("waited %v, want [%v]", s, tc.want)
			}
			if m.Get("Throttles", "server/devices") != 1 {
				t.Fatalf("throttle not counted: %+v", m.Throttles)
			}
		})
	}
}

func TestClientGivesUpOnLongThrottle(t *testing.T) {
	c, fake, clk, m := newClient(t, 5)
	fake.Inject("POST /devices/sync", deptest.Fault{Status: 429, RetryAfter: "3600"})
	_, err := c.SyncDevices(context.Background(), "S.0.0", 100)
	var apiErr *dep.APIError
	if !errors.Is(err, dep.ErrThrottled) || !errors.As(err, &apiErr) || apiErr.RetryAfter != time.Hour {
		t.Fatalf("err = %v", err)
	}
	if len(clk.Sleeps()) != 0 {
		t.Fatalf("slept %v on an hour-long Retry-After", clk.Sleeps())
	}
	if m.Get("APIErrors", "devices/sync 429") != 1 {
		t.Fatalf("failure not counted: %+v", m.APIErrors)
	}
}

func TestClientCursorErrors(t *testing.T) {
	c, fake, _, _ := newClient(t, 5)
	ctx := context.Background()
	page, err := c.FetchDevices(ctx, "", 2)
	if err != nil || !page.MoreToFollow {
		t.Fatalf("fetch: %v", err)
	}
	fake.ExpireCursors()
	for _, cur := range []string{page.Cursor, "garbage"} {
		if _, err := c.SyncDevices(ctx, cur, 10); !errors.Is(err, dep.ErrCursor) {
			t.Fatalf("cursor %q: %v", cur, err)
		}
	}
}

func TestClientBatchLimit(t *testing.T) {
	c, _, _, _ := newClient(t, 1)
	if _, err := c.AssignProfile(context.Background(), "X", make([]string, dep.MaxBatch+1)); err == nil {
		t.Fatal("sent more than MaxBatch serials")
	}
}

func TestClientProfileAndDeviceCalls(t *testing.T) {
	c, fake, _, _ := newClient(t, 3)
	ctx := context.Background()
	uuid, _, err := c.DefineProfile(ctx, &dep.Profile{ProfileName: "P", URL: "https://x/enroll", SkipSetupItems: []string{"Siri"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.GetProfile(ctx, uuid)
	if err != nil || p.ProfileName != "P" || p.ProfileUUID != uuid || len(p.SkipSetupItems) != 1 {
		t.Fatalf("get profile: %+v %v", p, err)
	}
	if _, _, err := c.DefineProfile(ctx, &dep.Profile{ProfileName: "no url"}); err == nil || !strings.Contains(err.Error(), "CONFIG_URL_REQUIRED") {
		t.Fatalf("profile without url: %v", err)
	}
	s0, s1 := deptest.Serial(0), deptest.Serial(1)
	res, err := c.AssignProfile(ctx, uuid, []string{s0, "UNKNOWN"})
	if err != nil || res[s0] != "SUCCESS" || res["UNKNOWN"] != "NOT_ACCESSIBLE" || fake.AssignedProfile(s0) != uuid {
		t.Fatalf("assign: %v %v", res, err)
	}
	details, err := c.DeviceDetails(ctx, []string{s0, "UNKNOWN"})
	if err != nil || details[s0].ProfileUUID != uuid || details[s0].ResponseStatus != "SUCCESS" || details["UNKNOWN"].ResponseStatus != "NOT_ACCESSIBLE" {
		t.Fatalf("details: %+v %v", details, err)
	}
	if res, err := c.RemoveProfile(ctx, []string{s0}); err != nil || res[s0] != "SUCCESS" || fake.AssignedProfile(s0) != "" {
		t.Fatalf("remove: %v %v", res, err)
	}
	if res, err := c.Disown(ctx, []string{s1}); err != nil || res[s1] != "SUCCESS" {
		t.Fatalf("disown: %v %v", res, err)
	}
	page, err := c.FetchDevices(ctx, "", 100)
	if err != nil || len(page.Devices) != 2 {
		t.Fatalf("after disown: %d devices %v", len(page.Devices), err)
	}
}

package server_test

import (
	"context"
	"crypto/rsa"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/storage"
)

// testClock is the server's injected clock; tests move it by days.
type testClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.at = t
	c.mu.Unlock()
}

const day = 24 * time.Hour

type deviceRenewalView struct {
	CertNotAfter time.Time `json:"identity_cert_not_after"`
	Renewal      struct {
		State       string `json:"state"`
		Reason      string `json:"reason"`
		CommandUUID string `json:"command_uuid"`
	} `json:"identity_renewal"`
}

func renewalOf(t *testing.T, s *servertest.Server, id string) deviceRenewalView {
	t.Helper()
	var v deviceRenewalView
	if code := s.API(t, "GET", "/v1/devices/"+id, nil, &v); code != http.StatusOK {
		t.Fatalf("GET /v1/devices/%s = %d", id, code)
	}
	return v
}

// Issue #19 section 1: a device at day 340 is sent a fresh enrollment
// profile, enrolls a new key by SCEP, and its Authenticate with the new
// certificate re-binds the enrollment: the command queued before the
// renewal is delivered, nothing is superseded, the old certificate is
// refused from then on, and the device still works at day 400. A device
// that never answers is refused with 403 after its certificate expires; one
// that refuses the profile shows the reason.
func testIdentityRenewal(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Second)
	clock := &testClock{at: start}
	logs := &lockedBuffer{}
	s := b.Start(t, func(c *server.Config) {
		c.Now = clock.Now
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})

	dev := s.EnrollOTA(t)
	silent := s.EnrollOTA(t)
	refuser := s.EnrollOTA(t)
	for _, d := range []*simdevice.Device{dev, silent, refuser} {
		d.NoSigningTime = true // the server's clock runs a year ahead
	}
	if v := renewalOf(t, s, dev.UDID); v.Renewal.State != "none" || !v.CertNotAfter.After(start.Add(360*day)) {
		t.Fatalf("fresh device: renewal %q, cert not after %v", v.Renewal.State, v.CertNotAfter)
	}
	before, err := s.Store().Enrollment(ctx, dev.UDID)
	if err != nil {
		t.Fatal(err)
	}
	oldDev := *dev // keeps the first identity

	// Day 300: nothing due yet (30 days before expiry by default).
	clock.set(start.Add(300 * day))
	if err := s.RenewIdentities(ctx); err != nil {
		t.Fatal(err)
	}
	if v := renewalOf(t, s, dev.UDID); v.Renewal.State != "none" {
		t.Fatalf("day 300: renewal %q, want none", v.Renewal.State)
	}

	clock.set(start.Add(340 * day))
	if err := s.RenewIdentities(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*simdevice.Device{dev, silent, refuser} {
		if v := renewalOf(t, s, d.UDID); v.Renewal.State != storage.RenewalQueued {
			t.Fatalf("day 340: %s renewal %q, want queued", d.UDID, v.Renewal.State)
		}
	}
	if m := string(s.Get(t, "/metrics")); !strings.Contains(m, "orchard_identity_certs_expiring_soon 3") {
		t.Error("metrics: want orchard_identity_certs_expiring_soon 3")
	}
	// A second scan queues nothing more.
	if err := s.RenewIdentities(ctx); err != nil {
		t.Fatal(err)
	}
	queuedAfter := send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"})

	var installErr error
	answered, err := dev.Drain(ctx, dev.RenewingAnswerer(ctx, func() *rsa.PrivateKey { return mustKey(t) }, &installErr))
	if err != nil || installErr != nil {
		t.Fatalf("drain at day 340: %v (install: %v)", err, installErr)
	}
	var types []string
	for _, c := range answered {
		types = append(types, c.RequestType)
	}
	if !strings.Contains(strings.Join(types, ","), "InstallProfile,ProfileList") || strings.Count(strings.Join(types, ","), "InstallProfile") != 1 {
		t.Fatalf("day 340 delivered %v, want the renewal profile then the command queued before the renewal", types)
	}
	if dev.Cert.Equal(oldDev.Cert) {
		t.Fatal("device did not take a new certificate")
	}
	var cv commandView
	s.API(t, "GET", "/v1/commands/"+queuedAfter.CommandUUID, nil, &cv)
	if len(cv.Targets) != 1 || cv.Targets[0].Status != "Acknowledged" {
		t.Fatalf("command queued before the renewal: %+v, want Acknowledged (not Superseded)", cv.Targets)
	}
	after, err := s.Store().Enrollment(ctx, dev.UDID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation || !after.EnrolledAt.Equal(before.EnrolledAt) || after.EnrollmentMethod != before.EnrollmentMethod {
		t.Errorf("renewal started a new enrollment: generation %d->%d, enrolled at %v->%v, method %q->%q",
			before.Generation, after.Generation, before.EnrolledAt, after.EnrolledAt, before.EnrollmentMethod, after.EnrollmentMethod)
	}
	v := renewalOf(t, s, dev.UDID)
	if v.Renewal.State != storage.RenewalInstalled || !v.CertNotAfter.After(start.Add(700*day)) {
		t.Fatalf("after renewal: state %q, cert not after %v", v.Renewal.State, v.CertNotAfter)
	}
	// The renewed Authenticate sent again (its answer was lost) changes nothing.
	pending := send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"})
	if err := dev.Authenticate(ctx); err != nil {
		t.Fatalf("renewed Authenticate sent again: %v", err)
	}
	if e, err := s.Store().Enrollment(ctx, dev.UDID); err != nil || e.Generation != before.Generation {
		t.Fatalf("renewed Authenticate sent again started a new enrollment: %+v, %v", e, err)
	}
	if cmds, err := dev.Drain(ctx, nil); err != nil || len(cmds) != 1 || cmds[0].UUID != pending.CommandUUID {
		t.Fatalf("after the repeated Authenticate: %+v, %v; want the pending command", cmds, err)
	}
	// The old certificate stopped working with the first request of the new one.
	if _, err := oldDev.Idle(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("old certificate after the renewal: %v, want 403", err)
	}
	if err := oldDev.Authenticate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("old certificate's Authenticate after the renewal: %v, want 403", err)
	}

	// The refuser answers the profile with an error.
	if _, err := refuser.Drain(ctx, func(c *simdevice.Command) (string, map[string]any) {
		if c.RequestType == "InstallProfile" {
			return "Error", map[string]any{"ErrorChain": []map[string]any{{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain", "USEnglishDescription": "The user declined"}}}
		}
		return refuser.Answer(c)
	}); err != nil {
		t.Fatal(err)
	}
	if v := renewalOf(t, s, refuser.UDID); v.Renewal.State != storage.RenewalFailed || !strings.Contains(v.Renewal.Reason, "MCProfileErrorDomain") {
		t.Fatalf("refused profile: renewal %+v, want failed naming the error", v.Renewal)
	}

	// Day 400: the renewed device works; the silent one is locked out with
	// 403 (never 401, which can make a device unenroll itself).
	clock.set(start.Add(400 * day))
	if _, err := dev.Drain(ctx, nil); err != nil {
		t.Fatalf("renewed device at day 400: %v", err)
	}
	if err := dev.TokenUpdate(ctx); err != nil {
		t.Fatalf("renewed device's TokenUpdate at day 400: %v", err)
	}
	_, err = silent.Idle(ctx)
	if statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired, never renewed device at day 400: %v, want 403 naming the expiry", err)
	}
	if err := s.RenewIdentities(ctx); err != nil {
		t.Fatal(err)
	}
	if v := renewalOf(t, s, silent.UDID); v.Renewal.State != storage.RenewalFailed || !strings.Contains(v.Renewal.Reason, "expired") {
		t.Fatalf("silent device at day 400: renewal %+v, want failed (expired)", v.Renewal)
	}
	if l := logs.String(); !strings.Contains(l, "identity renewals failed") || !strings.Contains(l, silent.UDID) || !strings.Contains(l, refuser.UDID) {
		t.Errorf("no daily warning naming the failed renewals of %s and %s", silent.UDID, refuser.UDID)
	}
	if v := renewalOf(t, s, dev.UDID); v.Renewal.State != storage.RenewalInstalled {
		t.Fatalf("renewed device at day 400: renewal %q, want installed", v.Renewal.State)
	}
}

// A re-enrollment certificate is a renewal of one enrollment only: issued
// for another device, or for a certificate the device is no longer bound
// to, its Authenticate is refused and the bound enrollment stays.
func testRenewalIsNoTakeover(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t)
	victim := s.NewDevice(t)
	s.Enroll(t, victim)
	other := s.NewDevice(t)
	s.Enroll(t, other)
	bound, err := s.Store().Enrollment(ctx, victim.UDID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		auth storage.CertAuthorization
	}{
		{"bound to another device", storage.CertAuthorization{Kind: storage.KindReenroll, ForUDID: other.UDID, RenewalOf: bound.CertHash}},
		{"renews another certificate", storage.CertAuthorization{Kind: storage.KindReenroll, ForUDID: victim.UDID, RenewalOf: strings.Repeat("ab", 32)}},
	} {
		d := *victim
		d.Cert, d.Key = s.IssueCert(t, tc.auth)
		if err := d.Authenticate(ctx); statusOf(err) != http.StatusForbidden {
			t.Errorf("%s: Authenticate = %v, want 403", tc.name, err)
		}
	}
	if e, err := s.Store().Enrollment(ctx, victim.UDID); err != nil || e.CertHash != bound.CertHash || e.Generation != bound.Generation {
		t.Fatalf("victim after refused renewals: %+v, %v", e, err)
	}
	if _, err := victim.Idle(ctx); err != nil {
		t.Fatalf("victim's own certificate after refused renewals: %v", err)
	}
}

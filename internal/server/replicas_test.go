package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// at points the device's next connects at replica r.
func at(dev *simdevice.Device, r *servertest.Server) {
	dev.ServerURL, dev.CheckinURL = r.URL+"/mdm/connect", r.URL+"/mdm/checkin"
}

// Consecutive connects of one device land on different replicas (no
// stickiness behind the proxy): every queued command is offered in queue
// order, each result is stored once, and a result repeated at the other
// replica changes nothing.
func TestReplicasDeliverOnceInOrder(t *testing.T) {
	ctx := context.Background()
	rs := servertest.StartReplicas(t, 2)
	a, b := rs[0], rs[1]
	dev := a.NewDevice(t)
	a.Enroll(t, dev)
	var uuids []string
	for i, rt := range []string{"SecurityInfo", "ProfileList", "CertificateList", "InstalledApplicationList", "ProvisioningProfileList", "DeviceInformation"} {
		req := map[string]any{"targets": []string{dev.UDID}, "request_type": rt}
		if rt == "DeviceInformation" {
			req["payload"] = map[string]any{"Queries": []string{"DeviceName"}}
		}
		uuids = append(uuids, send(t, rs[i%2], req).CommandUUID) // enqueued at both replicas, interleaved
	}
	at(dev, b)
	cmd, err := dev.Idle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range uuids {
		if cmd == nil || cmd.UUID != want {
			t.Fatalf("connect %d: got %+v, want %s", i, cmd, want)
		}
		at(dev, rs[i%2]) // the result goes to the other replica than the offer
		next, err := dev.Report(ctx, "Acknowledged", cmd.UUID, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The same result again, at the replica that did not store it.
		at(dev, rs[(i+1)%2])
		again, err := dev.Report(ctx, "Acknowledged", cmd.UUID, nil)
		if err != nil {
			t.Fatalf("repeated result at the other replica: %v", err)
		}
		if (next == nil) != (again == nil) || next != nil && next.UUID != again.UUID {
			t.Fatalf("replicas disagree on the next command: %+v vs %+v", next, again)
		}
		cmd = next
	}
	if cmd != nil {
		t.Fatalf("queue should be empty, got %+v", cmd)
	}
	for _, r := range rs {
		at(dev, r)
		if c, err := dev.Idle(ctx); err != nil || c != nil {
			t.Fatalf("Idle at %s after the queue drained: %+v %v", r.URL, c, err)
		}
	}
	for _, u := range uuids {
		res, err := b.Store().Results(ctx, u)
		if err != nil || len(res) != 1 {
			t.Fatalf("%s: %d results stored (%v), want 1", u, len(res), err)
		}
	}
}

// A device that sends one result to both replicas at once (a retried
// request the proxy sent twice): one result is stored, and both replicas
// answer with the next command in order.
func TestReplicasConcurrentResultStoredOnce(t *testing.T) {
	ctx := context.Background()
	rs := servertest.StartReplicas(t, 2)
	dev := rs[0].NewDevice(t)
	rs[0].Enroll(t, dev)
	const n = 5
	var uuids []string
	for i := range n {
		uuids = append(uuids, send(t, rs[i%2], map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"}).CommandUUID)
	}
	cmd, err := dev.Idle(ctx)
	if err != nil || cmd == nil || cmd.UUID != uuids[0] {
		t.Fatalf("first: %+v %v", cmd, err)
	}
	for i := range n {
		var wg sync.WaitGroup
		nexts := make([]*simdevice.Command, 2)
		errs := make([]error, 2)
		for j, r := range rs {
			d := *dev
			at(&d, r)
			wg.Go(func() { nexts[j], errs[j] = d.Report(ctx, "Acknowledged", uuids[i], nil) })
		}
		wg.Wait()
		for j := range rs {
			if errs[j] != nil {
				t.Fatalf("result %d at replica %d: %v", i, j, errs[j])
			}
			if i+1 < n && (nexts[j] == nil || nexts[j].UUID != uuids[i+1]) || i+1 == n && nexts[j] != nil {
				t.Fatalf("after result %d, replica %d offered %+v", i, j, nexts[j])
			}
		}
	}
	for _, u := range uuids {
		if res, err := rs[1].Store().Results(ctx, u); err != nil || len(res) != 1 {
			t.Fatalf("%s: %d results stored (%v), want 1", u, len(res), err)
		}
	}
}

// One enrollment profile's single-use challenge, presented at both
// replicas' SCEP at once: exactly one certificate is issued.
func TestReplicasChallengeSingleUse(t *testing.T) {
	ctx := context.Background()
	rs := servertest.StartReplicas(t, 2)
	ps, err := simdevice.ReadProfile(rs[0].Get(t, "/v1/enrollment/profile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ps.SCEPURL, rs[0].URL) {
		t.Fatalf("SCEP URL %q is not the first replica's", ps.SCEPURL)
	}
	for round := range 3 {
		if round > 0 {
			if ps, err = simdevice.ReadProfile(rs[0].Get(t, "/v1/enrollment/profile")); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, len(rs))
		for j, r := range rs {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			mine := *ps
			mine.SCEPURL = r.URL + strings.TrimPrefix(ps.SCEPURL, rs[0].URL)
			dev := &simdevice.Device{UDID: fmt.Sprintf("REPLICA-%d-%d", round, j)}
			wg.Go(func() { errs[j] = dev.EnrollWith(ctx, &mine, key, rs[0].Client) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d enrollments succeeded with one challenge (%v)", round, ok, errs)
		}
	}
}

// eventually polls cond until it holds; coherence is asynchronous (a
// notification), so the test waits for the effect rather than timing it.
// docs/postgres.md gives the measured delay.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not seen after 30 s", what)
}

// A certificate revoked through one replica is refused by the other, which
// had its issuance record and binding cached.
func TestReplicasRevocationReachesEveryReplica(t *testing.T) {
	ctx := context.Background()
	rs := servertest.StartReplicas(t, 2)
	a, b := rs[0], rs[1]
	dev := a.NewDevice(t)
	a.Enroll(t, dev)
	at(dev, b)
	if _, err := dev.Idle(ctx); err != nil { // B caches the record and binding
		t.Fatal(err)
	}
	serial := fmt.Sprintf("%x", dev.Cert.SerialNumber)
	if code := a.API(t, "POST", "/v1/certificates/"+serial+"/revoke", nil, nil); code/100 != 2 {
		t.Fatalf("revoke = %d", code)
	}
	eventually(t, "revoked certificate refused by the other replica", func() bool {
		_, err := dev.Idle(ctx)
		return statusOf(err) == http.StatusForbidden
	})
}

// An admin release on one replica lets a new certificate take the device
// over at the other, after which the first replica, which had the old
// binding cached, refuses the old certificate.
func TestReplicasReleaseAndTakeover(t *testing.T) {
	ctx := context.Background()
	rs := servertest.StartReplicas(t, 2)
	a, b := rs[0], rs[1]
	victim := a.NewDevice(t)
	a.Enroll(t, victim)
	for _, r := range rs { // both replicas cache the old binding
		at(victim, r)
		if _, err := victim.Idle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wiped := a.NewDevice(t)
	wiped.UDID, wiped.SerialNumber = victim.UDID, victim.SerialNumber
	at(wiped, b)
	if err := wiped.Authenticate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("takeover before release: %v, want 403", err)
	}
	if code := a.API(t, "POST", "/v1/devices/"+victim.UDID+"/release", nil, nil); code != http.StatusOK {
		t.Fatalf("release = %d", code)
	}
	if err := wiped.Authenticate(ctx); err != nil {
		t.Fatalf("takeover at the other replica after release: %v", err)
	}
	if err := wiped.TokenUpdate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		at(victim, r)
		eventually(t, "old certificate refused at "+r.URL, func() bool {
			_, err := victim.Idle(ctx)
			return statusOf(err) == http.StatusForbidden
		})
	}
	at(wiped, a)
	if _, err := wiped.Idle(ctx); err != nil {
		t.Fatalf("new certificate at the first replica: %v", err)
	}
}

// A push certificate renewed through one replica is the one the other
// pushes with. The other replica's fake APNs is not told to trust the new
// certificate, so its pushes being refused as BadCertificate (where the
// old certificate's were accepted) shows it presents the new one.
func TestReplicasPushCertificateReplaced(t *testing.T) {
	rs := servertest.StartReplicas(t, 2)
	a, b := rs[0], rs[1]
	dev := a.NewDevice(t)
	a.Enroll(t, dev)
	renewed, err := apnstest.NewPushCert(apnstest.WithTopic(servertest.PushTopic))
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"cert_pem": string(renewed.CertPEM), "key_pem": string(renewed.KeyPEM)}
	if code := a.API(t, http.MethodPut, "/v1/push-certificate", body, nil); code != http.StatusOK {
		t.Fatalf("upload the renewed push certificate: %d", code)
	}
	serial := renewed.Leaf.SerialNumber.Text(16)
	eventually(t, "the other replica's push certificate replaced", func() bool {
		var info struct {
			Serial string `json:"serial"`
		}
		return b.API(t, "GET", "/v1/push-certificate", nil, &info) == http.StatusOK && info.Serial == serial
	})
	b.FakeAPNs.Reset()
	send(t, b, map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"})
	eventually(t, "a push with the renewed certificate", func() bool {
		ps := b.FakeAPNs.Pushes()
		return len(ps) > 0 && ps[0].Reason == "BadCertificate"
	})
	for _, p := range b.FakeAPNs.Pushes() {
		if p.Reason != "BadCertificate" {
			t.Fatalf("a push with the old certificate after the renewal: %+v", p)
		}
	}
}

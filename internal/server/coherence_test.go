package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// delays summarises measured delays for the log.
func delays(ds []time.Duration) string {
	slices.Sort(ds)
	return fmt.Sprintf("n=%d min=%v median=%v max=%v", len(ds), ds[0].Round(time.Microsecond),
		ds[len(ds)/2].Round(time.Microsecond), ds[len(ds)-1].Round(time.Microsecond))
}

// until runs probe back to back until it holds and returns how long that
// took from start. It gives up (failing the test) after 30 s: the delays
// are logged, never asserted.
func until(t *testing.T, what string, start time.Time, probe func() bool) time.Duration {
	t.Helper()
	for !probe() {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s: not seen after 30 s", what)
		}
	}
	return time.Since(start)
}

// TestReplicasCoherenceDelay measures how long a change made through
// replica A takes to reach replica B, whose caches held the old state: a
// revoked certificate refused, a released device's old certificate refused
// after a takeover, a replaced push certificate in use. The delay runs from
// A's (or, for the takeover, B's) 200 to B's first request that shows the
// change; B is probed back to back, so the figure includes one request's
// time. docs/postgres.md quotes it.
func TestReplicasCoherenceDelay(t *testing.T) {
	ctx := context.Background()
	rs := servertest.StartReplicas(t, 2)
	a, b := rs[0], rs[1]

	var revoke []time.Duration
	for range 10 {
		dev := a.NewDevice(t)
		a.Enroll(t, dev)
		at(dev, b)
		if _, err := dev.Idle(ctx); err != nil { // B caches the record and the binding
			t.Fatal(err)
		}
		serial := fmt.Sprintf("%x", dev.Cert.SerialNumber)
		if code := a.API(t, "POST", "/v1/certificates/"+serial+"/revoke", nil, nil); code/100 != 2 {
			t.Fatalf("revoke = %d", code)
		}
		revoke = append(revoke, until(t, "revocation at B", time.Now(), func() bool {
			_, err := dev.Idle(ctx)
			return statusOf(err) == http.StatusForbidden
		}))
	}
	t.Logf("revocation on A refused on B after: %s", delays(revoke))

	var release []time.Duration
	for range 5 {
		victim := a.NewDevice(t)
		a.Enroll(t, victim)
		if _, err := victim.Idle(ctx); err != nil { // A caches the binding
			t.Fatal(err)
		}
		if code := a.API(t, "POST", "/v1/devices/"+victim.UDID+"/release", nil, nil); code != http.StatusOK {
			t.Fatalf("release = %d", code)
		}
		wiped := a.NewDevice(t)
		wiped.UDID, wiped.SerialNumber = victim.UDID, victim.SerialNumber
		at(wiped, b)
		if err := wiped.Authenticate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := wiped.TokenUpdate(ctx); err != nil {
			t.Fatal(err)
		}
		release = append(release, until(t, "old certificate refused at A", time.Now(), func() bool {
			_, err := victim.Idle(ctx)
			return statusOf(err) == http.StatusForbidden
		}))
	}
	t.Logf("takeover on B after a release: old certificate refused on A after: %s", delays(release))

	var pushes []time.Duration
	for range 3 {
		renewed, err := apnstest.NewPushCert(apnstest.WithTopic(servertest.PushTopic))
		if err != nil {
			t.Fatal(err)
		}
		body := map[string]any{"cert_pem": string(renewed.CertPEM), "key_pem": string(renewed.KeyPEM)}
		if code := a.API(t, http.MethodPut, "/v1/push-certificate", body, nil); code != http.StatusOK {
			t.Fatalf("upload the renewed push certificate: %d", code)
		}
		serial := renewed.Leaf.SerialNumber.Text(16)
		pushes = append(pushes, until(t, "push certificate at B", time.Now(), func() bool {
			var info struct {
				Serial string `json:"serial"`
			}
			return b.API(t, "GET", "/v1/push-certificate", nil, &info) == http.StatusOK && info.Serial == serial
		}))
	}
	t.Logf("push certificate replaced on A in use on B after: %s", delays(pushes))
}

// terminateListener ends replica i's LISTEN session from outside, as a
// failover or a network fault would, and returns how many it ended.
func terminateListener(t *testing.T, admin *pgx.Conn, i int) int {
	t.Helper()
	var n int
	err := admin.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN %'`, servertest.ReplicaName(i)).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A replica whose LISTEN session is cut misses the notification of a
// revocation made meanwhile on the other replica, yet its very next
// request with that certificate is refused: from the moment it sees the
// session lost it reads authorization from the database, and when it
// listens again it starts with empty caches. Each round cuts the session
// again, revokes as soon as the replica has logged the loss, and probes
// once (no waiting: a stale answer fails the test).
func TestReplicasLostNotificationsNeverStale(t *testing.T) {
	ctx := context.Background()
	logs := []*lockedBuffer{{}, {}}
	n := 0
	rs := servertest.StartReplicas(t, 2, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs[n], nil))
		n++
	})
	a, b := rs[0], rs[1]
	admin, err := pgx.Connect(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	const lost = "lost the database's change notifications"
	for round := range 5 {
		dev := a.NewDevice(t)
		a.Enroll(t, dev)
		at(dev, b)
		var listening bool
		eventually(t, "B listening", func() bool { // the previous round's cut healed
			if _, err := dev.Idle(ctx); err != nil {
				t.Fatal(err)
			}
			listening = terminateListener(t, admin, 1) == 1
			return listening
		})
		// B cached the certificate's record and binding in its last Idle,
		// while listening.
		eventually(t, "B logs the loss", func() bool { return strings.Count(logs[1].String(), lost) > round })
		serial := fmt.Sprintf("%x", dev.Cert.SerialNumber)
		if code := a.API(t, "POST", "/v1/certificates/"+serial+"/revoke", nil, nil); code/100 != 2 {
			t.Fatalf("revoke = %d", code)
		}
		if _, err := dev.Idle(ctx); statusOf(err) != http.StatusForbidden {
			t.Fatalf("round %d: revoked certificate at the replica that lost its notifications: %v, want 403", round, err)
		}
	}
	// And B recovers: it listens again and follows changes as before.
	eventually(t, "B listening again", func() bool {
		var k int
		err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN %'`,
			servertest.ReplicaName(1)).Scan(&k)
		return err == nil && k == 1
	})
}

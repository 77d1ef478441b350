package server_test

import (
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/storage"
)

// exclusiveJobs are the jobs that run on one replica at a time.
var exclusiveJobs = []string{"dep-sync", "identity-renewal", "push-expiry-warnings"}

// gauge reads one unlabelled gauge, or one with the given label set, from
// a replica's /metrics.
func gauge(t *testing.T, s *servertest.Server, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(string(s.Get(t, "/metrics")))
	if m == nil {
		t.Fatalf("%s: no series %s", s.URL, series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// holderOf waits until exactly one replica runs job, and returns it. The
// others report 0 for it in orchard_exclusive_job_held.
func holderOf(t *testing.T, rs []*servertest.Server, job string) int {
	t.Helper()
	holder := -1
	eventually(t, "one replica running "+job, func() bool {
		n := 0
		for i, r := range rs {
			if r.HoldsJob(job) {
				n, holder = n+1, i
			}
		}
		return n == 1
	})
	for i, r := range rs {
		want := 0.0
		if i == holder {
			want = 1
		}
		if got := gauge(t, r, fmt.Sprintf(`orchard_exclusive_job_held{job="%s"}`, job)); got != want {
			t.Errorf("replica %d: orchard_exclusive_job_held{job=%q} = %v, want %v", i, job, got, want)
		}
	}
	return holder
}

// Two replicas on one database: each scheduled job runs on one of them.
// The renewal scan (run every 50 ms here) queues each due renewal once,
// from the holder only, and both replicas report the holder's count of
// expiring certificates. When the holder stops, the other takes every job
// over and its scans carry on (the renewals fail once the certificates
// expire).
func TestReplicasScheduledJobsRunOnce(t *testing.T) {
	start := time.Now().UTC().Truncate(time.Second)
	clock := &testClock{at: start}
	logs := []*lockedBuffer{{}, {}}
	n := 0
	rs := servertest.StartReplicas(t, 2, func(c *server.Config) {
		c.Now = clock.Now
		c.RenewEvery = 50 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(logs[n], nil))
		n++
	})
	holders := map[string]int{}
	for _, job := range exclusiveJobs {
		holders[job] = holderOf(t, rs, job)
	}
	h := holders["identity-renewal"]
	other := 1 - h

	var devs []string
	for range 3 {
		devs = append(devs, rs[0].EnrollOTA(t).UDID)
	}
	clock.set(start.Add(340 * day))
	for _, id := range devs {
		eventually(t, id+" renewal queued", func() bool { return renewalOf(t, rs[other], id).Renewal.State == storage.RenewalQueued })
	}
	// Let the holder scan a few more times: nothing is queued again.
	scans := func() int { return strings.Count(logs[h].String(), "identity renewal queued") }
	clock.set(start.Add(341 * day))
	for _, r := range rs {
		eventually(t, "the expiring count published", func() bool {
			return gauge(t, r, "orchard_identity_certs_expiring_soon") == 3
		})
	}
	if got := scans(); got != 3 {
		t.Errorf("holder queued %d renewals, want 3", got)
	}
	if got := strings.Count(logs[other].String(), "identity renewal queued"); got != 0 {
		t.Errorf("the replica not holding the renewal job queued %d renewals", got)
	}

	rs[h].Stop(t)
	for _, job := range exclusiveJobs {
		eventually(t, "the surviving replica running "+job, func() bool { return rs[other].HoldsJob(job) })
	}
	if got := gauge(t, rs[other], `orchard_exclusive_job_held{job="identity-renewal"}`); got != 1 {
		t.Errorf("survivor's orchard_exclusive_job_held = %v, want 1", got)
	}
	// The survivor's scans run now: at day 400 the unanswered renewals fail.
	clock.set(start.Add(400 * day))
	for _, id := range devs {
		eventually(t, id+" renewal failed by the survivor", func() bool {
			return renewalOf(t, rs[other], id).Renewal.State == storage.RenewalFailed
		})
	}
	if got := strings.Count(logs[other].String(), "identity renewal failed"); got != 3 {
		t.Errorf("survivor failed %d renewals, want 3", got)
	}
	eventually(t, "survivor's expiring count", func() bool { return gauge(t, rs[other], "orchard_identity_certs_expiring_soon") == 0 })
}

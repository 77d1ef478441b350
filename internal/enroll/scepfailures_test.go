package enroll_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// TestSCEPRefusalsBounded floods the collector as an unauthenticated
// attacker would: 100,000 bad challenges from 10,000 addresses. It must
// hold a bounded number of aggregates, write once per flush, count every
// attempt, and leave the failure log's policy refusals alone.
func TestSCEPRefusalsBounded(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var policyIDs []string
	for i := range storage.MaxEnrollmentFailures {
		f := &storage.EnrollmentFailure{At: at, UDID: fmt.Sprintf("U%d", i), Code: "device_limit", Reason: "limit", Stage: "authenticate"}
		if err := st.RecordEnrollmentFailure(ctx, f); err != nil {
			t.Fatal(err)
		}
		policyIDs = append(policyIDs, f.ID)
	}

	rec := enroll.NewSCEPRefusals(st, nil)
	const attempts, sources = 100_000, 10_000
	maxPending := 0
	for i := range attempts {
		reason := scep.ReasonChallengeInvalid
		if i%10 == 0 {
			reason = scep.ReasonChallengeUsed
		}
		rec.SCEPRefused(scep.Refusal{At: at.Add(time.Duration(i) * time.Millisecond), Reason: reason,
			Source: fmt.Sprintf("10.%d.%d.1", i%sources/250, i%sources%250)})
		if i%1000 == 0 {
			maxPending = max(maxPending, rec.Pending())
		}
	}
	rec.SCEPRefused(scep.Refusal{At: at, Reason: scep.ReasonBadCSR, Source: "10.0.0.9"}) // not a challenge refusal: ignored
	maxPending = max(maxPending, rec.Pending())
	if maxPending > enroll.MaxPendingSCEP+2 {
		t.Errorf("collector held %d aggregates, want at most %d", maxPending, enroll.MaxPendingSCEP+2)
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(ctx); err != nil { // nothing pending: no write
		t.Fatal(err)
	}
	if rec.Writes() != 1 || rec.Pending() != 0 {
		t.Errorf("writes = %d, pending = %d; want one write of everything", rec.Writes(), rec.Pending())
	}

	stored, err := st.ListSCEPFailures(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) > storage.MaxSCEPFailures+2 {
		t.Errorf("stored %d aggregates, want at most %d", len(stored), storage.MaxSCEPFailures+2)
	}
	counts := map[string]int{}
	for _, f := range stored {
		counts[f.Code] += f.Count
		if f.Stage != enroll.StageSCEP || f.Reason == "" || f.FirstAt.After(f.At) {
			t.Errorf("aggregate %+v: want stage scep, a reason, first seen no later than last", f)
		}
	}
	if counts[scep.ReasonChallengeInvalid] != attempts*9/10 || counts[scep.ReasonChallengeUsed] != attempts/10 || len(counts) != 2 {
		t.Errorf("counted %v, want %d invalid and %d used", counts, attempts*9/10, attempts/10)
	}
	log, err := st.ListEnrollmentFailures(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != len(policyIDs) || log[0].ID != policyIDs[0] || log[len(log)-1].ID != policyIDs[len(policyIDs)-1] {
		t.Errorf("failure log holds %d records (%s..), want the %d policy refusals untouched", len(log), log[0].ID, len(policyIDs))
	}
}

// TestSCEPRefusalsKeptOnFailedWrite: what a failed write held waits for
// the next one.
func TestSCEPRefusalsKeptOnFailedWrite(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := enroll.NewSCEPRefusals(st, nil)
	for range 3 {
		rec.SCEPRefused(scep.Refusal{At: time.Now(), Reason: scep.ReasonChallengeExpired, Source: "192.0.2.7", Kind: storage.KindInvitation, Ref: "inv1"})
	}
	st.Close()
	if err := rec.Flush(context.Background()); err == nil {
		t.Fatal("a write into a closed store succeeded")
	}
	if rec.Pending() != 1 || rec.Writes() != 0 {
		t.Fatalf("after a failed write: pending %d, writes %d; want the aggregate back and no write counted", rec.Pending(), rec.Writes())
	}
}

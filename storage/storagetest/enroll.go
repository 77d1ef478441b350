package storagetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// runEnroll checks an EnrollStore. newStore returns a fresh, empty store.
func runEnroll(t *testing.T, newStore func(t *testing.T) storage.EnrollStore) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	secret := sha256.Sum256([]byte("the challenge"))
	challenge := func(id string, multi bool) *storage.Challenge {
		return &storage.Challenge{ID: id, Hash: secret[:], Kind: storage.KindConfigurator, Ref: "prof1",
			MultiUse: multi, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
	}
	cert := func(i int) *storage.CertRecord {
		return &storage.CertRecord{Hash: fmt.Sprintf("%064x", i), Serial: fmt.Sprintf("%x", i), IssuedAt: now}
	}

	// A re-enrollment challenge keeps what it is bound to, and passes it on
	// to the certificate it redeems for.
	t.Run("ReenrollChallengeBinding", func(t *testing.T) {
		s := newStore(t)
		c := &storage.Challenge{ID: "re", Hash: secret[:], Kind: storage.KindReenroll, Ref: "DEV1", ForUDID: "DEV1",
			RenewalOf: "old-cert-hash", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.Challenge(ctx, "re")
		if err != nil || got.Kind != storage.KindReenroll || got.ForUDID != "DEV1" || got.RenewalOf != "old-cert-hash" {
			t.Fatalf("Challenge = %+v, %v", got, err)
		}
		rec := cert(7)
		rec.Authorization = storage.CertAuthorization{Kind: storage.KindReenroll, ChallengeID: "re", ForUDID: "DEV1", RenewalOf: "old-cert-hash"}
		if _, err := s.RedeemChallenge(ctx, "re", secret[:], now, rec); err != nil {
			t.Fatal(err)
		}
		if stored, err := s.Cert(ctx, rec.Hash); err != nil || stored.Authorization != rec.Authorization {
			t.Fatalf("redeemed certificate = %+v, %v; want authorization %+v", stored, err, rec.Authorization)
		}
	})

	t.Run("RedeemRules", func(t *testing.T) {
		wrong := sha256.Sum256([]byte("another"))
		tests := []struct {
			name  string
			multi bool
			prep  func(s storage.EnrollStore)
			hash  []byte
			at    time.Time
			want  error
		}{
			{"valid", false, nil, secret[:], now, nil},
			{"wrong secret", false, nil, wrong[:], now, storage.ErrChallengeInvalid},
			{"empty secret", false, nil, nil, now, storage.ErrChallengeInvalid},
			{"expired", false, nil, secret[:], now.Add(15 * time.Minute), storage.ErrChallengeExpired},
			{"used", false, func(s storage.EnrollStore) {
				if _, err := s.RedeemChallenge(ctx, "c", secret[:], now, cert(100)); err != nil {
					t.Fatal(err)
				}
			}, secret[:], now, storage.ErrChallengeUsed},
			{"multi-use used again", true, func(s storage.EnrollStore) {
				if _, err := s.RedeemChallenge(ctx, "c", secret[:], now, cert(100)); err != nil {
					t.Fatal(err)
				}
			}, secret[:], now.Add(time.Minute), nil},
			{"revoked", true, func(s storage.EnrollStore) {
				if err := s.RevokeChallenge(ctx, "c", now); err != nil {
					t.Fatal(err)
				}
			}, secret[:], now, storage.ErrChallengeRevoked},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				if err := s.PutChallenge(ctx, challenge("c", tc.multi)); err != nil {
					t.Fatal(err)
				}
				if tc.prep != nil {
					tc.prep(s)
				}
				c, err := s.RedeemChallenge(ctx, "c", tc.hash, tc.at, cert(1))
				if !errors.Is(err, tc.want) {
					t.Fatalf("redeem: err = %v, want %v", err, tc.want)
				}
				_, certErr := s.Cert(ctx, cert(1).Hash)
				if tc.want != nil {
					if !errors.Is(certErr, storage.ErrNotFound) {
						t.Errorf("refused redeem stored the certificate (err %v)", certErr)
					}
					return
				}
				if certErr != nil {
					t.Errorf("certificate not stored: %v", certErr)
				}
				if c.Kind != storage.KindConfigurator || c.Ref != "prof1" {
					t.Errorf("redeem returned %+v", c)
				}
			})
		}
		s := newStore(t)
		if _, err := s.RedeemChallenge(ctx, "nope", secret[:], now, cert(1)); !errors.Is(err, storage.ErrChallengeInvalid) {
			t.Errorf("unknown challenge: err = %v, want ErrChallengeInvalid", err)
		}
		if err := s.PutChallenge(ctx, challenge("dup", false)); err != nil {
			t.Fatal(err)
		}
		if err := s.PutChallenge(ctx, challenge("dup", false)); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("duplicate challenge ID: err = %v, want ErrConflict", err)
		}
	})

	t.Run("ConcurrentSingleUseOneWins", func(t *testing.T) {
		s := newStore(t)
		if err := s.PutChallenge(ctx, challenge("c", false)); err != nil {
			t.Fatal(err)
		}
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { _, errs[i] = s.RedeemChallenge(ctx, "c", secret[:], now, cert(i+1)) })
		}
		wg.Wait()
		wins := 0
		for i, err := range errs {
			_, certErr := s.Cert(ctx, cert(i+1).Hash)
			switch {
			case err == nil:
				wins++
				if certErr != nil {
					t.Errorf("winner %d has no certificate record", i)
				}
			case errors.Is(err, storage.ErrChallengeUsed):
				if certErr == nil {
					t.Errorf("loser %d has a certificate record", i)
				}
			default:
				t.Errorf("redeemer %d: %v", i, err)
			}
		}
		if wins != 1 {
			t.Errorf("%d redeemers won, want exactly 1", wins)
		}
		c, _ := s.Challenge(ctx, "c")
		if c.Uses != 1 {
			t.Errorf("uses = %d, want 1", c.Uses)
		}
	})

	t.Run("Invitations", func(t *testing.T) {
		s := newStore(t)
		inv := &storage.Invitation{ID: "i1", TokenHash: "th1", User: "ann", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		old := &storage.Invitation{ID: "i2", TokenHash: "th2", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		for _, i := range []*storage.Invitation{inv, old} {
			if err := s.PutInvitation(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.InvitationByToken(ctx, "th1"); err != nil || got.ID != "i1" || !got.SpentAt.IsZero() || got.TokenHash != "th1" {
			t.Errorf("invitation by token before the spend = %+v, %v", got, err)
		}
		if _, err := s.InvitationByToken(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("invitation by unknown token: err = %v, want ErrNotFound", err)
		}
		got, err := s.SpendInvitation(ctx, "th1", now, challenge("c1", false))
		if err != nil {
			t.Fatal(err)
		}
		if again, err := s.InvitationByToken(ctx, "th1"); err != nil || !again.SpentAt.Equal(now) || again.ChallengeID != "c1" {
			t.Errorf("invitation by token after the spend = %+v, %v", again, err)
		}
		if got.ID != "i1" || got.ChallengeID != "c1" || !got.SpentAt.Equal(now) {
			t.Errorf("spent invitation = %+v", got)
		}
		if c, err := s.Challenge(ctx, "c1"); err != nil || c.Ref != "i1" || c.User != "ann" {
			t.Errorf("challenge not stored with the spend, for the invitation: %+v, %v", c, err)
		}
		if _, err := s.SpendInvitation(ctx, "th1", now, challenge("c2", false)); !errors.Is(err, storage.ErrGone) {
			t.Errorf("second spend: err = %v, want ErrGone", err)
		}
		if _, err := s.SpendInvitation(ctx, "th2", now.Add(time.Minute), challenge("c3", false)); !errors.Is(err, storage.ErrGone) {
			t.Errorf("expired spend: err = %v, want ErrGone", err)
		}
		if _, err := s.SpendInvitation(ctx, "nope", now, challenge("c4", false)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("unknown token: err = %v, want ErrNotFound", err)
		}
		for _, id := range []string{"c2", "c3", "c4"} {
			if _, err := s.Challenge(ctx, id); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("refused spend stored challenge %s", id)
			}
		}
		list, err := s.ListInvitations(ctx, "", 0)
		if err != nil || len(list) != 2 || list[0].ID != "i1" || list[0].TokenHash != "th1" {
			t.Errorf("list = %+v, %v", list, err)
		}
	})

	t.Run("ConfiguratorProfilesAndSerials", func(t *testing.T) {
		s := newStore(t)
		for _, id := range []string{"prof1", "prof2"} {
			if err := s.PutConfiguratorProfile(ctx, &storage.ConfiguratorProfile{ID: id, Name: "n " + id, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		rows := []storage.SerialAssignment{
			{Serial: "A1", Details: "first", ProfileID: "prof1", AddedAt: now, UpdatedAt: now},
			{Serial: "B2", Details: "second", ProfileID: "prof1", AddedAt: now, UpdatedAt: now},
		}
		if res, err := s.ImportSerials(ctx, rows, false); err != nil || res != (storage.ImportResult{Added: 2}) {
			t.Fatalf("import = %+v, %v", res, err)
		}
		later := now.Add(time.Hour)
		again := []storage.SerialAssignment{{Serial: "A1", Details: "new", ProfileID: "prof2", AddedAt: later, UpdatedAt: later}}
		if res, err := s.ImportSerials(ctx, again, false); err != nil || res != (storage.ImportResult{Updated: 1}) {
			t.Fatalf("re-import = %+v, %v", res, err)
		}
		a, _ := s.Serial(ctx, "A1")
		if a.Details != "first" || a.ProfileID != "prof2" || !a.AddedAt.Equal(now) {
			t.Errorf("without overwrite: %+v, want details kept, profile moved, added_at kept", a)
		}
		if _, err := s.ImportSerials(ctx, again, true); err != nil {
			t.Fatal(err)
		}
		if a, _ := s.Serial(ctx, "A1"); a.Details != "new" {
			t.Errorf("with overwrite: details = %q, want new", a.Details)
		}
		bad := []storage.SerialAssignment{{Serial: "C3", ProfileID: "prof1"}, {Serial: "D4", ProfileID: "missing"}}
		if _, err := s.ImportSerials(ctx, bad, false); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("import to missing profile: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Serial(ctx, "C3"); !errors.Is(err, storage.ErrNotFound) {
			t.Error("failed import half-wrote C3")
		}
		if err := s.AssignSerials(ctx, []string{"B2", "ZZ"}, "prof2", later); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("assign unknown serial: err = %v, want ErrNotFound", err)
		}
		if b, _ := s.Serial(ctx, "B2"); b.ProfileID != "prof1" {
			t.Error("failed assign half-moved B2")
		}
		if err := s.AssignSerials(ctx, []string{"B2"}, "prof2", later); err != nil {
			t.Fatal(err)
		}
		p2, _ := s.ListSerials(ctx, "prof2", "", 0)
		p1, _ := s.ListSerials(ctx, "prof1", "", 0)
		all, _ := s.ListSerials(ctx, "", "A1", 10)
		if len(p2) != 2 || len(p1) != 0 || len(all) != 1 || all[0].Serial != "B2" {
			t.Errorf("lists: prof2 %v, prof1 %v, all after A1 %v", p2, p1, all)
		}

		if err := s.PutChallenge(ctx, challenge("cp", true)); err != nil { // Ref prof1
			t.Fatal(err)
		}
		if err := s.DeleteConfiguratorProfile(ctx, "prof2", later); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("delete profile with serials: err = %v, want ErrConflict", err)
		}
		if err := s.DeleteConfiguratorProfile(ctx, "prof1", later); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConfiguratorProfile(ctx, "prof1"); !errors.Is(err, storage.ErrNotFound) {
			t.Error("deleted profile still readable")
		}
		if c, _ := s.Challenge(ctx, "cp"); c.RevokedAt.IsZero() {
			t.Error("deleting a profile left its challenge usable")
		}
		if cs, _ := s.ChallengesFor(ctx, "prof1"); len(cs) != 1 || cs[0].ID != "cp" {
			t.Errorf("challenges for prof1 = %+v", cs)
		}
		if ps, _ := s.ListConfiguratorProfiles(ctx); len(ps) != 1 || ps[0].ID != "prof2" {
			t.Errorf("profiles = %+v", ps)
		}
	})

	t.Run("AppleVerifiedKept", func(t *testing.T) {
		// The takeover rule reads the mark from the certificate record, so
		// a backend that drops it silently refuses legitimate re-enrollments.
		s := newStore(t)
		c := challenge("v", false)
		c.ForUDID, c.ForSerial, c.AppleVerified = "UDID-V", "SERIAL-V", true
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.Challenge(ctx, "v")
		if err != nil || !got.AppleVerified {
			t.Fatalf("challenge = %+v, %v; want AppleVerified", got, err)
		}
		rec := cert(7)
		rec.Authorization = storage.CertAuthorization{Kind: storage.KindADE, ChallengeID: "v", ForUDID: "UDID-V",
			ForSerial: "SERIAL-V", AppleVerified: true}
		if _, err := s.RedeemChallenge(ctx, "v", secret[:], now, rec); err != nil {
			t.Fatal(err)
		}
		stored, err := s.Cert(ctx, rec.Hash)
		if err != nil || !stored.Authorization.AppleVerified {
			t.Fatalf("cert = %+v, %v; want AppleVerified", stored, err)
		}
	})

	t.Run("EnrollmentFailures", func(t *testing.T) {
		s := newStore(t)
		if got, err := s.ListEnrollmentFailures(ctx, "", 10); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v %v", got, err)
		}
		total := storage.MaxEnrollmentFailures + 5
		var ids []string
		for i := range total {
			f := &storage.EnrollmentFailure{At: now.Add(time.Duration(i) * time.Second), UDID: fmt.Sprintf("U%d", i),
				Serial: "S", Method: storage.KindADE, Reason: "r"}
			if err := s.RecordEnrollmentFailure(ctx, f); err != nil {
				t.Fatal(err)
			}
			if f.ID == "" || len(ids) > 0 && f.ID <= ids[len(ids)-1] {
				t.Fatalf("record %d got ID %q after %v", i, f.ID, ids[len(ids)-1:])
			}
			ids = append(ids, f.ID)
		}
		if err := s.RecordEnrollmentFailure(ctx, &storage.EnrollmentFailure{UDID: "x"}); err == nil {
			t.Error("a failure without a reason was recorded")
		}
		// Paging through everything sees exactly the newest Max, in order.
		all := allFailures(t, func(after string) ([]storage.EnrollmentFailure, error) {
			return s.ListEnrollmentFailures(ctx, after, 300)
		})
		if len(all) != storage.MaxEnrollmentFailures {
			t.Fatalf("kept %d failures, want the newest %d", len(all), storage.MaxEnrollmentFailures)
		}
		first, last := all[0], all[len(all)-1]
		if first.ID != ids[5] || first.UDID != "U5" || last.ID != ids[total-1] || last.Method != storage.KindADE ||
			!last.At.Equal(now.Add(time.Duration(total-1)*time.Second)) {
			t.Fatalf("kept %+v .. %+v, want U5 .. U%d", first, last, total-1)
		}
	})

	t.Run("SCEPFailures", func(t *testing.T) {
		s := newStore(t)
		if got, err := s.ListSCEPFailures(ctx, "", 10); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v %v", got, err)
		}
		if err := s.RecordSCEPFailures(ctx, []storage.EnrollmentFailure{{Source: "x", Reason: "r"}}); err == nil {
			t.Error("an aggregate without a code was recorded")
		}
		// A policy refusal in the log, which no SCEP aggregate may touch.
		logged := &storage.EnrollmentFailure{At: now, UDID: "U", Reason: "limit", Code: "device_limit"}
		if err := s.RecordEnrollmentFailure(ctx, logged); err != nil {
			t.Fatal(err)
		}
		agg := func(i, count int, source string) storage.EnrollmentFailure {
			at := now.Add(time.Duration(i) * time.Second)
			return storage.EnrollmentFailure{At: at, FirstAt: at, Code: "challenge_invalid", Stage: "scep", Reason: "wrong challenge",
				Source: source, Count: count, Method: storage.KindInvitation}
		}
		// Two batches: the second grows source 10.0.0.1 and adds
		// MaxSCEPFailures more sources, so the oldest fold into "other".
		if err := s.RecordSCEPFailures(ctx, []storage.EnrollmentFailure{agg(0, 3, "10.0.0.1"), agg(1, 2, "10.0.0.2")}); err != nil {
			t.Fatal(err)
		}
		first, err := s.ListSCEPFailures(ctx, "", 0)
		if err != nil || len(first) != 2 || first[0].Source != "10.0.0.1" || first[0].Count != 3 || !storage.IsSCEPFailureID(first[0].ID) ||
			first[0].ID <= logged.ID || first[1].ID <= first[0].ID {
			t.Fatalf("after one batch: %+v, %v", first, err)
		}
		var batch []storage.EnrollmentFailure
		batch = append(batch, agg(500, 4, "10.0.0.1"))
		for i := range storage.MaxSCEPFailures {
			batch = append(batch, agg(10+i, 1, fmt.Sprintf("10.1.%d.%d", i/250, i%250)))
		}
		if err := s.RecordSCEPFailures(ctx, batch); err != nil {
			t.Fatal(err)
		}
		all := allFailures(t, func(after string) ([]storage.EnrollmentFailure, error) {
			return s.ListSCEPFailures(ctx, after, 64)
		})
		if len(all) != storage.MaxSCEPFailures+1 {
			t.Fatalf("kept %d aggregates, want %d by source and one of other sources", len(all), storage.MaxSCEPFailures+1)
		}
		total, sources := 0, map[string]storage.EnrollmentFailure{}
		for _, f := range all {
			total += f.Count
			sources[f.Source] = f
		}
		if total != 3+2+4+storage.MaxSCEPFailures {
			t.Errorf("counts add up to %d, want every attempt counted (%d)", total, 3+2+4+storage.MaxSCEPFailures)
		}
		grown := sources["10.0.0.1"]
		if grown.ID != first[0].ID || grown.Count != 7 || !grown.FirstAt.Equal(now) || !grown.At.Equal(now.Add(500*time.Second)) {
			t.Errorf("10.0.0.1 = %+v, want the first ID, 7 attempts from the first to the last time", grown)
		}
		// The least recently seen: 10.0.0.2 (1s) and 10.1.0.0 (10s).
		other := sources[storage.OtherSources]
		_, gone2 := sources["10.0.0.2"]
		_, gone10 := sources["10.1.0.0"]
		if other.Count != 3 || gone2 || gone10 || !other.FirstAt.Equal(now.Add(time.Second)) || other.Code != "challenge_invalid" {
			t.Errorf("other sources = %+v (10.0.0.2 kept %v, 10.1.0.0 kept %v), want the two least recently seen folded", other, gone2, gone10)
		}
		if log, err := s.ListEnrollmentFailures(ctx, "", 0); err != nil || len(log) != 1 || log[0].ID != logged.ID {
			t.Errorf("failure log = %+v, %v; want only the policy refusal", log, err)
		}
	})

}

// allFailures pages through a failure listing by ID until an empty page.
func allFailures(t *testing.T, list func(after string) ([]storage.EnrollmentFailure, error)) []storage.EnrollmentFailure {
	t.Helper()
	var all []storage.EnrollmentFailure
	for after := ""; ; {
		page, err := list(after)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
}

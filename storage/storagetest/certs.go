package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// runCerts checks a CertStore. newStore returns a fresh, empty store.
func runCerts(t *testing.T, newStore func(t *testing.T) storage.CertStore) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := func(i int) *storage.CertRecord {
		return &storage.CertRecord{
			Hash: fmt.Sprintf("%064x", i), Serial: fmt.Sprintf("5e%02x", i), Subject: fmt.Sprintf("CN=device %d", i),
			NotBefore: now, NotAfter: now.AddDate(1, 0, 0), IssuedAt: now,
			Authorization: storage.CertAuthorization{Kind: storage.KindInvitation, ChallengeID: "c1", Ref: "inv1", ForSerial: "SER1"},
		}
	}

	t.Run("PutGetRoundTrip", func(t *testing.T) {
		s := newStore(t)
		want := rec(1)
		if err := s.PutCert(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Cert(ctx, want.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.Serial != want.Serial || got.Subject != want.Subject || !got.NotAfter.Equal(want.NotAfter) ||
			got.Authorization != want.Authorization || got.Revoked {
			t.Errorf("got %+v, want %+v", got, want)
		}
		if _, err := s.Cert(ctx, rec(2).Hash); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("unknown hash: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("RevokeBySerial", func(t *testing.T) {
		s := newStore(t)
		for i := 1; i <= 2; i++ {
			if err := s.PutCert(ctx, rec(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RevokeCert(ctx, rec(1).Serial, now); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeCert(ctx, rec(1).Serial, now.Add(time.Hour)); err != nil {
			t.Fatalf("second revoke: %v", err)
		}
		got, _ := s.Cert(ctx, rec(1).Hash)
		if !got.Revoked || !got.RevokedAt.Equal(now) {
			t.Errorf("revoked = %v at %v, want true at %v (first revocation kept)", got.Revoked, got.RevokedAt, now)
		}
		other, _ := s.Cert(ctx, rec(2).Hash)
		if other.Revoked {
			t.Error("revoking one serial revoked another certificate")
		}
		if err := s.RevokeCert(ctx, "ffff", now); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("unknown serial: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("ListPages", func(t *testing.T) {
		s := newStore(t)
		for _, i := range []int{3, 1, 2, 5, 4} {
			if err := s.PutCert(ctx, rec(i)); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		after := ""
		for {
			page, err := s.ListCerts(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				got = append(got, r.Serial)
			}
			after = page[len(page)-1].Hash
		}
		want := []string{"5e01", "5e02", "5e03", "5e04", "5e05"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("listed %v, want %v", got, want)
		}
	})
}

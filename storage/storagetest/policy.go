package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// policyStore is what the policy rules need: policies, identifiers and
// slots, plus the directory the slots belong to.
type policyStore interface {
	storage.PolicyStore
	storage.DirectoryStore
}

// t1 is a moment after t0.
var t1 = t0.Add(time.Hour)

// runPolicy is the conformance suite of storage.PolicyStore.
func runPolicy(t *testing.T, newStore func(t *testing.T) policyStore) {
	ctx := context.Background()

	t.Run("Policies", func(t *testing.T) {
		s := newStore(t)
		gen0, err := s.EnrollmentPolicyGeneration(ctx)
		must(t, err)
		p := storage.EnrollmentPolicy{ID: "b", Kind: storage.PolicyPlatform, Name: "Macs", Priority: 2, Groups: []string{"staff"},
			Platforms: map[string]storage.PlatformRule{"macOS": {BlockPersonal: true, MinOS: "14.0"}}, CreatedAt: t0, UpdatedAt: t0}
		must(t, s.PutEnrollmentPolicy(ctx, &p))
		must(t, s.PutEnrollmentPolicy(ctx, &storage.EnrollmentPolicy{ID: "a", Kind: storage.PolicyLimit, Default: true, DeviceLimit: 5, CreatedAt: t0}))
		gen1, err := s.EnrollmentPolicyGeneration(ctx)
		must(t, err)
		p.Name = "Macs 2"
		must(t, s.PutEnrollmentPolicy(ctx, &p)) // replace
		gen2, err := s.EnrollmentPolicyGeneration(ctx)
		must(t, err)
		if gen1 == gen0 || gen2 == gen1 {
			t.Fatalf("generation must change with every write: %d %d %d", gen0, gen1, gen2)
		}
		all, err := s.EnrollmentPolicies(ctx)
		must(t, err)
		if len(all) != 2 || all[0].ID != "a" || all[1].Name != "Macs 2" || all[1].Platforms["macOS"].MinOS != "14.0" ||
			!slices.Equal(all[1].Groups, []string{"staff"}) || all[0].DeviceLimit != 5 {
			t.Fatalf("policies: %+v", all)
		}
		must(t, s.DeleteEnrollmentPolicy(ctx, "b"))
		if gen3, _ := s.EnrollmentPolicyGeneration(ctx); gen3 == gen2 {
			t.Fatalf("delete left the generation at %d", gen3)
		}
		if err := s.DeleteEnrollmentPolicy(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		if all, _ := s.EnrollmentPolicies(ctx); len(all) != 1 {
			t.Fatalf("after delete: %+v", all)
		}
	})

	t.Run("CorporateImport", func(t *testing.T) {
		s := newStore(t)
		row := func(kind, v, d string) storage.CorporateIdentifier {
			return storage.CorporateIdentifier{Kind: kind, Value: v, Details: d, AddedAt: t0}
		}
		res, err := s.ImportCorporateIdentifiers(ctx, []storage.CorporateIdentifier{
			row(storage.IdentifierSerial, "C02AAA", "lab"), row(storage.IdentifierSerial, "C02BBB", ""), row(storage.IdentifierIMEI, "350000000000001", "phone")}, false)
		must(t, err)
		if res.Added != 3 || res.Updated != 0 || len(res.Conflicts) != 0 {
			t.Fatalf("first import: %+v", res)
		}
		must(t, s.MarkCorporateEnrolled(ctx, storage.IdentifierSerial, "C02AAA", "DEV-1", t1))
		// Other details: reported, not written without overwrite.
		res, err = s.ImportCorporateIdentifiers(ctx, []storage.CorporateIdentifier{
			row(storage.IdentifierSerial, "C02AAA", "desk"), row(storage.IdentifierSerial, "C02BBB", ""), row(storage.IdentifierSerial, "C02CCC", "new")}, false)
		must(t, err)
		if res.Added != 1 || res.Unchanged != 1 || res.Updated != 0 || len(res.Conflicts) != 1 || res.Conflicts[0].Details != "lab" {
			t.Fatalf("conflicting import: %+v", res)
		}
		got, err := s.CorporateIdentifier(ctx, storage.IdentifierSerial, "C02AAA")
		must(t, err)
		if got.Details != "lab" {
			t.Fatalf("overwritten without asking: %+v", got)
		}
		res, err = s.ImportCorporateIdentifiers(ctx, []storage.CorporateIdentifier{row(storage.IdentifierSerial, "C02AAA", "desk")}, true)
		must(t, err)
		if res.Updated != 1 || len(res.Conflicts) != 1 {
			t.Fatalf("overwrite: %+v", res)
		}
		got, err = s.CorporateIdentifier(ctx, storage.IdentifierSerial, "C02AAA")
		must(t, err)
		if got.Details != "desk" || got.EnrolledDevice != "DEV-1" || !got.EnrolledAt.Equal(t1) {
			t.Fatalf("overwritten record lost its enrollment: %+v", got)
		}
		if _, err := s.CorporateIdentifier(ctx, storage.IdentifierIMEI, "C02AAA"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("kinds are apart: %v", err)
		}
		if err := s.MarkCorporateEnrolled(ctx, storage.IdentifierSerial, "NOPE", "DEV-2", t1); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("mark unknown: %v", err)
		}
	})

	t.Run("CorporateListDelete", func(t *testing.T) {
		s := newStore(t)
		var rows []storage.CorporateIdentifier
		for _, v := range []string{"AB1", "AB2", "AC1", "B%1"} {
			rows = append(rows, storage.CorporateIdentifier{Kind: storage.IdentifierSerial, Value: v, AddedAt: t0})
		}
		rows = append(rows, storage.CorporateIdentifier{Kind: storage.IdentifierIMEI, Value: "111", AddedAt: t0})
		_, err := s.ImportCorporateIdentifiers(ctx, rows, false)
		must(t, err)
		values := func(cs []storage.CorporateIdentifier) []string {
			var out []string
			for _, c := range cs {
				out = append(out, c.Kind+":"+c.Value)
			}
			return out
		}
		all, err := s.ListCorporateIdentifiers(ctx, "", "", "", 0)
		must(t, err)
		if got := values(all); !slices.Equal(got, []string{"imei:111", "serial:AB1", "serial:AB2", "serial:AC1", "serial:B%1"}) {
			t.Fatalf("all: %v", got)
		}
		ab, err := s.ListCorporateIdentifiers(ctx, storage.IdentifierSerial, "AB", "", 0)
		must(t, err)
		if got := values(ab); !slices.Equal(got, []string{"serial:AB1", "serial:AB2"}) {
			t.Fatalf("prefix AB: %v", got)
		}
		page, err := s.ListCorporateIdentifiers(ctx, storage.IdentifierSerial, "", "AB1", 2)
		must(t, err)
		if got := values(page); !slices.Equal(got, []string{"serial:AB2", "serial:AC1"}) {
			t.Fatalf("page: %v", got)
		}
		pct, err := s.ListCorporateIdentifiers(ctx, storage.IdentifierSerial, "%", "", 0)
		must(t, err)
		if len(pct) != 0 {
			t.Fatalf("%% is a literal prefix, not a wildcard: %v", values(pct))
		}
		must(t, s.DeleteCorporateIdentifier(ctx, storage.IdentifierSerial, "AB1"))
		if err := s.DeleteCorporateIdentifier(ctx, storage.IdentifierSerial, "AB1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})

	t.Run("ClaimDevice", func(t *testing.T) {
		s := newStore(t)
		must(t, s.CreateUsers(ctx, []storage.DirectoryUser{{Username: "ann", CreatedAt: t0}, {Username: "dem", DEM: true, CreatedAt: t0}}))
		claim := func(dev, user string, dem bool, limit int) error {
			return s.ClaimDevice(ctx, storage.DeviceClaim{DeviceID: dev, Username: user, DEM: dem, Limit: limit})
		}
		must(t, claim("D1", "ann", false, 2))
		must(t, claim("D2", "ann", false, 2))
		if err := claim("D3", "ann", false, 2); !errors.Is(err, storage.ErrLimitReached) {
			t.Fatalf("past the limit: %v", err)
		}
		if u, _ := s.PrimaryUser(ctx, "D3"); u != "" {
			t.Fatalf("a refused claim set the primary user: %q", u)
		}
		must(t, claim("D1", "ann", false, 2)) // held already: no new slot
		if u, _ := s.PrimaryUser(ctx, "D2"); u != "ann" {
			t.Fatalf("claim did not set the primary user: %q", u)
		}
		if err := claim("D9", "nobody", false, 5); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
		// DEM slots are apart from primary users.
		must(t, claim("D4", "dem", true, 1))
		if err := claim("D5", "dem", true, 1); !errors.Is(err, storage.ErrLimitReached) {
			t.Fatalf("DEM past its limit: %v", err)
		}
		if u, _ := s.PrimaryUser(ctx, "D4"); u != "" {
			t.Fatalf("a DEM enrollment has no primary user, got %q", u)
		}
		devs, err := s.DEMDevices(ctx, "dem")
		must(t, err)
		if !slices.Equal(devs, []string{"D4"}) {
			t.Fatalf("DEM devices: %v", devs)
		}
	})

	t.Run("ClaimDeviceConcurrent", func(t *testing.T) {
		s := newStore(t)
		must(t, s.CreateUsers(ctx, []storage.DirectoryUser{{Username: "ann", CreatedAt: t0}}))
		must(t, s.ClaimDevice(ctx, storage.DeviceClaim{DeviceID: "D0", Username: "ann", Limit: 3}))
		must(t, s.ClaimDevice(ctx, storage.DeviceClaim{DeviceID: "D1", Username: "ann", Limit: 3}))
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = s.ClaimDevice(ctx, storage.DeviceClaim{DeviceID: fmt.Sprintf("X%d", i), Username: "ann", Limit: 3})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, storage.ErrLimitReached):
				t.Fatalf("claim: %v", err)
			}
		}
		devs, err := s.UserDevices(ctx, "ann")
		must(t, err)
		if won != 1 || len(devs) != 3 {
			t.Fatalf("%d of %d racers won the last slot; ann holds %v", won, n, devs)
		}
	})
}

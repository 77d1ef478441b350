package policy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/storage"
)

// BenchmarkDecide: one decision against 100 policies, 10,000 groups (the
// user in 20 of them) and 100,000 corporate identifiers on bbolt. Target:
// under 1 ms.
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	s := openStore(b)
	var users []storage.DirectoryUser
	for i := range 100 {
		users = append(users, storage.DirectoryUser{Username: fmt.Sprintf("u%03d", i)})
	}
	must(b, s.CreateUsers(ctx, users))
	const groups = 10000
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < groups; i += 32 {
				if err := s.CreateGroup(ctx, &storage.Group{Name: fmt.Sprintf("g%05d", i)}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i := range 20 {
		must(b, s.AddGroupMembers(ctx, fmt.Sprintf("g%05d", i*500), []string{"u042"}))
	}
	e, err := policy.New(s, nil)
	must(b, err)
	for i := range 100 {
		var gs []string
		for j := range 100 {
			gs = append(gs, fmt.Sprintf("g%05d", (i*100+j*7+1)%groups))
		}
		p := storage.EnrollmentPolicy{Kind: storage.PolicyPlatform, Name: fmt.Sprintf("p%d", i), Priority: i + 1, Groups: gs,
			Platforms: map[string]storage.PlatformRule{"iOS": {MinOS: "15.0"}, "macOS": {BlockPersonal: true}}}
		if i%2 == 1 {
			p = storage.EnrollmentPolicy{Kind: storage.PolicyLimit, Name: p.Name, Priority: i + 1, Groups: gs, DeviceLimit: 10}
		}
		if _, _, err := e.Save(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	for batch := range 20 {
		rows := make([]storage.CorporateIdentifier, 5000)
		for i := range rows {
			rows[i] = storage.CorporateIdentifier{Kind: storage.IdentifierSerial, Value: fmt.Sprintf("C%07d", batch*5000+i), Details: "bench"}
		}
		if _, err := e.ImportIdentifiers(ctx, rows, false); err != nil {
			b.Fatal(err)
		}
	}
	a := policy.Attempt{User: "u042", Method: storage.KindInvitation, Platform: "macOS", OSVersion: "15.1", Serial: "C0054321", DeviceID: "D1"}
	b.ResetTimer()
	for b.Loop() {
		d, err := e.Decide(ctx, a)
		if err != nil || !d.Allowed || d.Ownership != storage.Corporate {
			b.Fatalf("%+v %v", d, err)
		}
	}
}

// BenchmarkImportCSV: parse and store a 5,000-row serial CSV. Target:
// under 1 s.
func BenchmarkImportCSV(b *testing.B) {
	ctx := context.Background()
	var csv strings.Builder
	for i := range policy.MaxImportRows {
		fmt.Fprintf(&csv, "C%07d,Asset tag %d\n", i, i)
	}
	data := []byte(csv.String())
	for b.Loop() {
		b.StopTimer()
		e, err := policy.New(openStore(b), nil)
		must(b, err)
		b.StartTimer()
		rows, problems := policy.ParseIdentifierCSV(storage.IdentifierSerial, data)
		if len(problems) > 0 {
			b.Fatal(problems)
		}
		res, err := e.ImportIdentifiers(ctx, rows, false)
		if err != nil || res.Added != policy.MaxImportRows {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

package storagetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// BenchFleet measures the device list's reads on n enrolled devices with
// full inventories, seeded by as many concurrent writers: the first page,
// searches that match ten devices (serial prefix), one (a part of a name)
// and none, the devices of one user, and the dashboard's counts.
func BenchFleet(b *testing.B, s storage.Store, n, writers int) {
	now := time.Now().UTC()
	ctx := b.Context()
	if err := s.CreateUsers(ctx, []storage.DirectoryUser{{Username: "ulla"}}); err != nil {
		b.Fatal(err)
	}
	yes := true
	SeedEach(b, n, writers, func(i int) error {
		id := fmt.Sprintf("00008030-%016X", 0x5EED0000+i)
		e := &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, EnrolledAt: now,
			LastSeen: now.Add(-time.Duration(i) * time.Minute), Topic: "com.apple.mgmt.test", Token: []byte("token")}
		if err := s.UpdateEnrollment(ctx, id, e, func(*storage.Enrollment) error { return nil }); err != nil {
			return err
		}
		if i == 0 || i == n/2 || i == n-1 {
			if err := s.SetPrimaryUser(ctx, id, "ulla"); err != nil {
				return err
			}
		}
		_, err := s.UpdateInventory(ctx, id, func(inv *storage.DeviceInventory) error {
			*inv = storage.DeviceInventory{DeviceID: id, CreatedAt: now, Platform: []string{"iOS", "iPadOS", "macOS"}[i%3],
				DeviceName: fmt.Sprintf("Device %05d", i), SerialNumber: fmt.Sprintf("SER%07d", i), UDID: id,
				Model: "MQ9T3", ModelName: "iPhone", ProductName: "iPhone15,3", OSVersion: []string{"18.1", "17.5.1"}[i%2], BuildVersion: "22B83",
				WiFiMAC: "aa:bb:cc:dd:ee:ff", BluetoothMAC: "aa:bb:cc:dd:ee:00", TimeZone: "Europe/Paris", IMEI: "35 000000 000000 0",
				Supervised: &yes, PasscodePresent: &yes, DeviceInformationAt: now, SecurityInfoAt: now, QueriedAt: now}
			return nil
		})
		return err
	})
	within := []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	serial := fmt.Sprintf("SER%07d", n-1)[:9]
	for _, bc := range []struct {
		name string
		want int
		run  func() (int, error)
	}{
		{"list-first-page", 50, func() (int, error) { l, err := s.ListInventory(ctx, "", 50); return len(l), err }},
		{"search-serial-prefix", 10, func() (int, error) { l, err := s.SearchInventory(ctx, serial, "", 50); return len(l), err }},
		{"search-name-part", 1, func() (int, error) {
			l, err := s.SearchInventory(ctx, fmt.Sprintf("ICE %05d", n-1), "", 50)
			return len(l), err
		}},
		{"search-none", 0, func() (int, error) { l, err := s.SearchInventory(ctx, "nothing", "", 50); return len(l), err }},
		{"by-user", 3, func() (int, error) { l, err := s.UserDevices(ctx, "ulla"); return len(l), err }},
		{"count-fleet", n, func() (int, error) { c, err := s.CountFleet(ctx, now, within); return c.Enrolled, err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if got, err := bc.run(); err != nil || got != bc.want {
					b.Fatalf("%s = %d, %v; want %d", bc.name, got, err, bc.want)
				}
			}
		})
	}
}

// SeedEach runs fn(i) for i in [0,n) on writers goroutines, so a
// benchmark's setup writes share commits; the first error fails it.
func SeedEach(b *testing.B, n, writers int, fn func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	var once sync.Once
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				if err := fn(i); err != nil {
					once.Do(func() { b.Errorf("seed %d: %v", i, err) })
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

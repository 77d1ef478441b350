package inventory

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

func benchInventory(b *testing.B) (*Inventory, *bolt.Store) {
	store, err := bolt.Open(filepath.Join(b.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	cmds, err := command.New(store, store, &pushRecorder{}, command.WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	inv, err := New(store, UnlockTokenFunc(func(context.Context, string) ([]byte, error) { return nil, storage.ErrNotFound }), cmds, WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	return inv, store
}

// BenchmarkConnectedNotDue is the cost Connected adds to a device's
// connect when its inventory is fresh: the common case.
func BenchmarkConnectedNotDue(b *testing.B) {
	inv, _ := benchInventory(b)
	const devices = 100_000
	ids := make([]string, devices)
	for n := range ids {
		ids[n] = fmt.Sprintf("00008030-%016X", n)
		inv.next[ids[n]] = time.Now().Add(time.Hour).UnixNano()
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		for pb.Next() {
			inv.Connected(ctx, ids[n%devices])
			n++
		}
	})
}

// BenchmarkFilterScan is GET /v1/inventory with a filter no device
// matches: a full scan of every record.
func BenchmarkFilterScan(b *testing.B) {
	for _, devices := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(devices), func(b *testing.B) {
			inv, store := benchInventory(b)
			fill(b, store, devices)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /v1/inventory", inv.List)
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, httptest.NewRequest("GET", "/v1/inventory?platform=tvOS", nil))
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		})
	}
}

// fill writes realistic records concurrently, so the group committer
// batches them.
func fill(b *testing.B, store *bolt.Store, devices int) {
	yes := true
	gb, free, batt := 238.35, 171.2, 0.83
	var wg sync.WaitGroup
	work := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				id := fmt.Sprintf("00008030-%016X", n)
				_, err := store.UpdateInventory(context.Background(), id, func(inv *storage.DeviceInventory) error {
					*inv = storage.DeviceInventory{DeviceID: id, Platform: IOS, Ownership: storage.Corporate, DeviceName: "iPhone " + id,
						Model: "MQ9T3", ModelName: "iPhone", ProductName: "iPhone15,3", OSVersion: "17.5.1", BuildVersion: "21F90",
						SerialNumber: fmt.Sprintf("F2L%09d", n), UDID: id, IMEI: "35 391211 437512 6", WiFiMAC: "a4:c3:61:2e:90:10",
						Supervised: &yes, ActivationLockEnabled: &yes, CapacityGB: &gb, AvailableGB: &free, BatteryLevel: &batt,
						DeviceInformationAt: time.Now(), SecurityInfoAt: time.Now(), QueriedAt: time.Now()}
					return nil
				})
				if err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for n := range devices {
		work <- n
	}
	close(work)
	wg.Wait()
}

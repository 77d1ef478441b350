package scope_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// TestStoreDevicesUserChannels: on a real store a device's user channels
// are found by their ID prefix, not mixed up with a device whose ID starts
// the same, and only asked for by user-channel scopes.
func TestStoreDevicesUserChannels(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, id := range []string{"MAC-1", "MAC-10", "MAC-1A"} {
		e := storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, EnrolledAt: time.Now(),
			Facts: &storage.DeviceFacts{ProductName: "Mac14,2", Model: "Mac14,2"}, CertHash: "h-" + id}
		if err := st.Authenticate(ctx, &storage.AuthenticateRecord{Enrollment: e}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range []struct{ id, dev string }{{"MAC-1:alice", "MAC-1"}, {"MAC-1:bob", "MAC-1"}, {"MAC-10:carol", "MAC-10"}} {
		create := &storage.Enrollment{ID: ch.id, DeviceID: ch.dev, Type: storage.User, Enrolled: true}
		if err := st.UpdateEnrollment(ctx, ch.id, create, func(*storage.Enrollment) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	src := scope.StoreDevices{Store: st}
	r := &scope.Resolver{Devices: src}
	d, ok, err := src.Device(ctx, "MAC-1")
	if err != nil || !ok || d.Users != nil {
		t.Fatalf("Device = %+v %v %v; want users left to UsersOf", d, ok, err)
	}
	if u, err := r.UsersOf(ctx, d); err != nil || !slices.Equal(u, []string{"MAC-1:alice", "MAC-1:bob"}) {
		t.Fatalf("UsersOf(MAC-1) = %v, %v", u, err)
	}
	users := scope.Scope{Platforms: []string{"macOS"}, Channel: scope.UserChannel}
	if in, err := r.InScope(ctx, users, "MAC-1", "MAC-1:bob"); err != nil || !in {
		t.Fatalf("MAC-1:bob in a macOS user scope = %v, %v", in, err)
	}
	if in, _ := r.InScope(ctx, users, "MAC-1", "MAC-1"); in {
		t.Fatal("a device channel is in a user-channel scope")
	}
	// One walk: MAC-10 and its user sort between MAC-1 and MAC-1's users.
	chs, err := r.Resolve(ctx, users)
	got := ids(chs)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"MAC-10:carol", "MAC-1:alice", "MAC-1:bob"}) {
		t.Fatalf("Resolve = %v, %v", got, err)
	}
}

package bolt

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

// A database written before the command log and channel history indexes
// existed gets both built from its targets on open.
func TestOpenBuildsCommandIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orchard.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, id := range []string{"DEV-1", "DEV-2"} {
		rec := &storage.AuthenticateRecord{Enrollment: storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, CertHash: "cert-" + id}}
		if err := s.Authenticate(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	for i, uuid := range []string{"u1", "u2"} {
		cmd := &storage.Command{UUID: uuid, RequestType: "ProfileList", Raw: []byte("<plist/>"), CreatedAt: time.Now().Add(time.Duration(i) * time.Second)}
		if err := s.Enqueue(ctx, cmd, []string{"DEV-1", "DEV-2"}); err != nil {
			t.Fatal(err)
		}
	}
	before, _, err := s.ListCommands(ctx, storage.CommandFilter{})
	if err != nil || len(before) != 4 {
		t.Fatalf("log before = %d entries, %v", len(before), err)
	}
	// As an older release left it: targets, no indexes.
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte(bCommandLog)); err != nil {
			return err
		}
		return tx.DeleteBucket([]byte(bHistory))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, next, err := s.ListCommands(ctx, storage.CommandFilter{})
	if err != nil || next != 0 || len(after) != len(before) {
		t.Fatalf("log after reopen = %d entries (next %d), %v; want %d", len(after), next, err, len(before))
	}
	for i := range after {
		if after[i].Command.UUID != before[i].Command.UUID || after[i].Target.ChannelID != before[i].Target.ChannelID {
			t.Errorf("entry %d = %s/%s, want %s/%s", i, after[i].Command.UUID, after[i].Target.ChannelID,
				before[i].Command.UUID, before[i].Target.ChannelID)
		}
	}
	if h, err := s.ChannelCommands(ctx, "DEV-2", 0, 10); err != nil || len(h) != 2 || h[0].Command.UUID != "u2" {
		t.Fatalf("history of DEV-2 after reopen = %+v, %v", h, err)
	}
}

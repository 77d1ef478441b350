package postgres_test

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/postgres"
)

// TestSearchColumnFilledOnOpen: inventories written before migration 0016
// (no search key) are still found, and get their key when the database
// is next opened; the key has its trigram index, and the migration takes
// each enrollment's last check-in from its document.
func TestSearchColumnFilledOnOpen(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range []storage.DeviceInventory{{DeviceID: "D1", DeviceName: "Hall iPad"}, {DeviceID: "D2", SerialNumber: "C02HALL"}, {DeviceID: "D3"}} {
		if _, err := s.UpdateInventory(ctx, inv.DeviceID, func(p *storage.DeviceInventory) error { *p = inv; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, "UPDATE inventory SET search = NULL WHERE device_id <> 'D3'"); err != nil {
		t.Fatal(err)
	}
	found := func(s *postgres.Store) {
		t.Helper()
		got, err := s.SearchInventory(ctx, "hall", "", 0)
		if err != nil || len(got) != 2 || got[0].DeviceID != "D1" || got[1].DeviceID != "D2" {
			t.Errorf("search = %+v, %v", got, err)
		}
	}
	found(s)
	s.Close()

	if s, err = postgres.Open(ctx, dsn, postgres.Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var missing int
	var key string
	if err := s.Pool().QueryRow(ctx, "SELECT (SELECT count(*) FROM inventory WHERE search IS NULL), (SELECT search FROM inventory WHERE device_id = 'D1')").Scan(&missing, &key); err != nil {
		t.Fatal(err)
	}
	if missing != 0 || key != "hall ipad\n\n\nd1" {
		t.Errorf("after reopening: %d rows without a key, D1's is %q", missing, key)
	}
	found(s)
	// Migration 0016 takes last_seen from the enrollments' documents.
	seen := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	for id, at := range map[string]time.Time{"E1": seen, "E2": {}} {
		e := &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, LastSeen: at,
			Facts: &storage.DeviceFacts{DeviceName: `say "last_seen":"2001-01-01T00:00:00Z" \x00`}}
		if err := s.UpdateEnrollment(ctx, id, e, func(*storage.Enrollment) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	migration, err := os.ReadFile("migrations/0016_device_search.sql")
	if err != nil {
		t.Fatal(err)
	}
	fill := regexp.MustCompile(`(?m)^UPDATE enrollments .*;$`).Find(migration)
	if _, err := s.Pool().Exec(ctx, "UPDATE enrollments SET last_seen = NULL"); err != nil || fill == nil {
		t.Fatalf("%v, %q", err, fill)
	}
	if _, err := s.Pool().Exec(ctx, string(fill)); err != nil {
		t.Fatal(err)
	}
	var e1 time.Time
	var e2 *time.Time
	if err := s.Pool().QueryRow(ctx, "SELECT (SELECT last_seen FROM enrollments WHERE id = 'E1'), (SELECT last_seen FROM enrollments WHERE id = 'E2')").Scan(&e1, &e2); err != nil ||
		!e1.Equal(seen) || e2 != nil {
		t.Errorf("last_seen from the documents: %v, %v, %v", e1, e2, err)
	}

	var indexes int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE indexname = 'inventory_search_trgm' AND schemaname = current_schema()").Scan(&indexes); err != nil || indexes != 1 {
		t.Errorf("trigram index: %d, %v", indexes, err)
	}
}

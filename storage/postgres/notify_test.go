package postgres_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/postgres"
)

// next reads one change, failing the test if none comes in 30 s (the
// bound only keeps a broken subscription from hanging the run).
func next(t *testing.T, ch <-chan storage.Change) storage.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("no change notification")
	}
	return storage.Change{}
}

// TestSubscribe: one replica's committed changes reach another's
// subscription; a lost LISTEN session is reported (ChangeLost), replaced,
// and reported again as live (ChangeAll), after which changes flow again.
func TestSubscribe(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	open := func() *postgres.Store {
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	changes := b.Subscribe(ctx)
	if c := next(t, changes); c.Kind != storage.ChangeAll {
		t.Fatalf("first change %+v, want all", c)
	}
	if err := a.PutSetting(ctx, "apns.push_certificate", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if c := next(t, changes); c != (storage.Change{Kind: storage.ChangeSetting, Key: "apns.push_certificate"}) {
		t.Fatalf("after PutSetting: %+v", c)
	}
	now := time.Now()
	rec := &storage.CertRecord{Hash: "ab12", Serial: "5eed", Subject: "CN=x", NotBefore: now, NotAfter: now.Add(time.Hour), IssuedAt: now}
	if err := a.PutCert(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeCert(ctx, "5eed", now); err != nil {
		t.Fatal(err)
	}
	if c := next(t, changes); c != (storage.Change{Kind: storage.ChangeCert, Key: "5eed"}) {
		t.Fatalf("after RevokeCert: %+v", c)
	}

	// Cut the listening session as a failover or network fault would.
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	err = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query = 'LISTEN ' || quote_ident('orchard:' || current_schema())`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the listener: %d %v", killed, err)
	}
	if c := next(t, changes); c.Kind != storage.ChangeLost {
		t.Fatalf("after the session died: %+v, want lost", c)
	}
	if c := next(t, changes); c.Kind != storage.ChangeAll {
		t.Fatalf("after re-listening: %+v, want all", c)
	}
	if err := a.PutSetting(ctx, "apns.push_certificate", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if c := next(t, changes); c != (storage.Change{Kind: storage.ChangeSetting, Key: "apns.push_certificate"}) {
		t.Fatalf("after re-listening, PutSetting: %+v", c)
	}
}

package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/storage/postgres"
)

// TestRunExclusive: while one replica runs under the lock, another one's
// call waits on it (seen in pg_locks) without running, and runs once the
// first is done.
func TestRunExclusive(t *testing.T) {
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
	holding, release := make(chan struct{}), make(chan struct{})
	aDone := make(chan error, 1)
	go func() {
		aDone <- a.RunExclusive(ctx, "dep-sync", func(context.Context) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	bRan := make(chan struct{})
	bDone := make(chan error, 1)
	go func() {
		bDone <- b.RunExclusive(ctx, "dep-sync", func(context.Context) error {
			close(bRan)
			return errors.New("b's own error")
		})
	}()
	// Wait until b's session is queued on the advisory lock.
	for {
		var waiting int
		if err := a.Pool().QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case <-bRan:
			t.Fatal("b ran while a held the lock")
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(5 * time.Millisecond): // poll gently
		}
	}
	select {
	case <-bRan:
		t.Fatal("b ran while a held the lock")
	default:
	}
	close(release)
	if err := <-aDone; err != nil {
		t.Fatalf("a: %v", err)
	}
	<-bRan
	if err := <-bDone; err == nil || err.Error() != "b's own error" {
		t.Errorf("b returned %v, want fn's error", err)
	}
	// Another name is another lock: it runs at once even while one is held.
	if err := a.RunExclusive(ctx, "other", func(context.Context) error { return nil }); err != nil {
		t.Error(err)
	}
}

package storagetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

func runWebSessions(t *testing.T, open func(t *testing.T) storage.WebSessionStore) {
	ctx := context.Background()
	at := time.Unix(2e9, 0).UTC()
	hash := func(id string) []byte { h := sha256.Sum256([]byte(id)); return h[:] }
	sess := func(kind, id, subject string) *storage.WebSession {
		return &storage.WebSession{Kind: kind, IDHash: hash(id), Subject: subject, CSRF: "csrf-" + id,
			CreatedAt: at, IdleExpiresAt: at.Add(30 * time.Minute), ExpiresAt: at.Add(8 * time.Hour)}
	}
	t.Run("CreateGetKinds", func(t *testing.T) {
		s := open(t)
		if err := s.CreateWebSession(ctx, sess("console", "a", "alice")); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateWebSession(ctx, sess("console", "a", "mallory")); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("taken hash: %v, want ErrConflict", err)
		}
		// The same id under another kind is another session.
		if err := s.CreateWebSession(ctx, sess("portal", "a", "ann")); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetWebSession(ctx, "console", hash("a"))
		if err != nil || got.Subject != "alice" || got.CSRF != "csrf-a" || !got.ExpiresAt.Equal(at.Add(8*time.Hour)) {
			t.Fatalf("console session = %+v, %v", got, err)
		}
		if got, err := s.GetWebSession(ctx, "portal", hash("a")); err != nil || got.Subject != "ann" {
			t.Fatalf("portal session = %+v, %v", got, err)
		}
		if _, err := s.GetWebSession(ctx, "other", hash("a")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown kind: %v, want ErrNotFound", err)
		}
		if _, err := s.GetWebSession(ctx, "console", hash("b")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown hash: %v, want ErrNotFound", err)
		}
	})
	t.Run("UpdateTouch", func(t *testing.T) {
		s := open(t)
		if err := s.CreateWebSession(ctx, sess("console", "a", "")); err != nil {
			t.Fatal(err)
		}
		up := sess("console", "a", "alice")
		up.CSRF = "new"
		up.Data = map[string]string{"flash": "saved"}
		up.CreatedAt = at.Add(time.Hour) // ignored: creation stays
		if err := s.UpdateWebSession(ctx, up); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateWebSession(ctx, sess("console", "zz", "x")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("update of a missing session: %v", err)
		}
		idle := at.Add(45 * time.Minute)
		if err := s.TouchWebSession(ctx, "console", hash("a"), idle); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchWebSession(ctx, "portal", hash("a"), idle); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("touch under another kind: %v", err)
		}
		got, err := s.GetWebSession(ctx, "console", hash("a"))
		if err != nil || got.Subject != "alice" || got.CSRF != "new" || got.Data["flash"] != "saved" ||
			!got.CreatedAt.Equal(at) || !got.IdleExpiresAt.Equal(idle) || !got.ExpiresAt.Equal(at.Add(8*time.Hour)) {
			t.Fatalf("after update and touch = %+v, %v", got, err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		for _, w := range []*storage.WebSession{sess("console", "a", "alice"), sess("console", "b", "alice"),
			sess("console", "c", "bob"), sess("portal", "d", "alice")} {
			if err := s.CreateWebSession(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteWebSession(ctx, "portal", hash("a")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("delete under another kind: %v", err)
		}
		if err := s.DeleteWebSession(ctx, "console", hash("c")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetWebSession(ctx, "console", hash("c")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleted session: %v", err)
		}
		if err := s.DeleteWebSession(ctx, "console", hash("c")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		n, err := s.DeleteWebSessionsOf(ctx, "console", "alice")
		if err != nil || n != 2 {
			t.Fatalf("alice's console sessions: %d, %v; want 2", n, err)
		}
		// The portal session of the same name is another surface's.
		if _, err := s.GetWebSession(ctx, "portal", hash("d")); err != nil {
			t.Fatalf("portal session after console sign-out: %v", err)
		}
	})
	t.Run("DeleteExpired", func(t *testing.T) {
		s := open(t)
		idleGone := sess("console", "idle", "a")
		idleGone.IdleExpiresAt = at.Add(-time.Second)
		absGone := sess("portal", "abs", "b")
		absGone.ExpiresAt = at // expired at exactly now
		live := sess("console", "live", "c")
		for _, w := range []*storage.WebSession{idleGone, absGone, live} {
			if err := s.CreateWebSession(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.DeleteExpiredWebSessions(ctx, at)
		if err != nil || n != 2 {
			t.Fatalf("expired: %d, %v; want 2", n, err)
		}
		if _, err := s.GetWebSession(ctx, "console", hash("live")); err != nil {
			t.Fatalf("live session: %v", err)
		}
		if _, err := s.GetWebSession(ctx, "console", hash("idle")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("idle-expired session: %v", err)
		}
	})
}

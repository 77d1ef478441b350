package storagetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

func runAdmin(t *testing.T, open func(t *testing.T) storage.AdminStore) {
	ctx := context.Background()
	acct := func(name, role string) *storage.AdminAccount {
		return &storage.AdminAccount{Username: name, Role: role, PasswordHash: "$argon2id$x", CreatedAt: time.Unix(1e9, 0).UTC()}
	}
	t.Run("Accounts", func(t *testing.T) {
		s := open(t)
		if err := s.CreateAdmin(ctx, acct("bob", "helpdesk")); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAdmin(ctx, acct("alice", "owner")); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAdmin(ctx, acct("alice", "auditor")); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("second alice: %v, want ErrConflict", err)
		}
		if err := s.UpdateAdmin(ctx, acct("carol", "admin")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("update of a missing admin: %v", err)
		}
		b := acct("bob", "auditor")
		b.Disabled = true
		if err := s.UpdateAdmin(ctx, b); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetAdmin(ctx, "bob")
		if err != nil || got.Role != "auditor" || !got.Disabled || got.PasswordHash != "$argon2id$x" {
			t.Fatalf("bob = %+v, %v", got, err)
		}
		all, err := s.ListAdmins(ctx)
		if err != nil || len(all) != 2 || all[0].Username != "alice" || all[1].Username != "bob" {
			t.Fatalf("list = %+v, %v", all, err)
		}
		if _, err := s.GetAdmin(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
	})
	t.Run("Tokens", func(t *testing.T) {
		s := open(t)
		for _, n := range []string{"alice", "bob"} {
			if err := s.CreateAdmin(ctx, acct(n, "admin")); err != nil {
				t.Fatal(err)
			}
		}
		tok := func(id, admin string) *storage.APIToken {
			h := sha256.Sum256([]byte("secret-" + id))
			return &storage.APIToken{ID: id, Admin: admin, Role: "helpdesk", Hash: h[:], CreatedAt: time.Unix(1e9, 0).UTC()}
		}
		for _, tk := range []*storage.APIToken{tok("t1", "alice"), tok("t2", "alice"), tok("t3", "bob")} {
			if err := s.CreateAPIToken(ctx, tk); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateAPIToken(ctx, tok("t9", "nobody")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("token for a missing admin: %v", err)
		}
		dup := tok("t1", "bob")
		dup.ID = "t4"
		if err := s.CreateAPIToken(ctx, dup); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("token with a taken hash: %v", err)
		}
		h := sha256.Sum256([]byte("secret-t2"))
		got, err := s.APITokenByHash(ctx, h[:])
		if err != nil || got.ID != "t2" || got.Admin != "alice" {
			t.Fatalf("by hash = %+v, %v", got, err)
		}
		if l, err := s.ListAPITokens(ctx, "alice"); err != nil || len(l) != 2 {
			t.Fatalf("alice's tokens = %+v, %v", l, err)
		}
		if err := s.DeleteAPIToken(ctx, "t2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.APITokenByHash(ctx, h[:]); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("revoked token still found: %v", err)
		}
		if err := s.DeleteAPIToken(ctx, "t2"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second revoke: %v", err)
		}
		// Deleting an admin takes its tokens in the same commit.
		if err := s.DeleteAdmin(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		h3 := sha256.Sum256([]byte("secret-t3"))
		if _, err := s.APITokenByHash(ctx, h3[:]); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleted admin's token still found: %v", err)
		}
		if l, _ := s.ListAPITokens(ctx, ""); len(l) != 1 || l[0].ID != "t1" {
			t.Fatalf("tokens left = %+v", l)
		}
	})
	t.Run("Audit", func(t *testing.T) {
		s := open(t)
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		actors := []string{"bootstrap", "alice", "alice/token:t1", "bob"}
		var ids []string
		for i := range 12 {
			e := &storage.AuditEntry{Time: base.Add(time.Duration(i) * time.Minute), Actor: actors[i%4], Source: "127.0.0.1",
				Action: "POST /v1/devices/{id}/actions/{action}", Target: fmt.Sprintf("dev%d", i%3), Status: 201, Result: "ok"}
			if i%2 == 1 {
				e.Action = "DELETE /v1/commands/{uuid}"
			}
			if err := s.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
			if len(ids) > 0 && e.ID <= ids[len(ids)-1] {
				t.Fatalf("audit IDs do not increase: %q after %q", e.ID, ids[len(ids)-1])
			}
			ids = append(ids, e.ID)
		}
		all, err := s.ListAudit(ctx, storage.AuditFilter{}, "", 0)
		if err != nil || len(all) != 12 || all[0].ID != ids[0] || all[11].Target != "dev2" {
			t.Fatalf("all = %d entries, %v", len(all), err)
		}
		page, _ := s.ListAudit(ctx, storage.AuditFilter{}, ids[4], 3)
		if len(page) != 3 || page[0].ID != ids[5] || page[2].ID != ids[7] {
			t.Fatalf("page after %s = %+v", ids[4], page)
		}
		alice, _ := s.ListAudit(ctx, storage.AuditFilter{Actor: "alice"}, "", 0)
		if len(alice) != 6 {
			t.Fatalf("alice and her tokens: %d entries, want 6", len(alice))
		}
		del, _ := s.ListAudit(ctx, storage.AuditFilter{Action: "DELETE", Target: "dev1"}, "", 0)
		if len(del) != 2 { // i = 1, 7
			t.Fatalf("DELETE on dev1: %d entries, want 2", len(del))
		}
		win, _ := s.ListAudit(ctx, storage.AuditFilter{Since: base.Add(3 * time.Minute), Until: base.Add(5 * time.Minute)}, "", 0)
		if len(win) != 2 || !win[0].Time.Equal(base.Add(3*time.Minute)) {
			t.Fatalf("window: %+v", win)
		}
		// A filtered page fills up past entries that do not match.
		bob, _ := s.ListAudit(ctx, storage.AuditFilter{Actor: "bob"}, "", 2)
		if len(bob) != 2 || bob[1].ID != ids[7] {
			t.Fatalf("bob's first two: %+v", bob)
		}
	})
}

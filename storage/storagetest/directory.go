package storagetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

// runDirectory is the conformance suite of storage.DirectoryStore.
func runDirectory(t *testing.T, newStore func(t *testing.T) storage.DirectoryStore) {
	ctx := context.Background()
	user := func(name string) storage.DirectoryUser {
		return storage.DirectoryUser{Username: name, DisplayName: "User " + name, Email: name + "@example.com",
			PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", CreatedAt: t0, UpdatedAt: t0}
	}

	t.Run("CreateReadList", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.User(ctx, "ann"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing user: %v", err)
		}
		must(t, s.CreateUsers(ctx, []storage.DirectoryUser{user("bob"), user("ann"), user("cy")}))
		got, err := s.User(ctx, "ann")
		must(t, err)
		if want := user("ann"); got.DisplayName != want.DisplayName || got.Email != want.Email ||
			got.PasswordHash != want.PasswordHash || got.Disabled || !got.CreatedAt.Equal(t0) {
			t.Fatalf("read back %+v", got)
		}
		all, err := s.ListUsers(ctx, "", 0)
		must(t, err)
		if names := usernames(all); !slices.Equal(names, []string{"ann", "bob", "cy"}) {
			t.Fatalf("list: %v", names)
		}
		page, err := s.ListUsers(ctx, "ann", 1)
		must(t, err)
		if names := usernames(page); !slices.Equal(names, []string{"bob"}) {
			t.Fatalf("page after ann: %v", names)
		}
	})

	t.Run("CreateUsersAllOrNothing", func(t *testing.T) {
		s := newStore(t)
		must(t, s.CreateUsers(ctx, []storage.DirectoryUser{user("ann")}))
		err := s.CreateUsers(ctx, []storage.DirectoryUser{user("bob"), user("ann")})
		if !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("taken username: %v", err)
		}
		if _, err := s.User(ctx, "bob"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a refused batch wrote bob: %v", err)
		}
		if err := s.CreateUsers(ctx, []storage.DirectoryUser{user("dan"), user("dan")}); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("repeated username: %v", err)
		}
		if _, err := s.User(ctx, "dan"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a refused batch wrote dan: %v", err)
		}
	})

	t.Run("UpdateUser", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.UpdateUser(ctx, "ann", func(*storage.DirectoryUser) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("update of a missing user: %v", err)
		}
		must(t, s.CreateUsers(ctx, []storage.DirectoryUser{user("ann")}))
		got, err := s.UpdateUser(ctx, "ann", func(u *storage.DirectoryUser) error {
			u.Disabled, u.Username, u.DisplayName = true, "eve", "Ann A."
			return nil
		})
		must(t, err)
		if got.Username != "ann" || !got.Disabled {
			t.Fatalf("update answered %+v", got)
		}
		if _, err := s.User(ctx, "eve"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("fn renamed the user: %v", err)
		}
		boom := errors.New("boom")
		if _, err := s.UpdateUser(ctx, "ann", func(u *storage.DirectoryUser) error { u.Disabled = false; return boom }); !errors.Is(err, boom) {
			t.Fatalf("failed update: %v", err)
		}
		if u, _ := s.User(ctx, "ann"); !u.Disabled || u.DisplayName != "Ann A." {
			t.Fatalf("after a failed update: %+v", u)
		}
	})

	t.Run("Groups", func(t *testing.T) {
		s := newStore(t)
		must(t, s.CreateGroup(ctx, &storage.Group{Name: "sales", Description: "Sales", CreatedAt: t0}))
		must(t, s.CreateGroup(ctx, &storage.Group{Name: "eng", CreatedAt: t0}))
		if err := s.CreateGroup(ctx, &storage.Group{Name: "eng"}); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("taken group name: %v", err)
		}
		g, err := s.Group(ctx, "sales")
		must(t, err)
		if g.Description != "Sales" || !g.CreatedAt.Equal(t0) {
			t.Fatalf("group read back %+v", g)
		}
		gs, err := s.ListGroups(ctx, "", 0)
		must(t, err)
		if len(gs) != 2 || gs[0].Name != "eng" || gs[1].Name != "sales" {
			t.Fatalf("groups: %+v", gs)
		}
		if _, err := s.Group(ctx, "ops"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing group: %v", err)
		}
	})

	t.Run("PrimaryUser", func(t *testing.T) { runPrimaryUser(t, newStore(t)) })

	t.Run("Members", func(t *testing.T) {
		s := newStore(t)
		must(t, s.CreateUsers(ctx, []storage.DirectoryUser{user("ann"), user("bob"), user("cy")}))
		must(t, s.CreateGroup(ctx, &storage.Group{Name: "eng", CreatedAt: t0}))
		must(t, s.CreateGroup(ctx, &storage.Group{Name: "ops", CreatedAt: t0}))
		if err := s.AddGroupMembers(ctx, "nope", []string{"ann"}); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown group: %v", err)
		}
		if err := s.AddGroupMembers(ctx, "eng", []string{"ann", "zed"}); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
		if m, _ := s.GroupMembers(ctx, "eng", "", 0); len(m) != 0 {
			t.Fatalf("a refused add wrote members: %v", m)
		}
		must(t, s.AddGroupMembers(ctx, "eng", []string{"cy", "ann"}))
		must(t, s.AddGroupMembers(ctx, "eng", []string{"ann", "bob"})) // ann again: no change
		must(t, s.AddGroupMembers(ctx, "ops", []string{"ann"}))
		m, err := s.GroupMembers(ctx, "eng", "", 0)
		must(t, err)
		if !slices.Equal(m, []string{"ann", "bob", "cy"}) {
			t.Fatalf("members: %v", m)
		}
		if m, _ := s.GroupMembers(ctx, "eng", "ann", 1); !slices.Equal(m, []string{"bob"}) {
			t.Fatalf("members page: %v", m)
		}
		if _, err := s.GroupMembers(ctx, "nope", "", 0); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("members of an unknown group: %v", err)
		}
		if g, _ := s.UserGroups(ctx, "ann"); !slices.Equal(g, []string{"eng", "ops"}) {
			t.Fatalf("ann's groups: %v", g)
		}
		must(t, s.RemoveGroupMember(ctx, "eng", "bob"))
		if err := s.RemoveGroupMember(ctx, "eng", "bob"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("removing a non-member: %v", err)
		}
		if g, _ := s.UserGroups(ctx, "bob"); len(g) != 0 {
			t.Fatalf("bob's groups after removal: %v", g)
		}
		must(t, s.DeleteGroup(ctx, "eng"))
		if err := s.DeleteGroup(ctx, "eng"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
		if g, _ := s.UserGroups(ctx, "ann"); !slices.Equal(g, []string{"ops"}) {
			t.Fatalf("ann's groups after deleting eng: %v", g)
		}
		if _, err := s.User(ctx, "cy"); err != nil {
			t.Fatalf("deleting a group removed a user: %v", err)
		}
		// A group made again with the old name starts empty.
		must(t, s.CreateGroup(ctx, &storage.Group{Name: "eng", CreatedAt: t0}))
		if m, _ := s.GroupMembers(ctx, "eng", "", 0); len(m) != 0 {
			t.Fatalf("recreated group has members: %v", m)
		}
	})
}

func runPrimaryUser(t *testing.T, s storage.DirectoryStore) {
	ctx := context.Background()
	must(t, s.CreateUsers(ctx, []storage.DirectoryUser{{Username: "ann", CreatedAt: t0}, {Username: "bob", CreatedAt: t0}}))
	if u, err := s.PrimaryUser(ctx, "DEV1"); err != nil || u != "" {
		t.Fatalf("no primary user yet: %q %v", u, err)
	}
	if err := s.SetPrimaryUser(ctx, "DEV1", "zed"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	must(t, s.SetPrimaryUser(ctx, "DEV2", "ann"))
	must(t, s.SetPrimaryUser(ctx, "DEV1", "ann"))
	if d, _ := s.UserDevices(ctx, "ann"); !slices.Equal(d, []string{"DEV1", "DEV2"}) {
		t.Fatalf("ann's devices: %v", d)
	}
	must(t, s.SetPrimaryUser(ctx, "DEV1", "bob")) // replaces ann
	if u, _ := s.PrimaryUser(ctx, "DEV1"); u != "bob" {
		t.Fatalf("DEV1's user: %q", u)
	}
	if d, _ := s.UserDevices(ctx, "ann"); !slices.Equal(d, []string{"DEV2"}) {
		t.Fatalf("ann's devices after the change: %v", d)
	}
	if err := s.SetPrimaryUser(ctx, "DEV1", "zed"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if u, _ := s.PrimaryUser(ctx, "DEV1"); u != "bob" {
		t.Fatalf("a refused change wrote: %q", u)
	}
	must(t, s.SetPrimaryUser(ctx, "DEV1", ""))
	if u, _ := s.PrimaryUser(ctx, "DEV1"); u != "" {
		t.Fatalf("cleared: %q", u)
	}
	if d, _ := s.UserDevices(ctx, "bob"); len(d) != 0 {
		t.Fatalf("bob's devices after the clear: %v", d)
	}
}

func usernames(us []storage.DirectoryUser) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

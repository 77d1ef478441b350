package adminauth

import (
	"errors"
	"strings"
	"testing"
)

func TestRoleAllows(t *testing.T) {
	want := map[Role][]Need{
		Owner:    {Read, Action, Destructive, Policy, ManageAdmins},
		Admin:    {Read, Action, Destructive, Policy},
		Helpdesk: {Read, Action},
		Auditor:  {Read},
		"root":   nil,
	}
	for role, allowed := range want {
		for n := Read; n <= ManageAdmins; n++ {
			exp := false
			for _, a := range allowed {
				exp = exp || a == n
			}
			if got := role.Allows(n); got != exp {
				t.Errorf("%s.Allows(%s) = %v, want %v", role, n, got, exp)
			}
		}
		if role.Allows(0) || role.Allows(ManageAdmins+1) {
			t.Errorf("%s allows an undeclared need", role)
		}
	}
}

func TestRoleOrder(t *testing.T) {
	if !Helpdesk.AtMost(Admin) || Admin.AtMost(Helpdesk) || !Owner.AtMost(Owner) || Role("x").AtMost(Owner) {
		t.Fatal("AtMost is wrong")
	}
	if Lower(Owner, Auditor) != Auditor || Lower(Helpdesk, Admin) != Helpdesk {
		t.Fatal("Lower is wrong")
	}
	if _, err := ParseRole("superuser"); err == nil {
		t.Fatal("ParseRole took an unknown role")
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") || strings.Contains(h, "correct horse") {
		t.Fatalf("hash %q", h)
	}
	if err := VerifyPassword(h, "correct horse battery"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := VerifyPassword(h, "correct horse batterY"); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	h2, _ := HashPassword("correct horse battery")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=4294967295,t=1,p=1$AA$AA", "$argon2id$v=19$m=8,t=1,p=1$!!$AA"} {
		if err := VerifyPassword(bad, "x"); err == nil || errors.Is(err, ErrBadPassword) {
			t.Errorf("VerifyPassword(%q) = %v, want a format error", bad, err)
		}
	}
	if CheckPasswordPolicy("short") == nil || CheckPasswordPolicy(strings.Repeat("a", MaxPasswordLen+1)) == nil || CheckPasswordPolicy("long enough pass") != nil {
		t.Fatal("password policy")
	}
}

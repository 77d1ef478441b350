package directory_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/ratelimit"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

var cheap = directory.Params{MemoryKiB: 64, Time: 1, Threads: 1}

func newDir(t *testing.T, opts ...directory.Option) *directory.Service {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d, err := directory.New(db, append([]directory.Option{directory.WithParams(cheap)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPasswordHashIsSelfDescribing(t *testing.T) {
	h, err := directory.HashPassword("correct horse", directory.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not record OWASP's parameters", h)
	}
	if ok, err := directory.VerifyPassword(h, "correct horse"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := directory.VerifyPassword(h, "correct horsE"); ok {
		t.Fatal("wrong password accepted")
	}
	// A hash made with other parameters still verifies: they are read from it.
	h2, _ := directory.HashPassword("pw-12345", cheap)
	if ok, err := directory.VerifyPassword(h2, "pw-12345"); !ok || err != nil {
		t.Fatalf("cheap hash: %v %v", ok, err)
	}
	h3, _ := directory.HashPassword("pw-12345", cheap)
	if h2 == h3 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 95 GiB: refused, not attempted
		"$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := directory.VerifyPassword(bad, "x"); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestPasswordSignIn(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	var logs bytes.Buffer
	clk := &clock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	auth, err := directory.NewPasswordAuth(d, slog.New(slog.NewTextHandler(&logs, nil)), ratelimit.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	for _, nu := range []directory.NewUser{{Username: "Ann", Password: "ann-secret-1"}, {Username: "bob", Password: "bob-secret-1", Disabled: true}, {Username: "cy"}} {
		if _, err := d.CreateUser(ctx, nu); err != nil {
			t.Fatal(err)
		}
	}
	u, err := auth.Authenticate(ctx, "ANN", "ann-secret-1", "192.0.2.1")
	if err != nil || u.Username != "ann" {
		t.Fatalf("right password: %+v %v", u, err)
	}
	for _, c := range []struct{ user, pw string }{{"ann", "nope-nope"}, {"zed", "whatever1"}, {"cy", ""}, {"../x", "p"}} {
		if _, err := auth.Authenticate(ctx, c.user, c.pw, "192.0.2.2"); !errors.Is(err, directory.ErrBadCredentials) {
			t.Errorf("%s: %v, want bad credentials", c.user, err)
		}
	}
	if _, err := auth.Authenticate(ctx, "bob", "bob-secret-1", "192.0.2.3"); !errors.Is(err, directory.ErrDisabled) {
		t.Fatalf("disabled user: %v", err)
	}
	if _, err := auth.Authenticate(ctx, "bob", "wrong-one", "192.0.2.3"); !errors.Is(err, directory.ErrBadCredentials) {
		t.Fatalf("disabled user, wrong password, must not learn it is disabled: %v", err)
	}
	if strings.Contains(logs.String(), "nope-nope") || strings.Contains(logs.String(), "bob-secret-1") {
		t.Fatalf("a password was logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "sign-in failed") || !strings.Contains(logs.String(), "username=zed") {
		t.Fatalf("failed sign-ins not logged:\n%s", logs.String())
	}

	// Per user: after the burst of failures even the right password waits.
	for i := 0; i < 4; i++ { // ann already failed once above
		auth.Authenticate(ctx, "ann", "wrong-pass", "198.51.100."+string(rune('1'+i)))
	}
	var rl *directory.RateLimitedError
	if _, err := auth.Authenticate(ctx, "ann", "ann-secret-1", "203.0.113.9"); !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("sixth try for ann: %v, want rate limited", err)
	}
	clk.t = clk.t.Add(2 * time.Minute)
	if _, err := auth.Authenticate(ctx, "ann", "ann-secret-1", "203.0.113.9"); err != nil {
		t.Fatalf("after the refill: %v", err)
	}

	// Per address: many users from one address.
	for i := 0; i < 20; i++ {
		auth.Authenticate(ctx, "guess"+string(rune('a'+i)), "wrong-pass", "192.0.2.50")
	}
	if _, err := auth.Authenticate(ctx, "cy2", "x", "192.0.2.50"); !errors.As(err, &rl) {
		t.Fatalf("address over its burst: %v", err)
	}
}

func TestSignInUpgradesWeakHash(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	if _, err := d.CreateUser(ctx, directory.NewUser{Username: "ann", Password: "ann-secret-1"}); err != nil {
		t.Fatal(err)
	}
	stronger := directory.Params{MemoryKiB: 128, Time: 2, Threads: 1}
	d2, _ := directory.New(d.Store(), directory.WithParams(stronger))
	auth, _ := directory.NewPasswordAuth(d2, slog.New(slog.DiscardHandler))
	if _, err := auth.Authenticate(ctx, "ann", "ann-secret-1", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	u, _ := d.Store().User(ctx, "ann")
	if !strings.Contains(u.PasswordHash, "$m=128,t=2,p=1$") {
		t.Fatalf("hash not upgraded: %s", u.PasswordHash)
	}
	if _, err := auth.Authenticate(ctx, "ann", "ann-secret-1", "192.0.2.1"); err != nil {
		t.Fatalf("upgraded hash: %v", err)
	}
}

func TestImportUsersRefusedWhole(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	if _, err := d.CreateUser(ctx, directory.NewUser{Username: "taken"}); err != nil {
		t.Fatal(err)
	}
	bad := "username,display_name,email,password\n" +
		"ann,Ann,ann@example.com,ann-secret-1\n" +
		"bad name,,,\n" +
		"bob,Bob,not-an-email,\n" +
		"ann,Again,,\n" +
		"taken,,,\n" +
		"cy,,,short\n" +
		"import,,,\n"
	_, err := d.ImportUsers(ctx, strings.NewReader(bad))
	var ie *directory.ImportError
	if !errors.As(err, &ie) || !errors.Is(err, directory.ErrInvalid) {
		t.Fatalf("bad CSV: %v", err)
	}
	var lines []int
	for _, p := range ie.Problems {
		lines = append(lines, p.Line)
	}
	if want := []int{3, 4, 5, 6, 7, 8}; !slices.Equal(lines, want) {
		t.Fatalf("problem lines %v, want %v (%+v)", lines, want, ie.Problems)
	}
	if _, err := d.Store().User(ctx, "ann"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused CSV created ann: %v", err)
	}
	n, err := d.ImportUsers(ctx, strings.NewReader("\ufeffUsername,Email,disabled\nann,ann@example.com,false\n\"bob\",,true\n"))
	if err != nil || n != 2 {
		t.Fatalf("good CSV: %d %v", n, err)
	}
	if b, _ := d.Store().User(ctx, "bob"); b == nil || !b.Disabled {
		t.Fatalf("bob: %+v", b)
	}
	for _, c := range []string{"", "email\nx@example.com\n", "username,shoe\nann,9\n", "username\n", "username\n\"unterminated\n"} {
		if _, err := d.ImportUsers(ctx, strings.NewReader(c)); !errors.As(err, &ie) || ie.Problems[0].Line < 1 {
			t.Errorf("CSV %q: %v", c, err)
		}
	}
}

func TestImportMembersRefusedWhole(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	for _, n := range []string{"ann", "bob"} {
		d.CreateUser(ctx, directory.NewUser{Username: n})
	}
	if _, err := d.CreateGroup(ctx, "Eng", ""); err != nil {
		t.Fatal(err)
	}
	_, err := d.ImportMembers(ctx, "eng", strings.NewReader("username\nann\nzed\nbob\n"))
	var ie *directory.ImportError
	if !errors.As(err, &ie) || len(ie.Problems) != 1 || ie.Problems[0].Line != 3 {
		t.Fatalf("unknown user: %v", err)
	}
	if m, _ := d.Store().GroupMembers(ctx, "eng", "", 0); len(m) != 0 {
		t.Fatalf("refused import added %v", m)
	}
	if n, err := d.ImportMembers(ctx, "eng", strings.NewReader("username\nANN\nbob\n")); err != nil || n != 2 {
		t.Fatalf("good import: %d %v", n, err)
	}
	if _, err := d.ImportMembers(ctx, "nope", strings.NewReader("username\nann\n")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
}

package ratelimit_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/ratelimit"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBurstThenRefill(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	var refused []string
	l, err := ratelimit.New("scep", 3, 60, ratelimit.WithClock(c.now), ratelimit.WithObserver(func(n string) { refused = append(refused, n) }))
	if err != nil {
		t.Fatal(err)
	}
	// Checking alone never spends.
	for range 10 {
		if _, ok := l.Check("a"); !ok {
			t.Fatal("Check refused a key that spent nothing")
		}
	}
	if l.Len() != 0 {
		t.Fatalf("Check tracked %d keys, want 0", l.Len())
	}
	for i := range 3 {
		if _, ok := l.Take("a"); !ok {
			t.Fatalf("attempt %d within the burst refused", i+1)
		}
	}
	d, ok := l.Check("a")
	if ok || d != time.Second {
		t.Fatalf("after the burst: ok=%v retry=%s, want refused with 1s", ok, d)
	}
	if _, ok := l.Check("b"); !ok {
		t.Fatal("another key was refused")
	}
	c.t = c.t.Add(999 * time.Millisecond)
	if _, ok := l.Check("a"); ok {
		t.Fatal("allowed before a token refilled")
	}
	c.t = c.t.Add(time.Millisecond)
	if _, ok := l.Take("a"); !ok {
		t.Fatal("refused after a token refilled")
	}
	// A long pause refills to the burst, not beyond.
	c.t = c.t.Add(time.Hour)
	for range 3 {
		l.Spend("a")
	}
	if _, ok := l.Check("a"); ok {
		t.Fatal("bucket refilled beyond its burst")
	}
	if len(refused) != 3 || refused[0] != "scep" {
		t.Fatalf("observer saw %v, want three refusals named scep", refused)
	}
}

// A flood of distinct keys never grows the table beyond its bound, and a
// key that is still being limited survives while refilled ones are dropped.
func TestKeysBounded(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	l, err := ratelimit.New("enroll", 1, 1, ratelimit.WithClock(c.now), ratelimit.WithMaxKeys(100))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		l.Spend(fmt.Sprint("flood-", i))
		if n := l.Len(); n > 100 {
			t.Fatalf("%d keys tracked after %d spends, bound is 100", n, i+1)
		}
	}
	// After the flood has refilled, a sweep frees every key but the
	// one spent now.
	c.t = c.t.Add(2 * time.Minute)
	l.Spend("bad")
	l.Spend("new")
	if _, ok := l.Check("bad"); ok {
		t.Fatal("the limited key was forgotten")
	}
	if n := l.Len(); n != 2 {
		t.Fatalf("%d keys after the sweep, want 2", n)
	}
}

func TestNewRefusesBadPolicy(t *testing.T) {
	for _, c := range [][2]int{{0, 1}, {1, 0}} {
		if _, err := ratelimit.New("x", c[0], c[1]); err == nil {
			t.Errorf("New(burst %d, rate %d) accepted", c[0], c[1])
		}
	}
	if _, err := ratelimit.New("x", 1, 1, ratelimit.WithMaxKeys(0)); err == nil {
		t.Error("max keys 0 accepted")
	}
}

func TestSourceKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:5555":             "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9]:1":   "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:80":      "192.0.2.7",
		"not-an-address":             "not-an-address",
	} {
		r := &http.Request{RemoteAddr: addr}
		if got := ratelimit.SourceKey(r); got != want {
			t.Errorf("SourceKey(%q) = %q, want %q", addr, got, want)
		}
	}
	if got := ratelimit.RetryAfter(1500 * time.Millisecond); got != "2" {
		t.Errorf("RetryAfter(1.5s) = %q, want 2", got)
	}
	if got := ratelimit.RetryAfter(0); got != "1" {
		t.Errorf("RetryAfter(0) = %q, want 1", got)
	}
}

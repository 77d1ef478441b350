package apns_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/apns/apnstest"
)

// collector gathers the results a Dispatcher hands to its callback.
type collector struct {
	mu  sync.Mutex
	got []apns.Result
}

func (c *collector) add(rs []apns.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, rs...)
}

func (c *collector) results() []apns.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]apns.Result(nil), c.got...)
}

func newDispatcher(t *testing.T, ctx context.Context, s apns.Sender, c *collector, opts ...apns.DispatcherOption) *apns.Dispatcher {
	t.Helper()
	d, err := apns.NewDispatcher(ctx, s, c.add, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitFor polls cond; the deadline only guards against a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDispatcherDeliversAll(t *testing.T) {
	e := newEnv(t)
	var c collector
	d := newDispatcher(t, context.Background(), e.pusher, &c, apns.WithBatchSize(64))
	ns := notes(1000)
	if refused := d.Enqueue(ns[:500]); len(refused) != 0 {
		t.Fatalf("refused %d", len(refused))
	}
	if refused := d.Enqueue(ns[500:]); len(refused) != 0 {
		t.Fatalf("refused %d", len(refused))
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := c.results()
	seen := map[string]int{}
	for _, r := range got {
		if !r.Sent {
			t.Errorf("result = %+v", r)
		}
		seen[r.ID]++
	}
	for _, n := range ns {
		if seen[n.ID] != 1 {
			t.Errorf("%s reported %d times", n.ID, seen[n.ID])
		}
	}
	if len(e.fake.Pushes()) != len(ns) {
		t.Errorf("fake saw %d pushes", len(e.fake.Pushes()))
	}
	if refused := d.Enqueue(notes(1)); len(refused) != 1 || refused[0].Reason != apns.ReasonStopped {
		t.Errorf("enqueue after Close = %+v", refused)
	}
}

func TestDispatcherQueueFullNeverBlocks(t *testing.T) {
	e := newEnv(t, apns.WithTimeout(time.Minute))
	e.fake.SetDefault(apnstest.Slow(time.Minute)) // APNs hangs
	var c collector
	d := newDispatcher(t, context.Background(), e.pusher, &c, apns.WithQueueSize(4), apns.WithBatchSize(1))
	ns := notes(11)
	if refused := d.Enqueue(ns[:1]); len(refused) != 0 {
		t.Fatalf("refused %+v", refused)
	}
	waitFor(t, "the first push to reach APNs", func() bool { return len(e.fake.Pushes()) == 1 })

	refused := d.Enqueue(ns[1:]) // 4 fit, 6 do not; returns at once
	if len(refused) != 6 {
		t.Fatalf("refused %d, want 6", len(refused))
	}
	for i, r := range refused {
		if r.ID != ns[5+i].ID || r.Sent || r.Reason != apns.ReasonQueueFull {
			t.Errorf("refused[%d] = %+v", i, r)
		}
	}
	if q := d.Queued(); q != 4 {
		t.Errorf("Queued = %d, want 4", q)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v", err)
	}
	got := c.results()
	if len(got) != 5 {
		t.Fatalf("callback got %d results, want 5 (1 in flight + 4 queued)", len(got))
	}
	for _, r := range got {
		if r.Sent || !strings.Contains(r.Reason, "canceled") {
			t.Errorf("abandoned result = %+v", r)
		}
	}
}

func TestDispatcherOutageReportsFailures(t *testing.T) {
	e := newEnv(t)
	e.fake.SetDefault(apnstest.ServiceUnavailable)
	var c collector
	d := newDispatcher(t, context.Background(), e.pusher, &c)
	if refused := d.Enqueue(notes(30)); len(refused) != 0 {
		t.Fatalf("refused %d", len(refused))
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := c.results()
	if len(got) != 30 {
		t.Fatalf("got %d results", len(got))
	}
	for _, r := range got {
		if r.Sent || r.Status != 503 || r.Reason != "ServiceUnavailable" || r.Attempts != 3 {
			t.Errorf("result = %+v", r)
		}
	}
}

func TestDispatcherStopsWithContext(t *testing.T) {
	e := newEnv(t, apns.WithTimeout(time.Minute))
	e.fake.SetDefault(apnstest.Slow(time.Minute))
	var c collector
	ctx, cancel := context.WithCancel(context.Background())
	d := newDispatcher(t, ctx, e.pusher, &c, apns.WithBatchSize(1))
	d.Enqueue(notes(3))
	waitFor(t, "a push in flight", func() bool { return len(e.fake.Pushes()) == 1 })
	cancel()
	waitFor(t, "all results", func() bool { return len(c.results()) == 3 })
	for _, r := range c.results() {
		if r.Sent || !strings.Contains(r.Reason, "canceled") {
			t.Errorf("result = %+v", r)
		}
	}
	if refused := d.Enqueue(notes(1)); len(refused) != 1 || refused[0].Reason != apns.ReasonStopped {
		t.Errorf("enqueue after cancel = %+v", refused)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Errorf("Close after cancel = %v", err)
	}
}

func TestNewDispatcherRefuses(t *testing.T) {
	e := newEnv(t)
	cb := func([]apns.Result) {}
	tests := []struct {
		name string
		ctx  context.Context
		s    apns.Sender
		cb   func([]apns.Result)
		opt  apns.DispatcherOption
	}{
		{"nil context", nil, e.pusher, cb, apns.WithBatchSize(1)},
		{"nil sender", context.Background(), nil, cb, apns.WithBatchSize(1)},
		{"nil callback", context.Background(), e.pusher, nil, apns.WithBatchSize(1)},
		{"nil option", context.Background(), e.pusher, cb, nil},
		{"zero queue", context.Background(), e.pusher, cb, apns.WithQueueSize(0)},
		{"zero batch", context.Background(), e.pusher, cb, apns.WithBatchSize(0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := apns.NewDispatcher(tc.ctx, tc.s, tc.cb, tc.opt); err == nil {
				t.Error("accepted")
			}
		})
	}
}

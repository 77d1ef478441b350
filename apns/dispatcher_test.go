package apns_test

import (
	"context"
	"errors"
	"log/slog"
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

// gate holds every Push until the test lets it through, so the test
// knows what waits in the dispatcher while a push is in flight.
type gate struct {
	next    apns.Sender
	entered chan int // the size of each batch that reached Push
	release chan struct{}
}

func newGate(next apns.Sender) *gate {
	return &gate{next: next, entered: make(chan int, 100), release: make(chan struct{})}
}

func (g *gate) Push(ctx context.Context, ns []apns.Notification) []apns.Result {
	g.entered <- len(ns)
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	return g.next.Push(ctx, ns)
}

// With APNs busy, more wake-ups than the old fixed queue held (50,000)
// wait without any being refused or dropped, and each reaches APNs
// exactly once.
func TestDispatcherNeverDrops(t *testing.T) {
	e := newEnv(t, apns.WithLogger(slog.New(slog.DiscardHandler)))
	e.fake.StopRecording() // 50,000 requests' headers are not worth keeping
	g := newGate(e.pusher)
	var c collector
	d := newDispatcher(t, context.Background(), g, &c)
	ns := notes(50_101)
	if refused := d.Enqueue(ns[:1]); len(refused) != 0 {
		t.Fatalf("refused %+v", refused)
	}
	<-g.entered // the worker is busy with the first batch
	if refused := d.Enqueue(ns[1:]); len(refused) != 0 {
		t.Fatalf("refused %d of %d, first: %+v", len(refused), len(ns)-1, refused[0])
	}
	if q := d.Queued(); q != len(ns)-1 {
		t.Fatalf("Queued = %d, want %d", q, len(ns)-1)
	}
	close(g.release)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range c.results() {
		if !r.Sent {
			t.Fatalf("result = %+v", r)
		}
		seen[r.ID]++
	}
	for _, n := range ns {
		if seen[n.ID] != 1 {
			t.Fatalf("%s reported %d times", n.ID, seen[n.ID])
		}
	}
	if got := e.fake.Received(); got != len(ns) {
		t.Errorf("fake received %d pushes, want %d", got, len(ns))
	}
}

// Wake-ups for an ID that is already waiting make one push; one for an
// ID whose push is in flight makes another, after it.
func TestDispatcherCoalesces(t *testing.T) {
	e := newEnv(t)
	g := newGate(e.pusher)
	var c collector
	d := newDispatcher(t, context.Background(), g, &c, apns.WithBatchSize(1))
	ns := notes(3)
	d.Enqueue(ns[:1])
	<-g.entered // ns[0] is in flight
	d.Enqueue(ns[1:2])
	d.Enqueue(ns[1:3])
	newer := ns[1]
	newer.Token = token(99)
	d.Enqueue([]apns.Notification{newer}) // replaces the waiting one
	d.Enqueue(ns[:1])                     // in flight: pushed again later
	if q := d.Queued(); q != 3 {
		t.Fatalf("Queued = %d, want 3 (dev-1, dev-2, dev-0)", q)
	}
	close(g.release)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range e.fake.Pushes() {
		got = append(got, string(p.Token))
	}
	want := []string{string(ns[0].Token), string(newer.Token), string(ns[2].Token), string(ns[0].Token)}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("fake saw tokens %q, want %q", got, want)
	}
}

// IDs whose notifications share a device token make one push in a
// batch, and each ID gets its result.
func TestDispatcherCoalescesTokens(t *testing.T) {
	e := newEnv(t)
	var c collector
	d := newDispatcher(t, context.Background(), e.pusher, &c)
	ns := notes(3)
	twin := ns[0]
	twin.ID = "dev-0-twin" // another ID for the same token
	d.Enqueue(append(ns, twin))
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]int{}
	for _, p := range e.fake.Pushes() {
		tokens[string(p.Token)]++
	}
	if len(tokens) != 3 || tokens[string(ns[0].Token)] != 1 {
		t.Fatalf("pushes per token = %v, want 3 tokens pushed once each", tokens)
	}
	got := map[string]bool{}
	for _, r := range c.results() {
		got[r.ID] = r.Sent
	}
	for _, id := range []string{"dev-0", "dev-1", "dev-2", "dev-0-twin"} {
		if !got[id] {
			t.Errorf("%s: no sent result (%v)", id, got)
		}
	}
}

// Wake takes bare IDs and resolves them only when their batch is pushed.
func TestDispatcherWakeResolvesLate(t *testing.T) {
	e := newEnv(t)
	g := newGate(e.pusher)
	ns := notes(10)
	byID := map[string]apns.Notification{}
	for _, n := range ns {
		byID[n.ID] = n
	}
	var mu sync.Mutex
	var asked [][]string
	resolve := func(_ context.Context, ids []string) []apns.Notification {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, append([]string(nil), ids...))
		var out []apns.Notification
		for _, id := range ids {
			if n, ok := byID[id]; ok {
				out = append(out, n)
			}
		}
		return out
	}
	var c collector
	noResolver := newDispatcher(t, context.Background(), g, &c)
	if n := noResolver.Wake([]string{"dev-0"}); n != 1 {
		t.Errorf("Wake without a resolver refused %d, want 1", n)
	}
	d := newDispatcher(t, context.Background(), g, &c, apns.WithBatchSize(4), apns.WithResolver(resolve))
	ids := []string{"dev-0", "dev-1", "dev-2", "dev-3", "unknown"}
	for _, n := range ns[4:] {
		ids = append(ids, n.ID)
	}
	if n := d.Wake(ids); n != 0 {
		t.Fatalf("Wake refused %d", n)
	}
	<-g.entered
	d.Wake([]string{"dev-5", "dev-5", "dev-9"}) // both already waiting
	mu.Lock()
	if len(asked) != 1 || len(asked[0]) != 4 {
		t.Errorf("before the first push, resolver asked %v, want one batch of 4", asked)
	}
	mu.Unlock()
	close(g.release)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(e.fake.Pushes()); got != len(ns) {
		t.Errorf("fake saw %d pushes, want %d", got, len(ns))
	}
	if got := len(c.results()); got != len(ns) {
		t.Errorf("%d results, want %d (the unknown ID is the resolver's to report)", got, len(ns))
	}
	if n := d.Wake([]string{"dev-0"}); n != 1 {
		t.Errorf("Wake after Close refused %d, want 1", n)
	}
}

// A Close that runs out of time stops pushing and says how many wake-ups
// were left; those are not reported as failed pushes (their devices get
// the commands at their next connect).
func TestDispatcherCloseLeavesRest(t *testing.T) {
	e := newEnv(t)
	g := newGate(e.pusher)
	var c collector
	d := newDispatcher(t, context.Background(), g, &c, apns.WithBatchSize(1))
	d.Enqueue(notes(5))
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := d.Close(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "4 wake-ups left unsent") {
		t.Fatalf("Close = %v", err)
	}
	got := c.results()
	if len(got) != 1 || got[0].Sent || !strings.Contains(got[0].Reason, "canceled") {
		t.Fatalf("results = %+v, want the one in flight, canceled", got)
	}
	if refused := d.Enqueue(notes(1)); len(refused) != 1 || refused[0].Reason != apns.ReasonStopped {
		t.Errorf("enqueue after Close = %+v", refused)
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

// When its context ends the dispatcher stops: the push in flight is
// reported canceled, the rest stay unsent, nothing more is taken.
func TestDispatcherStopsWithContext(t *testing.T) {
	e := newEnv(t)
	g := newGate(e.pusher)
	var c collector
	ctx, cancel := context.WithCancel(context.Background())
	d := newDispatcher(t, ctx, g, &c, apns.WithBatchSize(1))
	d.Enqueue(notes(3))
	<-g.entered
	cancel()
	waitFor(t, "the in-flight result", func() bool { return len(c.results()) == 1 })
	if r := c.results()[0]; r.Sent || !strings.Contains(r.Reason, "canceled") {
		t.Errorf("result = %+v", r)
	}
	waitFor(t, "intake to stop", func() bool { return len(d.Enqueue(notes(1))) == 1 })
	if err := d.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "2 wake-ups left unsent") {
		t.Errorf("Close after cancel = %v", err)
	}
	if n := len(e.fake.Pushes()); n != 0 {
		t.Errorf("fake saw %d pushes after the context ended", n)
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
		{"nil resolver", context.Background(), e.pusher, cb, apns.WithResolver(nil)},
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

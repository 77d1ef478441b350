package apns

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Sender is what a Dispatcher needs from a Pusher.
type Sender interface {
	Push(ctx context.Context, ns []Notification) []Result
}

// Resolver turns the IDs given to Dispatcher.Wake into notifications when
// their turn comes, so a push carries the token known at that moment and a
// bulk wake-up never holds 100,000 notifications at once. It returns only
// the IDs that can be pushed; reporting the others is its owner's job.
type Resolver func(ctx context.Context, ids []string) []Notification

// ReasonStopped is the reason given for notifications offered to a
// Dispatcher that no longer takes any.
const ReasonStopped = "push dispatcher stopped"

// ErrStopped: the dispatcher's context ended before Close.
var ErrStopped = errors.New(ReasonStopped)

// DefaultBatchSize bounds how many waiting notifications one Push call
// takes.
const DefaultBatchSize = 1000

// Dispatcher pushes in the background, so a request for 100,000 devices
// returns at once. It keeps a set of IDs waiting to be woken, in arrival
// order: an ID already waiting is not added twice (two commands queued for
// a channel before its push goes out make one push), and nothing is ever
// refused for lack of room — the set is bounded by the number of distinct
// IDs, and one worker drains it at the Sender's pace (backpressure, not a
// fixed-size queue that drops). An ID whose push is in flight is added
// again, since its device may already have fetched its queue.
type Dispatcher struct {
	sender   Sender
	onResult func([]Result)
	resolve  Resolver
	batch    int
	cancel   context.CancelFunc
	done     chan struct{}
	wakeup   chan struct{} // one token: something was added or intake closed
	results  chan []Result // to the goroutine that calls onResult

	mu      sync.Mutex
	pending map[string]*Notification // nil: an ID for the Resolver
	order   []string                 // pending keys in arrival order, from head
	head    int
	closed  bool
}

// shrinkAfter is the size past which an emptied set is reallocated: Go
// maps keep their peak size, and one bulk send must not hold 100,000
// slots for good.
const shrinkAfter = 4096

// DispatcherOption configures a Dispatcher.
type DispatcherOption func(*Dispatcher) error

// WithBatchSize bounds how many waiting notifications one Push call takes
// (default 1,000).
func WithBatchSize(n int) DispatcherOption {
	return func(d *Dispatcher) error {
		if n < 1 {
			return fmt.Errorf("apns: batch size %d must be at least 1", n)
		}
		d.batch = n
		return nil
	}
}

// WithResolver lets Wake take bare IDs, resolved by r when pushed.
func WithResolver(r Resolver) DispatcherOption {
	return func(d *Dispatcher) error {
		if r == nil {
			return errors.New("apns: nil resolver")
		}
		d.resolve = r
		return nil
	}
}

// NewDispatcher starts a background worker that pushes waiting
// notifications with s and hands every batch of results to onResult. Calls
// to onResult are serial, on a goroutine of their own, so recording one
// batch overlaps pushing the next; pushing waits only when onResult is
// more than one batch behind. The worker stops when ctx ends or Close is
// called.
func NewDispatcher(ctx context.Context, s Sender, onResult func([]Result), opts ...DispatcherOption) (*Dispatcher, error) {
	if ctx == nil || s == nil || onResult == nil {
		return nil, errors.New("apns: dispatcher needs a context, a sender and a result callback")
	}
	d := &Dispatcher{
		sender: s, onResult: onResult, batch: DefaultBatchSize,
		done: make(chan struct{}), wakeup: make(chan struct{}, 1), pending: map[string]*Notification{},
		results: make(chan []Result, 1),
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("apns: nil option")
		}
		if err := o(d); err != nil {
			return nil, err
		}
	}
	ctx, d.cancel = context.WithCancel(ctx)
	go func() {
		defer close(d.results)
		d.run(ctx)
	}()
	go func() {
		defer close(d.done)
		for rs := range d.results {
			d.onResult(rs)
		}
	}()
	return d, nil
}

// key is what coalesces: the caller's ID, or the token when there is none.
func key(n *Notification) string {
	if n.ID != "" {
		return n.ID
	}
	return "\x00" + string(n.Token)
}

// Enqueue adds ns to the set without blocking; a notification for an ID
// already waiting replaces it (newer token). Only a stopped dispatcher
// refuses, with ReasonStopped; the rest reach onResult later.
func (d *Dispatcher) Enqueue(ns []Notification) (refused []Result) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		for i := range ns {
			refused = append(refused, failed(ns[i], ReasonStopped))
		}
		return refused
	}
	for i := range ns {
		n := ns[i]
		d.add(key(&n), &n)
	}
	d.signal()
	return nil
}

// Wake adds IDs to the set without blocking, for the Resolver to turn into
// notifications when their turn comes. It returns how many it refused: all
// of them when the dispatcher is stopped or has no Resolver.
func (d *Dispatcher) Wake(ids []string) (refused int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.resolve == nil {
		return len(ids)
	}
	for _, id := range ids {
		if id != "" {
			d.add(id, nil)
		}
	}
	d.signal()
	return 0
}

// add puts n (nil: resolve k later) in the set under k; d.mu is held.
func (d *Dispatcher) add(k string, n *Notification) {
	if old, ok := d.pending[k]; ok {
		if n != nil || old == nil {
			d.pending[k] = n
		}
		return
	}
	d.pending[k] = n
	d.order = append(d.order, k)
}

func (d *Dispatcher) signal() {
	select {
	case d.wakeup <- struct{}{}:
	default:
	}
}

// Queued is the number of IDs waiting (in-flight pushes not counted).
func (d *Dispatcher) Queued() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// Close stops intake and waits for every waiting ID to be pushed. If ctx
// ends first, pushing stops (in-flight pushes are reported to onResult
// with the cancellation reason), the IDs still waiting are left unsent —
// their devices get their commands at their next connect anyway — and the
// error says how many.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	d.signal()
	d.mu.Unlock()
	var cause error
	select {
	case <-d.done:
	case <-ctx.Done():
		cause = ctx.Err()
		d.cancel()
		<-d.done
	}
	d.cancel()
	if left := d.Queued(); left > 0 {
		if cause == nil {
			cause = ErrStopped // the dispatcher's own context ended first
		}
		return fmt.Errorf("apns: %d wake-ups left unsent: %w", left, cause)
	}
	return cause
}

func (d *Dispatcher) run(ctx context.Context) {
	for {
		ws, ok := d.take(ctx)
		if !ok {
			return
		}
		ns := make([]Notification, 0, len(ws))
		var ids []string
		for _, w := range ws {
			if w.n != nil {
				ns = append(ns, *w.n)
			} else {
				ids = append(ids, w.k)
			}
		}
		if len(ids) > 0 {
			ns = append(ns, d.resolve(ctx, ids)...)
		}
		if len(ns) == 0 {
			continue
		}
		b := coalesceTokens(ns)
		rs := d.sender.Push(ctx, b.ns)
		for _, dup := range b.dups {
			r := rs[dup.of]
			r.ID = dup.id
			rs = append(rs, r)
		}
		d.results <- rs
	}
}

// tokenBatch is a batch with one notification per device token and topic;
// dups are the IDs that share another's token and get its result.
type tokenBatch struct {
	ns   []Notification
	dups []tokenDup
}

type tokenDup struct {
	id string
	of int // index in ns
}

// coalesceTokens keeps the first notification for each token and topic:
// one push wakes the device's MDM client however many IDs asked for it.
func coalesceTokens(ns []Notification) tokenBatch {
	b := tokenBatch{ns: ns[:0]}
	first := make(map[string]int, len(ns))
	for _, n := range ns {
		k := n.Topic + "\x00" + string(n.Token)
		if i, ok := first[k]; ok {
			b.dups = append(b.dups, tokenDup{id: n.ID, of: i})
			continue
		}
		first[k] = len(b.ns)
		b.ns = append(b.ns, n)
	}
	return b
}

// take removes up to one batch from the set, waiting for one; it reports
// false when intake is closed and the set is empty, or ctx ended.
func (d *Dispatcher) take(ctx context.Context) ([]taken, bool) {
	for {
		if ctx.Err() != nil {
			d.mu.Lock()
			d.closed = true
			d.mu.Unlock()
			return nil, false
		}
		d.mu.Lock()
		if n := len(d.order) - d.head; n > 0 {
			n = min(n, d.batch)
			ws := make([]taken, 0, n)
			for _, k := range d.order[d.head : d.head+n] {
				ws = append(ws, taken{k, d.pending[k]})
				delete(d.pending, k)
			}
			clear(d.order[d.head : d.head+n]) // let the strings go
			d.head += n
			switch {
			case d.head == len(d.order) && len(d.order) > shrinkAfter:
				d.pending, d.order, d.head = map[string]*Notification{}, nil, 0
			case d.head == len(d.order):
				d.order, d.head = d.order[:0], 0
			case d.head > len(d.order)/2:
				d.order, d.head = append(d.order[:0], d.order[d.head:]...), 0
			}
			d.mu.Unlock()
			return ws, true
		}
		closed := d.closed
		d.mu.Unlock()
		if closed {
			return nil, false
		}
		select {
		case <-ctx.Done():
		case <-d.wakeup:
		}
	}
}

// taken is one entry removed from the set.
type taken struct {
	k string
	n *Notification
}

func failed(n Notification, reason string) Result {
	return Result{ID: n.ID, Token: n.Token, Reason: reason, At: time.Now()}
}

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

// Reasons a Dispatcher gives for notifications it did not send.
const (
	ReasonQueueFull = "push queue full"
	ReasonStopped   = "push dispatcher stopped"
)

// Defaults for a Dispatcher.
const (
	DefaultQueueSize = 50000
	DefaultBatchSize = 1000
)

// Dispatcher queues notifications and pushes them in the background, so a
// request for 10,000 devices returns at once. Enqueue never blocks: what
// does not fit in the bounded queue is refused with ReasonQueueFull.
type Dispatcher struct {
	sender   Sender
	onResult func([]Result)
	queue    chan Notification
	batch    int
	cancel   context.CancelFunc
	done     chan struct{}

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
}

// DispatcherOption configures a Dispatcher.
type DispatcherOption func(*Dispatcher) error

// WithQueueSize bounds how many notifications wait (default 50,000).
func WithQueueSize(n int) DispatcherOption {
	return func(d *Dispatcher) error {
		if n < 1 {
			return fmt.Errorf("apns: queue size %d must be at least 1", n)
		}
		d.queue = make(chan Notification, n)
		return nil
	}
}

// WithBatchSize bounds how many queued notifications one Push call takes
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

// NewDispatcher starts a background worker that pushes queued
// notifications with s and hands every batch of results to onResult, which
// runs on the worker goroutine (keep it short: the queue waits meanwhile).
// The worker stops when ctx ends or Close is called.
func NewDispatcher(ctx context.Context, s Sender, onResult func([]Result), opts ...DispatcherOption) (*Dispatcher, error) {
	if ctx == nil || s == nil || onResult == nil {
		return nil, errors.New("apns: dispatcher needs a context, a sender and a result callback")
	}
	d := &Dispatcher{sender: s, onResult: onResult, batch: DefaultBatchSize, done: make(chan struct{})}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("apns: nil option")
		}
		if err := o(d); err != nil {
			return nil, err
		}
	}
	if d.queue == nil {
		d.queue = make(chan Notification, DefaultQueueSize)
	}
	ctx, d.cancel = context.WithCancel(ctx)
	go d.run(ctx)
	return d, nil
}

// Enqueue queues ns without blocking and returns a Result for each
// notification it could not queue (queue full or dispatcher stopped);
// the rest reach onResult later.
func (d *Dispatcher) Enqueue(ns []Notification) (refused []Result) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for i := range ns {
		if d.closed {
			refused = append(refused, failed(ns[i], ReasonStopped))
			continue
		}
		select {
		case d.queue <- ns[i]:
		default:
			refused = append(refused, failed(ns[i], ReasonQueueFull))
		}
	}
	return refused
}

// Queued is the number of notifications waiting.
func (d *Dispatcher) Queued() int { return len(d.queue) }

// Close stops intake and waits for queued notifications to be pushed. If
// ctx ends first, in-flight and queued pushes are abandoned (reported to
// onResult with the cancellation reason) and ctx's error is returned.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.stopIntake(true)
	select {
	case <-d.done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		<-d.done
		return ctx.Err()
	}
}

func (d *Dispatcher) stopIntake(closeQueue bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		if closeQueue {
			close(d.queue)
		}
	}
}

func (d *Dispatcher) run(ctx context.Context) {
	defer close(d.done)
	for {
		select {
		case <-ctx.Done():
			d.stopIntake(false)
			d.abandon(ctx.Err())
			return
		case n, ok := <-d.queue:
			if !ok {
				return
			}
			batch := []Notification{n}
			open := d.fill(&batch)
			d.onResult(d.sender.Push(ctx, batch))
			if !open {
				return
			}
		}
	}
}

// fill adds queued notifications to batch without waiting; it reports
// false once the queue is closed and drained.
func (d *Dispatcher) fill(batch *[]Notification) bool {
	for len(*batch) < d.batch {
		select {
		case n, ok := <-d.queue:
			if !ok {
				return false
			}
			*batch = append(*batch, n)
		default:
			return true
		}
	}
	return true
}

// abandon reports everything still queued as not sent.
func (d *Dispatcher) abandon(cause error) {
	reason := ReasonStopped + ": " + cause.Error()
	var rs []Result
	for {
		select {
		case n, ok := <-d.queue:
			if ok {
				rs = append(rs, failed(n, reason))
				continue
			}
		default:
		}
		break
	}
	if len(rs) > 0 {
		d.onResult(rs)
	}
}

func failed(n Notification, reason string) Result {
	return Result{ID: n.ID, Token: n.Token, Reason: reason, At: time.Now()}
}

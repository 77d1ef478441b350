package push

import (
	"log/slog"
	"sync"
	"time"
)

// failureWindow is how long repeated push failures are counted before
// their totals are logged.
const failureWindow = time.Minute

// maxFailureReasons bounds the distinct reasons counted in one window;
// local error texts vary, and the tally must not grow without bound.
const maxFailureReasons = 64

// failureLog keeps an outage across a fleet to a few log lines: the first
// failure of each kind and reason in a window is logged with its channel,
// the rest are counted and logged as one line per reason when the window
// closes.
type failureLog struct {
	log   *slog.Logger
	after func(time.Duration, func()) // time.AfterFunc; tests close windows by hand

	mu     sync.Mutex
	open   bool // a window is running
	tally  map[failureKey]int
	closed bool
}

type failureKey struct{ kind, reason string }

func newFailureLog(l *slog.Logger) *failureLog {
	return &failureLog{log: l, tally: map[failureKey]int{},
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// note records one failure; kind is "token_invalid" or "failed".
func (f *failureLog) note(kind, reason, channel string, status, attempts int) {
	f.mu.Lock()
	k := failureKey{kind, reason}
	n, seen := f.tally[k]
	if !seen && len(f.tally) >= maxFailureReasons {
		k.reason = "other"
		n, seen = f.tally[k]
	}
	f.tally[k] = n + 1
	if !f.open && !f.closed {
		f.open = true
		f.after(failureWindow, f.flush)
	}
	f.mu.Unlock()
	if seen {
		return
	}
	if kind == "token_invalid" {
		f.log.Warn("APNs says a push token is invalid; no more pushes until the device's next TokenUpdate (more like it are counted for a minute)",
			"channel", channel, "reason", reason)
		return
	}
	f.log.Warn("push failed (more like it are counted for a minute)",
		"channel", channel, "reason", reason, "status", status, "attempts", attempts)
}

// flush logs the failures counted after each reason's first and starts
// over. Called when a window closes and when the service stops.
func (f *failureLog) flush() {
	f.mu.Lock()
	tally := f.tally
	f.tally, f.open = map[failureKey]int{}, false
	f.mu.Unlock()
	for k, n := range tally {
		if n > 1 {
			f.log.Warn("repeated push failures", "kind", k.kind, "reason", k.reason, "count", n, "window", failureWindow)
		}
	}
}

// stop flushes and arms no further timers.
func (f *failureLog) stop() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.flush()
}

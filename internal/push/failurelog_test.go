package push

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A fleet-wide failure writes one line per reason as it starts and one
// line per reason with the count when the minute closes, not a line per
// device.
func TestFailureLogAggregates(t *testing.T) {
	var buf bytes.Buffer
	f := newFailureLog(slog.New(slog.NewTextHandler(&buf, nil)))
	var timers []func()
	var waits []time.Duration
	f.after = func(d time.Duration, fn func()) { waits, timers = append(waits, d), append(timers, fn) }

	for i := range 49_000 {
		f.note("failed", "ServiceUnavailable", fmt.Sprintf("UDID-%05d", i), 503, 4)
	}
	for i := range 3 {
		f.note("token_invalid", "Unregistered", fmt.Sprintf("GONE-%d", i), 410, 1)
	}
	f.note("failed", "BadTopic", "ONCE", 400, 1)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || len(timers) != 1 || waits[0] != time.Minute {
		t.Fatalf("during the window: %d lines, %d timers (%v), want 3 lines and one 1m timer:\n%s", len(lines), len(timers), waits, buf.String())
	}
	if !strings.Contains(lines[0], "channel=UDID-00000") || !strings.Contains(lines[0], "reason=ServiceUnavailable") {
		t.Errorf("first line names no channel and reason: %s", lines[0])
	}

	buf.Reset()
	timers[0]()
	out := buf.String()
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 ||
		!strings.Contains(out, `msg="repeated push failures" kind=failed reason=ServiceUnavailable count=49000 window=1m0s`) ||
		!strings.Contains(out, `msg="repeated push failures" kind=token_invalid reason=Unregistered count=3 window=1m0s`) {
		t.Fatalf("window close wrote:\n%s\nwant one count line each for ServiceUnavailable and Unregistered", out)
	}

	// The next failure opens a new window and is logged again.
	buf.Reset()
	f.note("failed", "ServiceUnavailable", "UDID-LATER", 503, 4)
	if !strings.Contains(buf.String(), "channel=UDID-LATER") || len(timers) != 2 {
		t.Fatalf("new window: %d timers, logged:\n%s", len(timers), buf.String())
	}
	// Stopping flushes what is counted and arms nothing more.
	f.note("failed", "ServiceUnavailable", "UDID-LATER2", 503, 4)
	buf.Reset()
	f.stop()
	if !strings.Contains(buf.String(), "count=2") {
		t.Fatalf("stop wrote:\n%s", buf.String())
	}
	f.note("failed", "X", "C", 0, 1)
	if len(timers) != 2 {
		t.Fatal("a timer was armed after stop")
	}
}

// Distinct reasons (local errors carry varying text) are bounded, so the
// tally and the log stay small whatever the failures say.
func TestFailureLogBoundsReasons(t *testing.T) {
	var buf bytes.Buffer
	f := newFailureLog(slog.New(slog.NewTextHandler(&buf, nil)))
	var flush func()
	f.after = func(_ time.Duration, fn func()) { flush = fn }
	for i := range 10_000 {
		f.note("failed", fmt.Sprintf("network: dial 10.0.%d.%d: refused", i/256, i%256), "C", 0, 4)
	}
	if n := len(f.tally); n != maxFailureReasons+1 {
		t.Fatalf("%d reasons tallied, want %d", n, maxFailureReasons+1)
	}
	flush()
	if n := strings.Count(buf.String(), "\n"); n > maxFailureReasons+2 {
		t.Fatalf("%d lines for 10,000 failures", n)
	}
	if !strings.Contains(buf.String(), "reason=other count=9936") {
		t.Fatalf("no count for the other reasons:\n%s", buf.String())
	}
}

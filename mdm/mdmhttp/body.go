package mdmhttp

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// Bodies above smallBody are read only under the handler's body budget:
// the bytes of large bodies being read and handled at once are bounded, so
// many parallel 20 MiB reports queue instead of exhausting memory.
const (
	smallBody = 64 << 10
	unit      = 1 << 20 // budget granularity

	// DefaultBodyBudget holds one report of the largest size, or twenty
	// of a Mac's usual 1 MiB InstalledApplicationList, at once. Decoding
	// takes a few times the body, so this bounds the handler's memory to
	// some 150 MB whatever the number of devices sending.
	DefaultBodyBudget = MaxReportBody
)

// errBusy: the body budget did not free up before the request ended.
var errBusy = errors.New("too many large requests at once; retry later")

// budget is a counting semaphore of units, taken whole by one request at a
// time so that two half-served requests can never wait on each other.
type budget struct {
	turn  chan struct{} // held while a request collects its units
	units chan struct{} // one token per free unit
}

func newBudget(bytes int64) *budget {
	n := max(int((bytes+unit-1)/unit), 1)
	b := &budget{turn: make(chan struct{}, 1), units: make(chan struct{}, n)}
	for range n {
		b.units <- struct{}{}
	}
	return b
}

// acquire takes the units for size bytes (at most the whole budget) and
// returns the function that gives them back.
func (b *budget) acquire(ctx context.Context, size int64) (func(), error) {
	n := min(int((size+unit-1)/unit), cap(b.units))
	select {
	case b.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, errBusy
	}
	defer func() { <-b.turn }()
	for got := 0; got < n; got++ {
		select {
		case <-b.units:
		case <-ctx.Done():
			b.put(got)
			return nil, errBusy
		}
	}
	return func() { b.put(n) }, nil
}

func (b *budget) put(n int) {
	for range n {
		b.units <- struct{}{}
	}
}

// readBody reads at most limit bytes. A declared length is allocated once
// (net/http never returns more than it); a body over smallBody, or of
// unknown length, is read under the budget, and release gives it back once
// the request is handled.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), err error) {
	release = func() {}
	size := r.ContentLength
	if size > limit {
		return nil, release, &http.MaxBytesError{Limit: limit}
	}
	if size < 0 || size > smallBody {
		weight := size
		if size < 0 {
			weight = limit
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.bodyWait)
		release, err = h.bodies.acquire(ctx, weight)
		cancel()
		if err != nil {
			return nil, func() {}, err
		}
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	if size >= 0 {
		body = make([]byte, size)
		_, err = io.ReadFull(rd, body)
	} else {
		body, err = io.ReadAll(rd)
	}
	if err != nil {
		release()
		return nil, func() {}, err
	}
	return body, release, nil
}

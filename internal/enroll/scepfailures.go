package enroll

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/storage"
)

// StageSCEP is the stage of a refusal at the SCEP step (a wrong, used,
// expired or revoked challenge).
const StageSCEP = "scep"

// MaxPendingSCEP bounds the aggregates SCEPRefusals holds between writes;
// beyond it new sources count in one aggregate per code from
// storage.OtherSources.
const MaxPendingSCEP = 256

// scepMessages says what each challenge refusal means to an admin.
var scepMessages = map[string]string{
	scep.ReasonChallengeInvalid: "the SCEP challenge is not one Orchard issued, or its secret is wrong",
	scep.ReasonChallengeUsed:    "the SCEP challenge was used already (single-use)",
	scep.ReasonChallengeExpired: "the SCEP challenge expired before the device used it",
	scep.ReasonChallengeRevoked: "the SCEP challenge was revoked",
}

// SCEPRefusals collects SCEP-stage refusals for the enrollment-failures
// report. They come before any authentication, so whatever their number
// it holds at most MaxPendingSCEP+4 aggregates (by code and source) and
// writes them in one batch per Flush; the store folds them into its own
// bounded aggregates, apart from the failure log.
type SCEPRefusals struct {
	store storage.SCEPFailureStore
	log   *slog.Logger

	mu      sync.Mutex
	pending map[string]*storage.EnrollmentFailure

	flushMu sync.Mutex // one write at a time
	writes  int        // batches written, under flushMu
}

var _ scep.RefusalRecorder = (*SCEPRefusals)(nil)

// NewSCEPRefusals returns a collector writing to store.
func NewSCEPRefusals(store storage.SCEPFailureStore, log *slog.Logger) *SCEPRefusals {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SCEPRefusals{store: store, log: log, pending: map[string]*storage.EnrollmentFailure{}}
}

// SCEPRefused implements scep.RefusalRecorder: it only counts, in memory.
func (r *SCEPRefusals) SCEPRefused(x scep.Refusal) {
	msg, ok := scepMessages[x.Reason]
	if !ok {
		return
	}
	// Nothing here comes from the request: the source is the connection's
	// address, the rest Orchard's own challenge record.
	f := storage.EnrollmentFailure{At: x.At, FirstAt: x.At, Count: 1, Code: x.Reason, Stage: StageSCEP, Reason: msg,
		Source: x.Source, Method: x.Kind, Ref: x.Ref, User: x.User, UDID: x.ForUDID, Serial: x.ForSerial}
	r.mu.Lock()
	r.addLocked(f)
	r.mu.Unlock()
}

func (r *SCEPRefusals) addLocked(f storage.EnrollmentFailure) {
	k := storage.FailureKey(&f)
	if cur, ok := r.pending[k]; ok {
		cur.Fold(f)
		return
	}
	if len(r.pending) >= MaxPendingSCEP && f.Source != storage.OtherSources {
		f.Source = storage.OtherSources
		r.addLocked(f)
		return
	}
	r.pending[k] = &f
}

// Pending is how many aggregates wait for the next write.
func (r *SCEPRefusals) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Writes is how many batches were written so far.
func (r *SCEPRefusals) Writes() int {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	return r.writes
}

// Flush writes what is pending in one batch; nothing pending, no write.
// What a failed write held is counted again for the next one.
func (r *SCEPRefusals) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	batch := make([]storage.EnrollmentFailure, 0, len(r.pending))
	for _, f := range r.pending {
		batch = append(batch, *f)
	}
	clear(r.pending)
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := r.store.RecordSCEPFailures(ctx, batch); err != nil {
		r.mu.Lock()
		for _, f := range batch {
			r.addLocked(f)
		}
		r.mu.Unlock()
		return err
	}
	r.writes++
	return nil
}

// Run flushes every interval until ctx ends, then once more.
func (r *SCEPRefusals) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := r.Flush(final); err != nil {
				r.log.Error("write SCEP refusals", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("write SCEP refusals", "err", err)
			}
		}
	}
}

// Package service is Orchard's MDM core between the HTTP adapters and
// storage: it binds identities to enrollments, applies the check-in rules,
// and moves the command queues. It speaks mdm types and storage records,
// never HTTP.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
)

// Errors the HTTP edge maps to status codes. Each is wrapped with a
// one-line reason.
var (
	ErrBadRequest   = errors.New("bad request")
	ErrForbidden    = errors.New("forbidden")
	ErrConflict     = errors.New("conflict")
	ErrGone         = errors.New("gone")
	ErrNotSupported = errors.New("not supported")
	// ErrNotFound: what the device asked for does not exist (a declaration
	// no longer in its manifest: the 404 tells the device to remove it).
	ErrNotFound = errors.New("not found")
)

// Declarative answers the endpoints of a DeclarativeManagement check-in
// for one verified channel; nil body means an empty 200.
type Declarative interface {
	DeclarativeManagement(ctx context.Context, channel, endpoint string, data []byte) ([]byte, error)
}

// WithDeclarative serves Declarative Device Management through d; without
// it, DeclarativeManagement check-ins are refused as not supported.
func WithDeclarative(d Declarative) Option { return func(s *Service) { s.ddm = d } }

// Store is what the service needs from storage.
type Store interface {
	storage.CheckinStore
	storage.CommandQueue
}

// FailureRecorder keeps refused enrollment attempts (storage's
// EnrollmentFailureStore provides it).
type FailureRecorder interface {
	RecordEnrollmentFailure(ctx context.Context, f *storage.EnrollmentFailure) error
}

// WithFailureRecorder records refused Authenticate messages in r.
func WithFailureRecorder(r FailureRecorder) Option { return func(s *Service) { s.failures = r } }

// Service handles check-ins and command reports.
type Service struct {
	store    Store
	box      *pki.SecretBox
	log      *slog.Logger
	obs      []Observer
	topic    func() string
	userAuth func() bool
	now      func() time.Time
	failures FailureRecorder // nil: refusals are only logged
	ddm      Declarative     // nil: no declarative management
	journal  Journal         // nil: nothing is journaled
	admit    Admission       // nil: every identity-checked device enrolls
	effects  ResultEffects   // nil: a result changes only its command's state

	inflight sync.Map // device channel ID -> uuid last offered on it
	cache    *stateCache

	seenMu sync.Mutex
	seen   map[string]time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithObserver adds an observer of the service's events. Observers are
// told in the order they were added.
func WithObserver(o Observer) Option { return func(s *Service) { s.obs = append(s.obs, o) } }

// WithTopic makes the service refuse Authenticate and TokenUpdate messages
// whose Topic is not the push certificate's; topic returns "" when no
// push certificate is set yet, and then both are refused: a device
// enrolled without one could never be woken.
func WithTopic(topic func() string) Option { return func(s *Service) { s.topic = topic } }

// WithUserAuthentication reports whether network user authentication is on.
func WithUserAuthentication(on func() bool) Option { return func(s *Service) { s.userAuth = on } }

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New builds a Service. box seals secrets (bootstrap and unlock tokens).
func New(store Store, box *pki.SecretBox, opts ...Option) (*Service, error) {
	if store == nil || box == nil {
		return nil, errors.New("service: store and secret box are required")
	}
	s := &Service{
		store:    store,
		box:      box,
		log:      slog.Default(),
		userAuth: func() bool { return false },
		now:      time.Now,
		seen:     map[string]time.Time{},
		cache:    newStateCache(),
	}
	for _, o := range opts {
		o(s)
	}
	for _, o := range s.obs {
		if f, isFunc := o.(ObserverFunc); o == nil || isFunc && f == nil {
			return nil, errors.New("service: nil observer")
		}
	}
	return s, nil
}

// Sealing labels bind a sealed value to its field.
const (
	labelBootstrap = "bootstrap-token"
	labelUnlock    = "unlock-token"
)

func (s *Service) checkTopic(got string) error {
	if s.topic == nil {
		return nil
	}
	want := s.topic()
	if want == "" {
		return fmt.Errorf("%w: this server has no MDM push certificate yet", ErrForbidden)
	}
	if got != want {
		return fmt.Errorf("%w: topic %q is not this server's push topic", ErrForbidden, got)
	}
	return nil
}

// touch records last-seen in memory; FlushLastSeen writes it out.
func (s *Service) touch(channel string) {
	s.seenMu.Lock()
	s.seen[channel] = s.now()
	s.seenMu.Unlock()
}

// FlushLastSeen writes the collected last-seen times in one transaction.
func (s *Service) FlushLastSeen(ctx context.Context) error {
	s.seenMu.Lock()
	seen := s.seen
	s.seen = map[string]time.Time{}
	s.seenMu.Unlock()
	if len(seen) == 0 {
		return nil
	}
	return s.store.TouchLastSeen(ctx, seen)
}

// RunLastSeenFlusher flushes every interval until ctx ends, then once more.
func (s *Service) RunLastSeenFlusher(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.FlushLastSeen(context.WithoutCancel(ctx)); err != nil {
				s.log.Error("flush last-seen times", "err", err)
			}
			return
		case <-t.C:
			if err := s.FlushLastSeen(ctx); err != nil {
				s.log.Error("flush last-seen times", "err", err)
			}
		}
	}
}

package service

import (
	"context"
	"fmt"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// Event is something that happened on a device channel. Observers are told
// after the write it follows is durable and before the device is answered;
// they cannot fail the request, so they log their own errors. The records
// an event points to are the service's: observers must not change them.
type Event interface{ event() }

// Authenticated: a device's Authenticate was stored (a new or renewed
// device enrollment, not yet able to receive commands).
type Authenticated struct{ Enrollment *storage.Enrollment }

// Renewed: an enrolled device authenticated with its renewed identity
// certificate; the enrollment goes on (no Authenticated, no Enrolled).
type Renewed struct {
	DeviceID     string
	CertNotAfter time.Time
}

// Enrolled: a device channel's first TokenUpdate of an enrollment was
// stored; it can be pushed and sent commands now.
type Enrolled struct{ Enrollment *storage.Enrollment }

// UserEnrolled: a user channel's first TokenUpdate of its enrollment was
// stored (a macOS or Shared iPad user, or a User Enrollment's user).
type UserEnrolled struct{ Enrollment *storage.Enrollment }

// Connected: an identified, enrolled channel reported Idle. Observers run
// before the next command is picked, so what they queue goes out in the
// same connection. It is on every connect: observers must keep it cheap.
type Connected struct{ Channel string }

// CommandDelivered: a command was handed to a channel.
type CommandDelivered struct {
	Channel string
	Command *storage.Command
}

// ResultStored: a channel's result for a command was stored (repeats of
// the same status are not told again).
type ResultStored struct{ Result *storage.Result }

// CheckinReceived: a check-in message was handled and what it changed is
// durable; told for every message, every time (a repeat too), to the
// journal only. Checkin.Channel is the bound channel.
type CheckinReceived struct{ Checkin *mdm.Checkin }

// ReportReceived: a command report or Idle was handled and its result (if
// any) is durable; told for every report, a repeat too, to the journal only.
type ReportReceived struct{ Report *mdm.Report }

func (CheckinReceived) event() {}
func (ReportReceived) event()  {}

// Journal durably records what devices told the service (the webhook
// outbox). Unlike an observer's, its failure fails the request: the device
// sends the message again and the journal is told again, so what a 200
// answered is always recorded.
type Journal interface {
	Record(ctx context.Context, ev Event) error
}

// WithJournal records CheckinReceived and ReportReceived in j before the
// device is answered.
func WithJournal(j Journal) Option { return func(s *Service) { s.journal = j } }

func (s *Service) record(ctx context.Context, ev Event) error {
	if s.journal == nil {
		return nil
	}
	if err := s.journal.Record(ctx, ev); err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

func (Authenticated) event()    {}
func (Renewed) event()          {}
func (Enrolled) event()         {}
func (UserEnrolled) event()     {}
func (Connected) event()        {}
func (CommandDelivered) event() {}
func (ResultStored) event()     {}

// Observer reacts to the service's events; it ignores the kinds it has no
// use for. Observe runs on the device's request path.
type Observer interface {
	Observe(ctx context.Context, ev Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, ev Event)

// Observe implements Observer.
func (f ObserverFunc) Observe(ctx context.Context, ev Event) { f(ctx, ev) }

func (s *Service) emit(ctx context.Context, ev Event) {
	for _, o := range s.obs {
		o.Observe(ctx, ev)
	}
}

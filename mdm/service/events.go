package service

import (
	"context"
	"time"

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

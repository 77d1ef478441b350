// Package inventory owns what Orchard knows of each enrolled device beyond
// its check-in facts: it queues DeviceInformation and SecurityInfo after
// enrollment and every refresh interval on a connect, stores the answers
// (structured and raw) with the latest app, profile, certificate and
// location lists, serves them on the admin API, and turns the admin's
// remote actions (lock, erase, restart, lost mode, retire...) into
// schema-checked MDM commands.
package inventory

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/mdm/enrollprofile"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/storage"
)

// Store is what the inventory reads and writes.
type Store interface {
	Enrollment(ctx context.Context, id string) (*storage.Enrollment, error)
	Command(ctx context.Context, uuid string) (*storage.Command, []storage.Target, error)
	storage.InventoryStore
}

// UnlockTokens opens a device's escrowed unlock token (the MDM service
// has it). A device without one answers an error wrapping storage.ErrNotFound.
type UnlockTokens interface {
	UnlockToken(ctx context.Context, channel string) ([]byte, error)
}

// UnlockTokenFunc adapts a function to UnlockTokens; it lets the
// inventory be built before the MDM service it observes.
type UnlockTokenFunc func(ctx context.Context, channel string) ([]byte, error)

// UnlockToken implements UnlockTokens.
func (f UnlockTokenFunc) UnlockToken(ctx context.Context, channel string) ([]byte, error) {
	return f(ctx, channel)
}

// Pusher wakes a device, for the sync action and after the inventory's
// own queries are queued. It must return promptly, and return nil only
// when a notification was really queued (an action's "pushed" says so).
type Pusher interface {
	Wake(ctx context.Context, channel string) error
}

// Commands builds and queues the inventory's queries and actions (the
// command service).
type Commands interface {
	Build(requestType string, payload map[string]any) (*storage.Command, error)
	Queue(ctx context.Context, channels []string, wake command.Wake, cmds ...*storage.Command) (int, error)
}

// DefaultInterval is how often a connecting device is asked for its inventory.
const DefaultInterval = 24 * time.Hour

// retryAfter is how long a connecting device is left alone after a refresh
// could not be queued (queries still outstanding, or an error).
const retryAfter = time.Hour

// Inventory is the device inventory service. Its methods are safe for
// concurrent use.
type Inventory struct {
	store    Store
	unlock   UnlockTokens
	cmds     Commands
	pusher   Pusher
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration
	profile  string

	// next is when each device channel is due for a refresh (Unix
	// nanoseconds: it holds every device that connected, and a time.Time
	// is three times the size), loaded lazily from QueriedAt, so Connected
	// costs a map lookup on most connects.
	mu   sync.RWMutex
	next map[string]int64
}

// Option configures an Inventory.
type Option func(*Inventory)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(i *Inventory) { i.log = l } }

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(i *Inventory) { i.now = now } }

// WithInterval sets how often connecting devices are re-queried.
func WithInterval(d time.Duration) Option { return func(i *Inventory) { i.interval = d } }

// WithPusher wakes devices after an action queues a command; without one,
// commands wait for the device's next connect.
func WithPusher(p Pusher) Option { return func(i *Inventory) { i.pusher = p } }

// WithMDMProfileIdentifier overrides the PayloadIdentifier that retire
// removes (default EnrollmentProfileIdentifier).
func WithMDMProfileIdentifier(id string) Option { return func(i *Inventory) { i.profile = id } }

// EnrollmentProfileIdentifier is the PayloadIdentifier of the enrollment
// profile mdm/enrollprofile builds; removing it unenrolls the device.
const EnrollmentProfileIdentifier = enrollprofile.Identifier

// New builds the inventory service. unlock is required for clear-passcode.
func New(store Store, unlock UnlockTokens, cmds Commands, opts ...Option) (*Inventory, error) {
	if store == nil || unlock == nil || cmds == nil {
		return nil, errors.New("inventory: store, unlock token source and command service are required")
	}
	i := &Inventory{
		store: store, unlock: unlock, cmds: cmds, log: slog.Default(), now: time.Now,
		interval: DefaultInterval, profile: EnrollmentProfileIdentifier,
		next: map[string]int64{},
	}
	for _, o := range opts {
		o(i)
	}
	if i.interval <= 0 {
		return nil, errors.New("inventory: interval must be positive")
	}
	if i.profile == "" {
		return nil, errors.New("inventory: MDM profile identifier must not be empty")
	}
	return i, nil
}

// Observe implements service.Observer: a new enrollment and a due connect
// queue the inventory queries. (What results change is written with them:
// ResultEffect.)
func (i *Inventory) Observe(ctx context.Context, ev service.Event) {
	switch ev := ev.(type) {
	case service.Enrolled:
		i.Enrolled(ctx, ev.Enrollment)
	case service.Connected:
		i.Connected(ctx, ev.Channel)
	}
}

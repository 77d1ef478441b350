package enroll

import (
	"context"
	"errors"
	"log/slog"

	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/storage"
)

// ADEProfiles knows the ADE devices: it marks them enrolled and says
// what their assigned profile asks for after enrollment (dep.Service).
type ADEProfiles interface {
	MarkEnrolled(ctx context.Context, serial string) error
	SetupCommands(ctx context.Context, serial, modelName string, awaiting bool) ([]map[string]any, error)
}

// Commands encodes and queues the setup commands (the command service).
type Commands interface {
	Encode(cmd map[string]any) (*storage.Command, error)
	Queue(ctx context.Context, channels []string, wake command.Wake, cmds ...*storage.Command) (int, error)
}

// ADESetup observes the MDM service for ADE devices: an Authenticate marks
// the device enrolled in the ABM device list, and the enrollment's first
// TokenUpdate queues what its profile asks for (name, Shared iPad
// settings, cellular plan; DeviceConfigured when it waits in Setup
// Assistant) and wakes it. Other devices are left alone.
type ADESetup struct {
	profiles ADEProfiles
	cmds     Commands
	log      *slog.Logger
}

// NewADESetup builds the observer; log may be nil for slog.Default.
func NewADESetup(profiles ADEProfiles, cmds Commands, log *slog.Logger) (*ADESetup, error) {
	if profiles == nil || cmds == nil {
		return nil, errors.New("enroll: ADE profiles and command service are required")
	}
	if log == nil {
		log = slog.Default()
	}
	return &ADESetup{profiles: profiles, cmds: cmds, log: log}, nil
}

// Observe implements service.Observer.
func (a *ADESetup) Observe(ctx context.Context, ev service.Event) {
	switch ev := ev.(type) {
	case service.Authenticated:
		a.authenticated(ctx, ev.Enrollment)
	case service.Enrolled:
		a.enrolled(ctx, ev.Enrollment)
	}
}

func (a *ADESetup) authenticated(ctx context.Context, e *storage.Enrollment) {
	if e.Facts == nil || e.Facts.SerialNumber == "" {
		return
	}
	if err := a.profiles.MarkEnrolled(ctx, e.Facts.SerialNumber); err != nil && !errors.Is(err, storage.ErrNotFound) {
		a.log.Error("mark ADE device enrolled", "serial", e.Facts.SerialNumber, "err", err)
	}
}

func (a *ADESetup) enrolled(ctx context.Context, e *storage.Enrollment) {
	if e.Facts == nil || e.Facts.SerialNumber == "" {
		return
	}
	built, err := a.profiles.SetupCommands(ctx, e.Facts.SerialNumber, e.Facts.ModelName, e.AwaitingConfiguration)
	if err != nil {
		a.log.Error("ADE setup commands", "device", e.ID, "err", err)
		return
	}
	cmds := make([]*storage.Command, len(built))
	for n, c := range built {
		if cmds[n], err = a.cmds.Encode(c); err != nil {
			a.log.Error("queue ADE setup command", "device", e.ID, "err", err)
			return
		}
	}
	if _, err := a.cmds.Queue(ctx, []string{e.ID}, command.Push, cmds...); err != nil {
		a.log.Error("queue ADE setup command", "device", e.ID, "err", err)
	}
}

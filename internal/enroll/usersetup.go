package enroll

import (
	"context"
	"errors"
	"log/slog"

	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/mdm/service"
)

// UserSetup observes the MDM service for new user channels: one that
// reports AwaitingConfiguration (a Shared iPad user signing in waits at
// the setup screens for it) is sent UserConfigured. Orchard queues no
// per-user setup commands, so the user's setup is done as soon as the
// channel exists; anything an admin queues for the user afterwards is
// delivered once it is signed in.
type UserSetup struct {
	cmds Commands
	log  *slog.Logger
}

// NewUserSetup builds the observer; log may be nil for slog.Default.
func NewUserSetup(cmds Commands, log *slog.Logger) (*UserSetup, error) {
	if cmds == nil {
		return nil, errors.New("enroll: user setup needs the command service")
	}
	if log == nil {
		log = slog.Default()
	}
	return &UserSetup{cmds: cmds, log: log}, nil
}

// Observe implements service.Observer.
func (u *UserSetup) Observe(ctx context.Context, ev service.Event) {
	ue, ok := ev.(service.UserEnrolled)
	if !ok || !ue.Enrollment.AwaitingConfiguration {
		return
	}
	id := ue.Enrollment.ID
	cmd, err := u.cmds.Encode(map[string]any{"RequestType": "UserConfigured"})
	if err == nil {
		_, err = u.cmds.Queue(ctx, []string{id}, command.Push, cmd)
	}
	if err != nil {
		u.log.Error("queue UserConfigured", "channel", id, "err", err)
		return
	}
	u.log.Info("user channel awaits configuration: UserConfigured queued", "channel", id, "command", cmd.UUID)
}

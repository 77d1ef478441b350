package simdevice

import (
	"context"
	"crypto/sha256"
)

// User is a user channel on a simulated device: a macOS user (its UserID)
// or a Shared iPad user, who sends Apple's fixed Shared iPad UserID and is
// told apart by ShortName (the Managed Apple Account).
type User struct {
	UserID    string
	ShortName string
	LongName  string
	Token     []byte
	PushMagic string
}

// sharedIPadUserID is what every Shared iPad user sends as UserID.
const sharedIPadUserID = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

// SharedIPadUser returns a user of a Shared iPad with a push token of its own.
func SharedIPadUser(managedAppleID string) User {
	sum := sha256.Sum256([]byte(managedAppleID))
	return User{UserID: sharedIPadUserID, ShortName: managedAppleID, LongName: managedAppleID,
		Token: sum[:], PushMagic: "USERMAGIC-" + managedAppleID}
}

func (d *Device) userKeys(u User) map[string]any {
	m := map[string]any{"UDID": d.UDID, "UserID": u.UserID}
	if u.ShortName != "" {
		m["UserShortName"] = u.ShortName
	}
	if u.LongName != "" {
		m["UserLongName"] = u.LongName
	}
	return m
}

// UserTokenUpdate sends a user channel's TokenUpdate (the user signed in);
// awaiting says the user waits in setup for UserConfigured.
func (d *Device) UserTokenUpdate(ctx context.Context, u User, awaiting bool) error {
	msg := d.userKeys(u)
	msg["MessageType"], msg["Topic"], msg["Token"], msg["PushMagic"] = "TokenUpdate", d.Topic, u.Token, u.PushMagic
	if awaiting {
		msg["AwaitingConfiguration"] = true
	}
	_, err := d.Checkin(ctx, msg)
	return err
}

// UserReport sends a report on a user channel and returns its next command.
func (d *Device) UserReport(ctx context.Context, u User, status, commandUUID string) (*Command, error) {
	extra := d.userKeys(u)
	delete(extra, "UDID")
	return d.Report(ctx, status, commandUUID, extra)
}

// UserDrain connects on a user channel until it has nothing more, acknowledging each command.
func (d *Device) UserDrain(ctx context.Context, u User) ([]*Command, error) {
	var done []*Command
	cmd, err := d.UserReport(ctx, u, "Idle", "")
	for err == nil && cmd != nil && len(done) < 10_000 {
		done = append(done, cmd)
		cmd, err = d.UserReport(ctx, u, "Acknowledged", cmd.UUID)
	}
	return done, err
}

// UserDeclarative sends a DeclarativeManagement check-in on a user channel
// (a macOS or Shared iPad user's declarations are their own).
func (d *Device) UserDeclarative(ctx context.Context, u User, endpoint string, data []byte) ([]byte, error) {
	msg := d.userKeys(u)
	msg["MessageType"], msg["Endpoint"] = "DeclarativeManagement", endpoint
	if data != nil {
		msg["Data"] = data
	}
	return d.Checkin(ctx, msg)
}

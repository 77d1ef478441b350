package storage

import "context"

// ChannelCommand is one command as one channel saw it: the command (without
// its plist), the channel's target state, and the channel's latest result
// (nil before the device answered).
type ChannelCommand struct {
	Command Command `json:"command"`
	Target  Target  `json:"target"`
	Result  *Result `json:"result,omitempty"`
}

// CommandHistory answers a channel's command history; its cost depends on
// the page asked for, never on the size of the fleet or of bulk commands.
type CommandHistory interface {
	// ChannelCommands returns up to limit of the channel's commands, newest
	// first (by queue position), whose target Seq is below before (0: from
	// the newest).
	ChannelCommands(ctx context.Context, channel string, before uint64, limit int) ([]ChannelCommand, error)
}

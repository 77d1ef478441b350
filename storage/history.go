package storage

import (
	"context"
	"strings"
	"time"
)

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

// CommandLogScan bounds the targets one CommandLog.ListCommands call
// examines, so a filter that matches rarely costs a bounded read per page.
const CommandLogScan = 10_000

// CommandFilter selects entries of the fleet-wide command log; zero fields
// match everything.
type CommandFilter struct {
	RequestType string
	Status      TargetStatus
	// Sender matches the command's Sender; an admin's name also matches
	// the commands that admin's tokens queued ("alice" matches
	// "alice/token:1f2e").
	Sender string
	// Since and Until bound when the command was queued: Since <= time < Until.
	Since, Until time.Time
	// Before is the cursor: only targets whose Seq is below it (0: from the newest).
	Before uint64
	// Limit is the page size (<= 0: 50).
	Limit int
}

// SenderMatches says whether a command's sender is selected by the
// filter's Sender.
func (f *CommandFilter) SenderMatches(sender string) bool {
	return f.Sender == "" || sender == f.Sender || strings.HasPrefix(sender, f.Sender+SenderTokenSep)
}

// SenderTokenSep joins an admin's name and a token ID in a Sender.
const SenderTokenSep = "/token:"

// SinceSlack is how far before Since the command log keeps looking: the
// log is in commit order while a command's time is taken just before its
// commit, so a command committed later may carry a slightly earlier time.
const SinceSlack = time.Minute

// CommandLog is every command target of the fleet in one list, newest
// first, on an index of queue positions: its cost depends on the page and
// the filters, never on the fleet's size.
type CommandLog interface {
	// ListCommands returns up to f.Limit targets matching f, newest first
	// by Seq (the order their commands were committed), each with its
	// command (without the plist) and latest result, and the Before of the
	// next page: 0 when no older target is left to examine. One call
	// examines at most CommandLogScan targets, so with filters that
	// rarely match a page may hold fewer than Limit, even none, and still
	// have a next. With Since set the scan ends at the first target queued
	// more than SinceSlack before Since.
	ListCommands(ctx context.Context, f CommandFilter) ([]ChannelCommand, uint64, error)
}

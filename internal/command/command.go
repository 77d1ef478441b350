// Package command owns the one path every MDM command Orchard sends takes:
// build it (from typed JSON or a raw plist) and check it against Apple's
// schema, check each target can receive it, give it a UUID, encode it,
// queue it for all its channels in one durable write, count it and wake
// the channels. The admin API, remote actions, inventory queries and ADE
// setup all queue through a Service, so Service.Queue is the only place a
// command enters a queue.
package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/commands"
	"github.com/orchardmdm/orchard/storage"
)

// Enqueuer stores a command and queues it on channels in one write
// (storage.CommandQueue's contract).
type Enqueuer interface {
	Enqueue(ctx context.Context, cmd *storage.Command, channels []string) error
}

// Enrollments looks up a channel's enrollment.
type Enrollments interface {
	Enrollment(ctx context.Context, id string) (*storage.Enrollment, error)
}

// Pusher wakes channels after commands are queued for them. It must return
// promptly; pushes proceed in the background.
type Pusher interface {
	PushChannels(ctx context.Context, channels []string)
}

// Targets tells what Orchard knows of a channel for Apple's eligibility
// rules (the inventory does).
type Targets interface {
	Target(ctx context.Context, e *storage.Enrollment) commands.Target
}

// TargetsFunc adapts a function to Targets; it lets the command service be
// built before the inventory that answers for targets and queues through it.
type TargetsFunc func(ctx context.Context, e *storage.Enrollment) commands.Target

// Target implements Targets.
func (f TargetsFunc) Target(ctx context.Context, e *storage.Enrollment) commands.Target {
	return f(ctx, e)
}

// Observer is told how many channels each queued command went to.
type Observer interface {
	CommandsEnqueued(requestType string, n int)
}

type nopObserver struct{}

func (nopObserver) CommandsEnqueued(string, int) {}

// MaxTargets bounds the targets of one Send.
const MaxTargets = 100_000

// Service is the command service. It is safe for concurrent use.
type Service struct {
	queue   Enqueuer
	enr     Enrollments
	pusher  Pusher
	targets Targets
	obs     Observer
	log     *slog.Logger
	now     func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithTargets sets what answers for a target's platform, supervision and
// the like; without it only the enrollment's check-in facts are known.
func WithTargets(t Targets) Option { return func(s *Service) { s.targets = t } }

// WithObserver sets the metrics observer.
func WithObserver(o Observer) Option { return func(s *Service) { s.obs = o } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock sets the time source of CreatedAt.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New builds a Service over a queue, the enrollments and a pusher.
func New(queue Enqueuer, enrollments Enrollments, pusher Pusher, opts ...Option) (*Service, error) {
	if queue == nil || enrollments == nil || pusher == nil {
		return nil, errors.New("command: queue, enrollments and pusher are required")
	}
	s := &Service{queue: queue, enr: enrollments, pusher: pusher, obs: nopObserver{}, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if s.obs == nil || s.log == nil || s.now == nil {
		return nil, errors.New("command: nil option value")
	}
	return s, nil
}

// Invalid is a refused command or request; its message is one line, safe
// to show whoever sent it.
type Invalid struct{ Reason string }

func (e *Invalid) Error() string { return e.Reason }

func invalidf(format string, args ...any) error {
	return &Invalid{Reason: fmt.Sprintf(format, args...)}
}

// ErrNoTarget: none of a request's targets can receive the command; the
// Outcome says why for each.
var ErrNoTarget = errors.New("no target can receive the command")

// Request is a command for one or more targets: either RequestType with
// Payload (typed JSON, converted and checked by mdm/commands) or Plist (a
// raw XML {CommandUUID, Command} envelope or a bare Command dictionary).
type Request struct {
	// Targets are device or channel IDs, 1..MaxTargets.
	Targets []string
	// UserID, when set, targets that user's channel on every target device.
	UserID      string
	RequestType string
	Payload     map[string]any
	Plist       []byte
	// NoPush leaves the channels to pick the command up on their next
	// connect.
	NoPush bool
	// AllowUnknown accepts a Plist with keys or a request type newer than
	// the bundled schema; each unknown one is a warning in the Outcome.
	AllowUnknown bool
}

// TargetResult says what happened for one target.
type TargetResult struct {
	Target string `json:"target"`
	Queued bool   `json:"queued"`
	Error  string `json:"error,omitempty"`
	// Warnings name keys the target's platform does not support: the
	// device ignores or rejects them.
	Warnings []string `json:"warnings,omitempty"`
}

// Outcome is what Send did.
type Outcome struct {
	UUID        string
	RequestType string
	Targets     []TargetResult
	// Warnings name what the schema did not know (AllowUnknown): sent
	// unchecked.
	Warnings []string
}

// Send builds and checks a request's command, checks every target is an
// enrolled channel that may receive it, and queues it for all that may in
// one write. Bad input is an *Invalid; when no target may receive it, the
// error is ErrNoTarget and the Outcome says why for each target.
func (s *Service) Send(ctx context.Context, req *Request) (*Outcome, error) {
	uuid, cmd, unknown, err := s.build(req)
	if err != nil {
		return nil, err
	}
	if len(req.Targets) == 0 || len(req.Targets) > MaxTargets {
		return nil, invalidf("targets: give 1..%d device or channel IDs", MaxTargets)
	}
	rt, _ := cmd["RequestType"].(string)
	spec, _ := commands.Lookup(rt)
	out := &Outcome{UUID: uuid, RequestType: rt}
	for _, u := range unknown {
		out.Warnings = append(out.Warnings, u+" is not in the bundled schema: sent unchecked")
	}
	var channels []string
	out.Targets, channels = s.resolve(ctx, spec, cmd, req.Targets, req.UserID)
	if len(channels) == 0 {
		return out, ErrNoTarget
	}
	c, err := s.encode(uuid, cmd)
	if err != nil {
		return nil, err
	}
	push := Push
	if req.NoPush {
		push = NoPush
	}
	if _, err := s.Queue(ctx, channels, push, c); err != nil {
		return nil, err
	}
	for _, u := range unknown {
		s.log.Warn("command sent with what the bundled schema does not know", "command", uuid, "request_type", rt, "unknown", u)
	}
	s.log.Info("command queued", "command", uuid, "request_type", rt, "targets", len(channels))
	return out, nil
}

func (s *Service) build(req *Request) (string, mdm.CommandPayload, []string, error) {
	switch {
	case len(req.Plist) > 0 && req.RequestType != "":
		return "", nil, nil, invalidf("give either plist or request_type, not both")
	case len(req.Plist) > 0:
		validate := commands.ValidatePlist
		if req.AllowUnknown {
			validate = commands.ValidatePlistAllowUnknown
		}
		checked, err := validate(req.Plist)
		if err != nil {
			return "", nil, nil, invalidf("plist: %v", err)
		}
		uuid := checked.CommandUUID
		if uuid == "" {
			uuid = mdm.NewUUID()
		}
		if len(uuid) > mdm.MaxCommandUUIDLen {
			return "", nil, nil, invalidf("plist: CommandUUID longer than %d bytes", mdm.MaxCommandUUIDLen)
		}
		return uuid, checked.Command, checked.Unknown, nil
	case req.AllowUnknown:
		// A typed payload has nowhere to carry what the schema lacks.
		return "", nil, nil, invalidf("allow_unknown applies to plist commands only")
	case req.RequestType != "":
		cmd, err := commands.BuildCommand(req.RequestType, req.Payload)
		if err != nil {
			return "", nil, nil, invalidf("%v", err)
		}
		return mdm.NewUUID(), cmd, nil, nil
	}
	return "", nil, nil, invalidf("give a command: plist (base64) or request_type with payload")
}

// resolve turns device IDs (plus an optional user) into enrolled channels,
// reporting each target that cannot receive the command.
func (s *Service) resolve(ctx context.Context, spec *commands.Command, cmd mdm.CommandPayload, targets []string, user string) ([]TargetResult, []string) {
	results := make([]TargetResult, 0, len(targets))
	var channels []string
	seen := map[string]bool{}
	for _, t := range targets {
		id := t
		if user != "" {
			id = t + mdm.ChannelSeparator + user
		}
		res := TargetResult{Target: id}
		switch _, err := mdm.ParseChannelID(id); {
		case err != nil:
			res.Error = "invalid id: " + err.Error()
		case seen[id]:
			res.Error = "listed twice"
		default:
			e, err := s.enr.Enrollment(ctx, id)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				res.Error = "unknown device or channel"
			case err != nil:
				res.Error = "lookup failed"
				s.log.Error("resolve command target", "target", id, "err", err)
			case !e.Enrolled:
				res.Error = "not enrolled"
			default:
				if spec == nil { // a request type newer than the schema (AllowUnknown)
					res.Queued = true
					channels = append(channels, id)
					break
				}
				t := s.target(ctx, e)
				if err := spec.Eligible(t); err != nil {
					res.Error = err.Error()
					break
				}
				res.Warnings = spec.Unsupported(t.Platform, cmd)
				res.Queued = true
				channels = append(channels, id)
			}
		}
		seen[id] = true
		results = append(results, res)
	}
	return results, channels
}

// target is what Orchard knows of a channel for Apple's eligibility
// rules; what it does not know never refuses.
func (s *Service) target(ctx context.Context, e *storage.Enrollment) commands.Target {
	if s.targets != nil {
		return s.targets.Target(ctx, e)
	}
	t := commands.Target{Channel: commands.DeviceChannel}
	if e.ID != e.DeviceID {
		t.Channel = commands.UserChannel
	}
	t.UserEnrollment = commands.Known(e.Type == storage.UserEnrollmentDevice || e.Type == storage.UserEnrollment)
	facts := e.Facts
	if facts == nil {
		if dev, err := s.enr.Enrollment(ctx, e.DeviceID); err == nil {
			facts = dev.Facts
		}
	}
	if facts != nil {
		t.Platform = mdm.Platform(facts.ProductName, facts.Model)
		t.OSVersion = facts.OSVersion
	}
	return t
}

// Build checks a system-issued command against Apple's schema and encodes
// it under a new UUID, ready for Queue. Its errors wrap *commands.Error
// when the schema refuses the payload.
func (s *Service) Build(requestType string, payload map[string]any) (*storage.Command, error) {
	cmd, err := commands.BuildCommand(requestType, payload)
	if err != nil {
		return nil, err
	}
	return s.encode(mdm.NewUUID(), cmd)
}

// Encode encodes a command already built and checked (for instance by
// commands.BuildCommand) under a new UUID, ready for Queue.
func (s *Service) Encode(cmd map[string]any) (*storage.Command, error) {
	return s.encode(mdm.NewUUID(), cmd)
}

func (s *Service) encode(uuid string, cmd mdm.CommandPayload) (*storage.Command, error) {
	raw, err := mdm.EncodeCommand(uuid, cmd)
	if err != nil {
		return nil, invalidf("%v", err)
	}
	rt, _ := cmd["RequestType"].(string)
	return &storage.Command{UUID: uuid, RequestType: rt, Raw: raw, CreatedAt: s.now()}, nil
}

// Wake says whether Queue pushes the channels after queueing.
type Wake bool

const (
	Push   Wake = true  // wake the channels now
	NoPush Wake = false // they are connected already, or will be woken later
)

// Queue queues cmds, in order, each for every channel in one write, counts
// them, and pushes the channels once when wake is Push and all were
// queued. It returns how many of cmds were queued; after an error the rest
// are not, and nothing is pushed. Storage errors are returned as they are (a channel that is not
// enrolled wraps storage.ErrNotFound). Each command's Sender, unless set,
// is the admin actor of ctx. This is the only place Orchard queues commands.
func (s *Service) Queue(ctx context.Context, channels []string, wake Wake, cmds ...*storage.Command) (int, error) {
	sender := ""
	if a := adminauth.ActorFrom(ctx); a != nil {
		sender = a.String()
	}
	for n, c := range cmds {
		if c.Sender == "" {
			c.Sender = sender // who asked; "" when Orchard issues it itself
		}
		if err := s.queue.Enqueue(ctx, c, channels); err != nil {
			return n, err
		}
		s.obs.CommandsEnqueued(c.RequestType, len(channels))
		s.log.Debug("command queued", "command", c.UUID, "request_type", c.RequestType, "targets", len(channels))
	}
	if len(cmds) > 0 && wake == Push {
		s.pusher.PushChannels(context.WithoutCancel(ctx), channels)
	}
	return len(cmds), nil
}

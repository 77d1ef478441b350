package profiles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/storage"
)

// Store is what the reconciler reads and writes.
type Store interface {
	ListProfiles(ctx context.Context, after string, limit int) ([]storage.Profile, error)
	GetProfileVersion(ctx context.Context, id string, version int) (*storage.ProfileVersion, error)
	ChannelProfiles(ctx context.Context, channelID string) ([]storage.ChannelProfile, error)
	PutChannelProfiles(ctx context.Context, states []storage.ChannelProfile) error
	ProfileStates(ctx context.Context, profileID, after string, limit int) ([]storage.ChannelProfile, error)
}

// Commander queues commands; *command.Service is one.
type Commander interface {
	Encode(cmd map[string]any) (*storage.Command, error)
	Queue(ctx context.Context, channels []string, wake command.Wake, cmds ...*storage.Command) (int, error)
}

// BatchSize bounds the channels one reconcile pass handles: each pass is
// one state write and one enqueue per distinct command.
const BatchSize = 500

// Reconciler keeps each channel's profiles what their scopes say. Work is
// a queue of channel IDs (deduplicated); Drain handles it in batches.
type Reconciler struct {
	store    Store
	cmds     Commander
	resolver *scope.Resolver
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	queue   []string
	queued  map[string]bool
	library []desired // nil: reload
	wake    chan struct{}
}

type desired struct {
	p     storage.Profile
	scope scope.Scope
	data  []byte
}

// New returns a reconciler; resolver answers the scopes.
func New(store Store, cmds Commander, resolver *scope.Resolver, log *slog.Logger) (*Reconciler, error) {
	if store == nil || cmds == nil || resolver == nil || resolver.Devices == nil {
		return nil, errors.New("profiles: store, commander and resolver are required")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Reconciler{store: store, cmds: cmds, resolver: resolver, log: log, now: time.Now,
		queued: map[string]bool{}, wake: make(chan struct{}, 1)}, nil
}

// Enqueue adds channels to the work queue (each once).
func (r *Reconciler) Enqueue(channels ...string) {
	r.mu.Lock()
	for _, c := range channels {
		if !r.queued[c] {
			r.queued[c] = true
			r.queue = append(r.queue, c)
		}
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Pending is the length of the work queue.
func (r *Reconciler) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// ScopeChanged queues the channels a profile's scope (or version) change
// can touch: those now in scope and those holding a state of it.
func (r *Reconciler) ScopeChanged(ctx context.Context, profileID string) error {
	lib, err := r.loadLibrary(ctx, true)
	if err != nil {
		return err
	}
	for _, d := range lib {
		if d.p.ID != profileID {
			continue
		}
		chs, err := r.resolver.Resolve(ctx, d.scope)
		if err != nil {
			return fmt.Errorf("profiles: resolve %s: %w", profileID, err)
		}
		ids := make([]string, len(chs))
		for i, c := range chs {
			ids[i] = c.ID
		}
		r.Enqueue(ids...)
	}
	after := ""
	for {
		sts, err := r.store.ProfileStates(ctx, profileID, after, 1000)
		if err != nil {
			return fmt.Errorf("profiles: states of %s: %w", profileID, err)
		}
		if len(sts) == 0 {
			return nil
		}
		for _, st := range sts {
			r.Enqueue(st.ChannelID)
		}
		after = sts[len(sts)-1].ChannelID
	}
}

// MembershipChanged is the hook for group and category changes: the
// devices whose membership changed, and their user channels, are
// reconciled again.
func (r *Reconciler) MembershipChanged(ctx context.Context, deviceIDs ...string) {
	for _, id := range deviceIDs {
		r.Enqueue(id)
		d, ok, err := r.resolver.Devices.Device(ctx, id)
		if err != nil {
			r.log.Error("profiles: device after a membership change", "device", id, "err", err)
			continue
		}
		if !ok {
			continue
		}
		users, err := r.resolver.UsersOf(ctx, d)
		if err != nil {
			r.log.Error("profiles: users after a membership change", "device", id, "err", err)
			continue
		}
		r.Enqueue(users...)
	}
}

// Run drains the queue whenever work arrives, until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		if err := r.Drain(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("reconcile profiles", "err", err)
		}
	}
}

// Drain reconciles every queued channel, BatchSize at a time. Channels of
// a failed batch go back on the queue.
func (r *Reconciler) Drain(ctx context.Context) error {
	for {
		r.mu.Lock()
		n := min(len(r.queue), BatchSize)
		batch := r.queue[:n:n]
		r.queue = r.queue[n:]
		for _, c := range batch {
			delete(r.queued, c)
		}
		r.mu.Unlock()
		if n == 0 {
			return nil
		}
		if err := r.Reconcile(ctx, batch); err != nil {
			r.Enqueue(batch...)
			return err
		}
	}
}

type action struct {
	profile string
	version int
}

// Reconcile brings channels to their desired profiles now: it queues one
// InstallProfile per profile version and one RemoveProfile per profile for
// all the channels that need it, and writes their states in one write.
func (r *Reconciler) Reconcile(ctx context.Context, channels []string) error {
	lib, err := r.loadLibrary(ctx, false)
	if err != nil {
		return err
	}
	now := r.now()
	installs := map[action][]string{}
	removes := map[string][]string{}
	var states []storage.ChannelProfile
	var order []action
	for _, ch := range channels {
		// A user channel (device:user) is in scope through its device.
		devID, _, _ := strings.Cut(ch, mdm.ChannelSeparator)
		d, ok, err := r.resolver.Devices.Device(ctx, devID)
		if err != nil {
			return fmt.Errorf("profiles: device %s: %w", devID, err)
		}
		current, err := r.store.ChannelProfiles(ctx, ch)
		if err != nil {
			return fmt.Errorf("profiles: states of %s: %w", ch, err)
		}
		have := make(map[string]*storage.ChannelProfile, len(current))
		for i := range current {
			have[current[i].ProfileID] = &current[i]
		}
		want := map[string]bool{}
		for i := range lib {
			in := false
			if ok {
				chs, err := r.resolver.ChannelsOf(ctx, lib[i].scope, d)
				if err != nil {
					return fmt.Errorf("profiles: scope of %s: %w", lib[i].p.ID, err)
				}
				in = slices.ContainsFunc(chs, func(c scope.Channel) bool { return c.ID == ch })
			}
			if !in {
				continue
			}
			p := &lib[i].p
			want[p.ID] = true
			st := have[p.ID]
			if !needsInstall(st, p.Version, p.UUID) {
				continue
			}
			a := action{p.ID, p.Version}
			if installs[a] == nil {
				order = append(order, a)
			}
			installs[a] = append(installs[a], ch)
			next := storage.ChannelProfile{ProfileID: p.ID, ChannelID: ch, Version: p.Version, UUID: p.UUID,
				State: storage.ProfilePending, UpdatedAt: now, Attempts: 1}
			if st != nil && st.Version == p.Version && st.UUID == p.UUID && st.State == storage.ProfilePending {
				next.Attempts = st.Attempts + 1
				next.Errors = st.Errors
			}
			states = append(states, next)
		}
		for _, st := range current {
			if !want[st.ProfileID] && needsRemoval(&st) {
				removes[st.ProfileID] = append(removes[st.ProfileID], ch)
			}
		}
	}
	// Commands first, so a state never names a command that was not queued.
	for _, a := range order {
		chs := installs[a]
		v, err := r.store.GetProfileVersion(ctx, a.profile, a.version)
		if err != nil {
			return fmt.Errorf("profiles: %s version %d: %w", a.profile, a.version, err)
		}
		c, err := r.cmds.Encode(map[string]any{"RequestType": "InstallProfile", "Payload": v.Data})
		if err != nil {
			return fmt.Errorf("profiles: encode %s: %w", a.profile, err)
		}
		if _, err := r.cmds.Queue(ctx, chs, command.Push, c); err != nil {
			return fmt.Errorf("profiles: queue %s: %w", a.profile, err)
		}
		for i := range states {
			if states[i].ProfileID == a.profile && states[i].Version == a.version && states[i].CommandUUID == "" {
				states[i].CommandUUID = c.UUID
			}
		}
	}
	for id, chs := range removes {
		c, err := r.cmds.Encode(map[string]any{"RequestType": "RemoveProfile", "Identifier": id})
		if err != nil {
			return fmt.Errorf("profiles: encode removal of %s: %w", id, err)
		}
		if _, err := r.cmds.Queue(ctx, chs, command.Push, c); err != nil {
			return fmt.Errorf("profiles: queue removal of %s: %w", id, err)
		}
		for _, ch := range chs {
			st := storage.ChannelProfile{ProfileID: id, ChannelID: ch, State: storage.ProfileRemoving, CommandUUID: c.UUID, UpdatedAt: now}
			states = append(states, st)
		}
	}
	if len(states) == 0 {
		return nil
	}
	if err := r.store.PutChannelProfiles(ctx, states); err != nil {
		return fmt.Errorf("profiles: write states: %w", err)
	}
	return nil
}

// LibraryChanged drops the cached library: the next pass reloads it.
func (r *Reconciler) LibraryChanged() {
	r.mu.Lock()
	r.library = nil
	r.mu.Unlock()
}

func (r *Reconciler) loadLibrary(ctx context.Context, fresh bool) ([]desired, error) {
	r.mu.Lock()
	lib := r.library
	r.mu.Unlock()
	if lib != nil && !fresh {
		return lib, nil
	}
	ps, err := r.store.ListProfiles(ctx, "", 0)
	if err != nil {
		return nil, fmt.Errorf("profiles: list: %w", err)
	}
	lib = make([]desired, 0, len(ps))
	for _, p := range ps {
		d := desired{p: p}
		if len(p.Scope) > 0 {
			if err := json.Unmarshal(p.Scope, &d.scope); err != nil {
				return nil, fmt.Errorf("profiles: scope of %s: %w", p.ID, err)
			}
		}
		lib = append(lib, d)
	}
	r.mu.Lock()
	r.library = lib
	r.mu.Unlock()
	return lib, nil
}

// Observe implements service.Observer: an enrolled device is reconciled at
// once (so its profiles are queued ahead of what later observers queue,
// DeviceConfigured among them); results move states and may requeue.
func (r *Reconciler) Observe(ctx context.Context, ev service.Event) {
	switch ev := ev.(type) {
	case service.Enrolled:
		if err := r.Reconcile(ctx, []string{ev.Enrollment.ID}); err != nil {
			r.log.Error("reconcile profiles of an enrolled device", "device", ev.Enrollment.ID, "err", err)
		}
	case service.UserEnrolled:
		// A macOS or Shared iPad user signed in: the user's own profiles.
		if err := r.Reconcile(ctx, []string{ev.Enrollment.ID}); err != nil {
			r.log.Error("reconcile profiles of an enrolled user", "channel", ev.Enrollment.ID, "err", err)
		}
	case service.CommandDelivered:
		if ev.Command.RequestType == "InstallProfile" {
			r.delivered(ctx, ev.Channel, ev.Command.UUID)
		}
	case service.ResultStored:
		if err := r.result(ctx, ev.Result); err != nil {
			r.log.Error("profile result", "channel", ev.Result.ChannelID, "command", ev.Result.CommandUUID, "err", err)
		}
	}
}

func (r *Reconciler) delivered(ctx context.Context, ch, uuid string) {
	sts, err := r.store.ChannelProfiles(ctx, ch)
	if err != nil {
		r.log.Error("profile delivered", "channel", ch, "err", err)
		return
	}
	for _, st := range sts {
		if st.CommandUUID == uuid && st.State == storage.ProfilePending {
			st.State, st.UpdatedAt = storage.ProfileSent, r.now()
			if err := r.store.PutChannelProfiles(ctx, []storage.ChannelProfile{st}); err != nil {
				r.log.Error("profile delivered", "channel", ch, "err", err)
			}
		}
	}
}

func (r *Reconciler) result(ctx context.Context, res *storage.Result) error {
	switch res.RequestType {
	case "InstallProfile", "RemoveProfile", "ProfileList":
	default:
		return nil
	}
	if !res.Status.Final() {
		return nil
	}
	sts, err := r.store.ChannelProfiles(ctx, res.ChannelID)
	if err != nil {
		return err
	}
	now := r.now()
	var changed []storage.ChannelProfile
	requeue, verify := false, false
	if res.RequestType == "ProfileList" {
		if res.Status != storage.Acknowledged {
			return nil
		}
		var list struct{ ProfileList []Installed }
		if err := mdm.Unmarshal(res.Raw, &list); err != nil {
			return fmt.Errorf("decode ProfileList: %w", err)
		}
		have := make(map[string]string, len(list.ProfileList))
		for _, p := range list.ProfileList {
			have[p.PayloadIdentifier] = p.PayloadUUID
		}
		lib, err := r.loadLibrary(ctx, false)
		if err != nil {
			return err
		}
		reinstall := map[string]bool{}
		for _, d := range lib {
			reinstall[d.p.ID] = d.p.Reinstall
		}
		for _, st := range sts {
			rq, ch := listed(&st, have, reinstall[st.ProfileID], now)
			requeue = requeue || rq
			if ch {
				changed = append(changed, st)
			}
		}
	} else {
		for _, st := range sts {
			if st.CommandUUID != res.CommandUUID {
				continue
			}
			if res.RequestType == "InstallProfile" {
				requeue = installResult(&st, res, now) || requeue
				verify = verify || st.State == storage.ProfileSent
			} else {
				removeResult(&st, res, now)
			}
			changed = append(changed, st)
		}
	}
	if len(changed) > 0 {
		if err := r.store.PutChannelProfiles(ctx, changed); err != nil {
			return err
		}
	}
	if verify {
		// Installed: ask for the list to verify identifier and UUID.
		c, err := r.cmds.Encode(map[string]any{"RequestType": "ProfileList", "ManagedOnly": true})
		if err != nil {
			return err
		}
		if _, err := r.cmds.Queue(ctx, []string{res.ChannelID}, command.NoPush, c); err != nil {
			return err
		}
	}
	if requeue {
		r.Enqueue(res.ChannelID)
	}
	return nil
}

// Resend asks for a profile again on one channel, or, with channel "", on
// every channel where it failed: the state goes back to pending with a
// fresh attempt count and the channels are queued.
func (r *Reconciler) Resend(ctx context.Context, profileID, channel string) error {
	var targets []storage.ChannelProfile
	if channel != "" {
		sts, err := r.store.ChannelProfiles(ctx, channel)
		if err != nil {
			return err
		}
		for _, st := range sts {
			if st.ProfileID == profileID {
				targets = append(targets, st)
			}
		}
		if len(targets) == 0 {
			return fmt.Errorf("profiles: %s has no state on %s: %w", profileID, channel, storage.ErrNotFound)
		}
	} else {
		after := ""
		for {
			sts, err := r.store.ProfileStates(ctx, profileID, after, 1000)
			if err != nil {
				return err
			}
			if len(sts) == 0 {
				break
			}
			for _, st := range sts {
				if st.State == storage.ProfileFailed {
					targets = append(targets, st)
				}
			}
			after = sts[len(sts)-1].ChannelID
		}
	}
	ids := make([]string, 0, len(targets))
	for i := range targets {
		targets[i].State, targets[i].CommandUUID, targets[i].Attempts = storage.ProfilePending, "", 0
		targets[i].UpdatedAt = r.now()
		ids = append(ids, targets[i].ChannelID)
	}
	if len(targets) == 0 {
		return nil
	}
	if err := r.store.PutChannelProfiles(ctx, targets); err != nil {
		return err
	}
	r.Enqueue(ids...)
	return nil
}

// Counts returns how many channels are in each state of a profile.
func (r *Reconciler) Counts(ctx context.Context, profileID string) (map[storage.ProfileState]int, error) {
	out := map[storage.ProfileState]int{}
	after := ""
	for {
		sts, err := r.store.ProfileStates(ctx, profileID, after, 1000)
		if err != nil {
			return nil, err
		}
		if len(sts) == 0 {
			return out, nil
		}
		for _, st := range sts {
			out[st.State]++
		}
		after = sts[len(sts)-1].ChannelID
	}
}

func unmarshalScope(raw []byte, s *scope.Scope) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, s); err != nil {
		return fmt.Errorf("profiles: stored scope: %w", err)
	}
	return nil
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

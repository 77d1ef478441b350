package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// Request types the inventory queues or keeps the answers of.
const (
	rtDeviceInformation = "DeviceInformation"
	rtSecurityInfo      = "SecurityInfo"
	rtApps              = "InstalledApplicationList"
	rtProfiles          = "ProfileList"
	rtCertificates      = "CertificateList"
	rtLocation          = "DeviceLocation"
)

// kept lists the request types whose latest answer is stored per channel.
var kept = []string{rtDeviceInformation, rtSecurityInfo, rtApps, rtProfiles, rtCertificates, rtLocation}

var (
	// ErrOutstanding: inventory queries queued earlier are not answered yet.
	ErrOutstanding = errors.New("inventory queries are still outstanding")
	errRetired     = errors.New("device is retired")
)

// Enrolled queues the inventory queries for a newly enrolled device channel
// and pushes it. It runs on service.Enrolled.
func (i *Inventory) Enrolled(ctx context.Context, e *storage.Enrollment) {
	ctx = context.WithoutCancel(ctx)
	now := i.now()
	if _, err := i.refresh(ctx, e, true, false); err != nil {
		i.log.Warn("inventory: queue queries after enrollment", "device", e.ID, "err", err)
		i.setNext(e.ID, now.Add(retryAfter))
		return
	}
	i.setNext(e.ID, now.Add(i.interval))
	i.push(ctx, e.ID)
}

// Connected is called on every connect of a channel (the service's Report
// path, before it picks the next command). Once a device channel's inventory
// is older than the interval, it queues DeviceInformation and SecurityInfo,
// unless earlier ones are still outstanding. Most calls cost one map lookup.
func (i *Inventory) Connected(ctx context.Context, channel string) {
	if strings.Contains(channel, mdm.ChannelSeparator) {
		return // inventory is per device
	}
	now := i.now()
	i.mu.RLock()
	due, known := i.next[channel]
	i.mu.RUnlock()
	if known && now.UnixNano() < due {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if !known {
		rec, err := i.store.Inventory(ctx, channel)
		if err == nil && !rec.QueriedAt.IsZero() {
			if next := rec.QueriedAt.Add(i.interval); now.Before(next) {
				i.setNext(channel, next)
				return
			}
		}
	}
	e, err := i.store.Enrollment(ctx, channel)
	if err != nil || !e.Enrolled {
		i.setNext(channel, now.Add(i.interval))
		return
	}
	_, err = i.refresh(ctx, e, false, false)
	switch {
	case err == nil:
		i.setNext(channel, now.Add(i.interval))
	case errors.Is(err, ErrOutstanding), errors.Is(err, errRetired):
		i.setNext(channel, now.Add(retryAfter))
	default:
		i.log.Warn("inventory: queue periodic queries", "device", channel, "err", err)
		i.setNext(channel, now.Add(retryAfter))
	}
}

func (i *Inventory) setNext(channel string, at time.Time) {
	i.mu.Lock()
	i.next[channel] = at.UnixNano()
	i.mu.Unlock()
}

// push wakes channel and reports whether a notification was queued
// (never when no push certificate is installed or the device has no
// usable token), with the reason when not.
func (i *Inventory) push(ctx context.Context, channel string) (bool, error) {
	if i.pusher == nil {
		return false, errNoPusher
	}
	if err := i.pusher.Wake(ctx, channel); err != nil {
		i.log.Debug("inventory: device not pushed", "channel", channel, "err", err)
		return false, err
	}
	return true, nil
}

var errNoPusher = errors.New("push notifications are not configured on this server")

// refresh queues the inventory queries on a device channel (with the app,
// profile and certificate lists when full) and records them as pending.
// fresh marks a new enrollment: its facts win and a retired mark is lifted.
func (i *Inventory) refresh(ctx context.Context, e *storage.Enrollment, fresh, full bool) ([]string, error) {
	rec, err := i.store.Inventory(ctx, e.ID)
	if errors.Is(err, storage.ErrNotFound) {
		rec = &storage.DeviceInventory{DeviceID: e.ID}
	} else if err != nil {
		return nil, err
	}
	if rec.Retired && !fresh {
		return nil, errRetired
	}
	seen := rec.Pending
	if busy, err := i.outstanding(ctx, e.ID, seen); err != nil {
		return nil, err
	} else if busy {
		return nil, ErrOutstanding
	}
	platform := rec.Platform
	if platform == "" && e.Facts != nil {
		platform = platformOf(e.Facts.ProductName, e.Facts.ModelName)
	}
	queries := map[string]any{"Queries": queriesFor(platform, e.Type == storage.UserEnrollmentDevice)}
	reqs := []request{{rtDeviceInformation, queries}, {rtSecurityInfo, nil}}
	if full {
		reqs = append(reqs, request{rtApps, nil}, request{rtProfiles, nil}, request{rtCertificates, nil})
	}
	cmds := make([]*storage.Command, len(reqs))
	uuids := make([]string, len(reqs))
	for n, r := range reqs {
		if cmds[n], err = i.cmds.Build(r.rt, r.payload); err != nil {
			return nil, err
		}
		uuids[n] = cmds[n].UUID
	}
	now := i.now()
	_, err = i.store.UpdateInventory(ctx, e.ID, func(inv *storage.DeviceInventory) error {
		if !slices.Equal(inv.Pending, seen) {
			return fmt.Errorf("%w: another refresh was queued meanwhile", ErrOutstanding)
		}
		if inv.Retired && !fresh {
			return errRetired
		}
		seed(inv, e, now, fresh)
		if fresh {
			inv.Retired, inv.RetiredAt, inv.RetireCommand = false, time.Time{}, ""
		}
		inv.Pending, inv.QueriedAt = uuids, now
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The caller pushes (or not: Connected runs while the device is here).
	if n, err := i.cmds.Queue(ctx, []string{e.ID}, command.NoPush, cmds...); err != nil {
		i.dropPending(ctx, e.ID, uuids[n:])
		return uuids[:n], fmt.Errorf("queue %s: %w", cmds[n].RequestType, err)
	}
	return uuids, nil
}

type request struct {
	rt      string
	payload map[string]any
}

// outstanding reports whether any of the commands is still waiting for a
// final result on the channel. Commands canceled, superseded or gone count
// as answered.
func (i *Inventory) outstanding(ctx context.Context, channel string, uuids []string) (bool, error) {
	for _, u := range uuids {
		_, targets, err := i.store.Command(ctx, u)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		for _, t := range targets {
			if t.ChannelID == channel && !t.Status.Final() {
				return true, nil
			}
		}
	}
	return false, nil
}

func (i *Inventory) dropPending(ctx context.Context, channel string, uuids []string) {
	_, err := i.store.UpdateInventory(ctx, channel, func(inv *storage.DeviceInventory) error {
		inv.Pending = slices.DeleteFunc(slices.Clone(inv.Pending), func(u string) bool { return slices.Contains(uuids, u) })
		return nil
	})
	if err != nil {
		i.log.Error("inventory: forget queries that were not queued", "device", channel, "err", err)
	}
}

// seed fills a record from the enrollment's check-in facts: missing fields
// only, or all of them on a fresh enrollment.
func seed(inv *storage.DeviceInventory, e *storage.Enrollment, now time.Time, overwrite bool) {
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = now
	}
	if e.Ownership != "" {
		inv.Ownership = e.Ownership // decided by the enrollment policy, or by an admin
	} else {
		inv.Ownership = OwnershipOf(e.EnrollmentMethod, inv.Ownership)
	}
	if e.Type == storage.UserEnrollmentDevice {
		yes := true
		inv.UserEnrollment = &yes
	}
	f := e.Facts
	if f == nil {
		return
	}
	set := func(dst *string, v string) {
		if v != "" && (overwrite || *dst == "") {
			*dst = v
		}
	}
	set(&inv.Platform, platformOf(f.ProductName, f.ModelName))
	set(&inv.DeviceName, f.DeviceName)
	set(&inv.Model, f.Model)
	set(&inv.ModelName, f.ModelName)
	set(&inv.ProductName, f.ProductName)
	set(&inv.OSVersion, f.OSVersion)
	set(&inv.BuildVersion, f.BuildVersion)
	set(&inv.SerialNumber, f.SerialNumber)
	set(&inv.UDID, f.UDID)
	set(&inv.IMEI, f.IMEI)
	set(&inv.MEID, f.MEID)
}

// ResultEffect implements service.ResultEffects: what a result changes
// is written with it. DeviceInformation and SecurityInfo answers update
// the device's inventory, and the latest InstalledApplicationList,
// ProfileList, CertificateList and DeviceLocation answers are kept per
// channel; a final result also takes its command off the pending queries.
func (i *Inventory) ResultEffect(r *storage.Result, rep *mdm.Report) func(string) *storage.ResultEffect {
	return func(rt string) *storage.ResultEffect { return i.effect(rt, r, rep) }
}

// effect is ResultEffect once the command's request type is known (it
// runs in the result's write: no storage, no waiting).
func (i *Inventory) effect(rt string, r *storage.Result, rep *mdm.Report) *storage.ResultEffect {
	if !slices.Contains(kept, rt) {
		return nil
	}
	var fn func(*storage.DeviceInventory) error
	if !strings.Contains(r.ChannelID, mdm.ChannelSeparator) {
		var err error
		fn, err = inventoryChange(rt, r, rep)
		if err != nil {
			i.log.Warn("inventory: unreadable answer", "device", r.ChannelID, "request_type", rt, "err", err)
		}
	}
	if r.Status != storage.Acknowledged {
		if fn != nil && r.Status.Final() {
			return &storage.ResultEffect{Inventory: fn}
		}
		return nil
	}
	return &storage.ResultEffect{
		Report:    &storage.DeviceReport{ChannelID: r.ChannelID, Kind: rt, CommandUUID: r.CommandUUID, At: r.At, Raw: r.Raw},
		Inventory: fn,
	}
}

// inventoryChange returns how a result changes the device's inventory: it
// clears the command from Pending and, for an acknowledged
// DeviceInformation or SecurityInfo, applies the answer. It leaves the
// record as it is (storage.ErrUnchanged) when the command was not pending
// and there is no answer to apply.
func inventoryChange(requestType string, r *storage.Result, rep *mdm.Report) (func(*storage.DeviceInventory) error, error) {
	var apply func(*storage.DeviceInventory)
	var err error
	if r.Status == storage.Acknowledged {
		switch requestType {
		case rtDeviceInformation:
			apply, err = parseDeviceInformation(rep.QueryResponses, r.At)
		case rtSecurityInfo:
			apply, err = parseSecurityInfo(rep.SecurityInfo, r.At)
		}
	}
	return func(inv *storage.DeviceInventory) error {
		if apply == nil && !slices.Contains(inv.Pending, r.CommandUUID) {
			return storage.ErrUnchanged
		}
		if inv.CreatedAt.IsZero() {
			inv.CreatedAt = r.At
		}
		inv.Pending = slices.DeleteFunc(slices.Clone(inv.Pending), func(u string) bool { return u == r.CommandUUID })
		if apply != nil {
			apply(inv)
		}
		return nil
	}, err
}

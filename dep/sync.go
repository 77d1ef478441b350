package dep

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// SyncKind is full (every device, /server/devices) or delta (changes,
// /devices/sync).
type SyncKind string

const (
	SyncFull  SyncKind = "full"
	SyncDelta SyncKind = "delta"
)

// ErrSyncRunning: a sync of that token is already under way.
var ErrSyncRunning = errors.New("a sync of this token is already running")

// TooSoonError refuses a manual sync asked for within Schedule.Manual of
// the previous one.
type TooSoonError struct{ Wait time.Duration }

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("manual sync allowed once every 15 minutes: retry in %s", e.Wait.Round(time.Second))
}

// TokenUnusableError refuses syncing a token Apple rejected.
type TokenUnusableError struct{ Reason string }

func (e *TokenUnusableError) Error() string {
	return "token was rejected by Apple (" + e.Reason + "): renew it with a new .p7m"
}

// SyncResult summarises one sync.
type SyncResult struct {
	Kind          SyncKind      `json:"kind"`
	Pages         int           `json:"pages"`
	Devices       int           `json:"devices"` // device records stored (new or changed)
	Removed       int           `json:"removed"` // marked Removed because a full sync no longer listed them
	Assigned      int           `json:"assigned"`
	AssignFailed  int           `json:"assign_failed"`
	CursorRefused bool          `json:"cursor_refused,omitempty"` // delta fell back to full
	Took          time.Duration `json:"took_ns"`
}

// due says whether and how a token should sync now.
func (s *Service) due(t storage.DEPToken, st storage.DEPSyncState, now time.Time) (SyncKind, bool) {
	if t.Status != storage.DEPTokenOK || now.Before(st.NotBefore) {
		return "", false
	}
	if st.Cursor == "" || st.NeedFull || now.Sub(st.LastFullSync) >= s.sched.Full {
		return SyncFull, true
	}
	if now.Sub(st.LastSync) >= s.sched.Delta {
		return SyncDelta, true
	}
	return "", false
}

// Run syncs every due token until ctx is done, and deletes devices removed
// from ABM/ASM for longer than Schedule.RemovedTTL.
func (s *Service) Run(ctx context.Context) error {
	for {
		s.Tick(ctx)
		if err := s.clock.Sleep(ctx, s.sched.Tick); err != nil {
			return nil
		}
	}
}

// Tick runs one scheduling pass: due tokens sync concurrently, then it
// returns.
func (s *Service) Tick(ctx context.Context) {
	now := s.clock.Now()
	if n, err := s.store.PurgeRemovedDEPDevices(ctx, now.Add(-s.sched.RemovedTTL)); err != nil {
		s.log.ErrorContext(ctx, "dep: purge removed devices", "err", err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "dep: deleted devices removed from ABM long ago", "count", n)
	}
	tokens, err := s.store.DEPTokens(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "dep: list tokens", "err", err)
		return
	}
	var wg sync.WaitGroup
	for _, t := range tokens {
		st, err := s.store.DEPSyncState(ctx, t.ID)
		if err != nil {
			s.log.ErrorContext(ctx, "dep: read sync state", "dep_token", t.ID, "err", err)
			continue
		}
		kind, ok := s.due(t, st, now)
		if !ok || !s.claim(t.ID) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.release(t.ID)
			s.sync(ctx, t, st, kind)
		}()
	}
	wg.Wait()
}

func (s *Service) claim(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[id] {
		return false
	}
	s.running[id] = true
	return true
}

func (s *Service) release(id string) {
	s.mu.Lock()
	delete(s.running, id)
	s.mu.Unlock()
}

// SyncNow is the admin's manual sync: at most once per Schedule.Manual per
// token (*TooSoonError), never beside a running sync (ErrSyncRunning). It
// runs a full sync when one is needed, else a delta, and waits for it.
func (s *Service) SyncNow(ctx context.Context, id string) (SyncResult, error) {
	t, err := s.store.DEPToken(ctx, id)
	if err != nil {
		return SyncResult{}, err
	}
	if t.Status != storage.DEPTokenOK {
		return SyncResult{}, &TokenUnusableError{t.StatusReason}
	}
	if !s.claim(id) {
		return SyncResult{}, ErrSyncRunning
	}
	defer s.release(id)
	st, err := s.store.DEPSyncState(ctx, id)
	if err != nil {
		return SyncResult{}, err
	}
	now := s.clock.Now()
	if !st.LastManual.IsZero() {
		if wait := st.LastManual.Add(s.sched.Manual).Sub(now); wait > 0 {
			return SyncResult{}, &TooSoonError{wait}
		}
	}
	st.LastManual = now
	if err := s.store.PutDEPSyncState(ctx, st); err != nil {
		return SyncResult{}, err
	}
	kind := SyncDelta
	if st.Cursor == "" || st.NeedFull || now.Sub(st.LastFullSync) >= s.sched.Full {
		kind = SyncFull
	}
	// The admin's request may end; the sync keeps its own deadline.
	return s.sync(context.WithoutCancel(ctx), t, st, kind)
}

// sync runs one sync of a claimed token and records its outcome.
func (s *Service) sync(ctx context.Context, t storage.DEPToken, st storage.DEPSyncState, kind SyncKind) (SyncResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.sched.Timeout)
	defer cancel()
	start := s.clock.Now()
	res := SyncResult{Kind: kind}
	log := s.log.With("dep_token", t.ID, "kind", kind)
	st.LastAttempt = start
	var assignQueue []string
	err := func() error {
		c, err := s.client(t)
		if err != nil {
			return err
		}
		if kind == SyncDelta {
			err = s.delta(ctx, c, &st, &res, &assignQueue)
			if errors.Is(err, ErrCursor) {
				log.WarnContext(ctx, "dep: cursor refused, falling back to a full sync", "err", err)
				res.CursorRefused = true
				kind, res.Kind = SyncFull, SyncFull
				st.Cursor, st.NeedFull = "", true
				err = nil
			}
			if err != nil {
				return err
			}
		}
		if kind == SyncFull {
			if err := s.full(ctx, c, t, &st, &res, &assignQueue); err != nil {
				return err
			}
		}
		return s.assignDefault(ctx, c, t, assignQueue, &res)
	}()
	now := s.clock.Now()
	res.Took = now.Sub(start)
	if err != nil {
		st.Failures++
		st.LastError = err.Error()
		if kind == SyncDelta {
			st.NeedFull = true // a failed delta may have skipped changes
		}
		backoff := min(s.sched.Delta, 5*time.Minute<<min(st.Failures-1, 10))
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.RetryAfter > backoff {
			backoff = apiErr.RetryAfter
		}
		st.NotBefore = now.Add(backoff)
		outcome := "error"
		switch {
		case errors.Is(err, ErrTokenRejected):
			outcome = "token_rejected"
			s.rejectToken(ctx, t.ID, err)
		case errors.Is(err, ErrThrottled):
			outcome = "throttled"
		case errors.Is(err, context.DeadlineExceeded):
			outcome = "timeout"
		}
		log.ErrorContext(ctx, "dep: sync failed", "err", err, "next_attempt", st.NotBefore, "devices", res.Devices)
		s.metrics.SyncDone(kind, outcome, res.Devices, res.Took)
	} else {
		st.Failures, st.LastError, st.NotBefore = 0, "", time.Time{}
		st.LastSync = now
		log.InfoContext(ctx, "dep: sync done", "pages", res.Pages, "devices", res.Devices, "removed", res.Removed,
			"assigned", res.Assigned, "assign_failed", res.AssignFailed, "took", res.Took)
		s.metrics.SyncDone(kind, "ok", res.Devices, res.Took)
	}
	// Detached: the outcome is recorded even when the deadline hit.
	if perr := s.store.PutDEPSyncState(context.WithoutCancel(ctx), st); perr != nil {
		log.ErrorContext(ctx, "dep: save sync state", "err", perr)
		if err == nil {
			err = perr
		}
	}
	return res, err
}

func (s *Service) rejectToken(ctx context.Context, id string, cause error) {
	_, err := s.store.UpdateDEPToken(context.WithoutCancel(ctx), id, func(t *storage.DEPToken) error {
		t.Status, t.StatusReason = storage.DEPTokenRejected, cause.Error()
		return nil
	})
	if err != nil {
		s.log.ErrorContext(ctx, "dep: record rejected token", "dep_token", id, "err", err)
	}
}

// delta applies /devices/sync pages from st.Cursor; each page is stored
// with its cursor in one transaction.
func (s *Service) delta(ctx context.Context, c *Client, st *storage.DEPSyncState, res *SyncResult, queue *[]string) error {
	if st.Cursor == "" {
		return fmt.Errorf("no cursor yet: %w", ErrCursor)
	}
	for {
		page, err := c.SyncDevices(ctx, st.Cursor, s.sched.PageLimit)
		if err != nil {
			return err
		}
		next := *st
		if page.Cursor != "" {
			next.Cursor = page.Cursor
		}
		if err := s.savePage(ctx, page, next, res, queue); err != nil {
			return err
		}
		*st = next
		if !page.MoreToFollow || page.Cursor == "" {
			return nil
		}
	}
}

// full fetches every device with /server/devices, resuming an unfinished
// fetch, then marks devices Apple no longer lists as Removed.
func (s *Service) full(ctx context.Context, c *Client, t storage.DEPToken, st *storage.DEPSyncState, res *SyncResult, queue *[]string) error {
	if st.FetchCursor == "" || st.FullStartedAt.IsZero() {
		st.FetchCursor, st.FullStartedAt = "", s.clock.Now()
	}
	st.NeedFull = true
	restarted := false
	for {
		page, err := c.FetchDevices(ctx, st.FetchCursor, s.sched.PageLimit)
		if errors.Is(err, ErrCursor) && st.FetchCursor != "" && !restarted {
			s.log.WarnContext(ctx, "dep: fetch cursor refused, restarting the full fetch", "dep_token", t.ID)
			st.FetchCursor, st.FullStartedAt, restarted = "", s.clock.Now(), true
			continue
		}
		if err != nil {
			return err
		}
		next := *st
		next.FetchCursor = page.Cursor
		done := !page.MoreToFollow || page.Cursor == "" || (len(page.Devices) == 0 && page.Cursor == st.FetchCursor)
		if done {
			next.Cursor, next.FetchCursor, next.NeedFull = page.Cursor, "", false
			next.LastFullSync = s.clock.Now()
		}
		if err := s.savePage(ctx, page, next, res, queue); err != nil {
			return err
		}
		*st = next
		if done {
			break
		}
	}
	n, err := s.store.MarkUnseenDEPDevicesRemoved(ctx, t.ID, st.FullStartedAt, s.clock.Now())
	if err != nil {
		return err
	}
	res.Removed = n
	st.FullStartedAt = time.Time{}
	return nil
}

func (s *Service) savePage(ctx context.Context, page *DevicePage, st storage.DEPSyncState, res *SyncResult, queue *[]string) error {
	devices := make([]storage.DEPDevice, 0, len(page.Devices))
	for _, d := range page.Devices {
		devices = append(devices, s.fromApple(d, st.TokenID))
	}
	now := s.clock.Now()
	changed, err := s.store.SaveDEPPage(ctx, devices, st, now)
	if err != nil {
		return fmt.Errorf("dep: store page: %w", err)
	}
	res.Pages++
	res.Devices += len(changed)
	for _, d := range changed {
		if d.ProfileUUID == "" && d.Status == storage.DEPMissingProfile && !now.Before(d.AssignRetryAfter) {
			*queue = append(*queue, d.Serial)
		}
	}
	return nil
}

func (s *Service) fromApple(d Device, tokenID string) storage.DEPDevice {
	t := func(v string) time.Time {
		ts, err := parseAppleTime(v)
		if err != nil {
			s.log.Warn("dep: unreadable time from Apple", "serial", d.SerialNumber, "value", v)
		}
		return ts
	}
	return storage.DEPDevice{
		Serial: d.SerialNumber, TokenID: tokenID, Model: d.Model, Description: d.Description, Color: d.Color,
		AssetTag: d.AssetTag, OS: d.OS, DeviceFamily: d.DeviceFamily, ProfileStatus: d.ProfileStatus,
		ProfileUUID: d.ProfileUUID, ProfileAssignTime: t(d.ProfileAssignTime), ProfilePushTime: t(d.ProfilePushTime),
		DeviceAssignedDate: t(d.DeviceAssignedDate), DeviceAssignedBy: d.DeviceAssignedBy,
		OpType: d.OpType, OpDate: t(d.OpDate),
	}
}

// assignDefault gives the token's default profile to newly synced devices
// that have none.
func (s *Service) assignDefault(ctx context.Context, c *Client, t storage.DEPToken, serials []string, res *SyncResult) error {
	if len(serials) == 0 {
		return nil
	}
	cur, err := s.store.DEPToken(ctx, t.ID)
	if err != nil || cur.DefaultProfileID == "" {
		return err
	}
	p, err := s.store.DEPProfile(ctx, t.ID, cur.DefaultProfileID)
	if err != nil {
		return fmt.Errorf("dep: default profile: %w", err)
	}
	ar, err := s.assign(ctx, c, p, serials)
	res.Assigned += len(ar.Assigned)
	res.AssignFailed += len(ar.Failed)
	return err
}

// AssignResult is Apple's answer to an assignment, per serial.
type AssignResult struct {
	Assigned      []string `json:"assigned"`
	Failed        []string `json:"failed,omitempty"`         // retried after the cooldown
	NotAccessible []string `json:"not_accessible,omitempty"` // not assigned to this server
}

// assign sends serials in batches of MaxBatch and records the outcome.
func (s *Service) assign(ctx context.Context, c *Client, p storage.DEPProfile, serials []string) (AssignResult, error) {
	var ar AssignResult
	if p.AppleUUID == "" {
		return ar, fmt.Errorf("dep: profile %s was never defined at Apple", p.ID)
	}
	for len(serials) > 0 {
		batch := serials[:min(len(serials), MaxBatch)]
		serials = serials[len(batch):]
		answer, err := c.AssignProfile(ctx, p.AppleUUID, batch)
		if err != nil {
			return ar, err
		}
		now := s.clock.Now()
		err = s.store.UpdateDEPDevices(ctx, batch, func(d *storage.DEPDevice) error {
			switch answer[d.Serial] {
			case "SUCCESS":
				d.ProfileUUID, d.ProfileID, d.ProfileStatus = p.AppleUUID, p.ID, "assigned"
				d.ProfileAssignTime, d.AssignRetryAfter = now, time.Time{}
			case "FAILED":
				d.AssignRetryAfter = now.Add(s.sched.FailedCooldown)
			}
			d.UpdatedAt = now
			storage.RecomputeDEPStatus(d)
			return nil
		})
		if err != nil {
			return ar, err
		}
		for _, serial := range batch {
			switch answer[serial] {
			case "SUCCESS":
				ar.Assigned = append(ar.Assigned, serial)
			case "FAILED":
				ar.Failed = append(ar.Failed, serial)
			default:
				ar.NotAccessible = append(ar.NotAccessible, serial)
			}
		}
	}
	if len(ar.Failed) > 0 {
		s.log.WarnContext(ctx, "dep: Apple failed some profile assignments; retrying after cooldown",
			"profile", p.ID, "failed", len(ar.Failed), "cooldown", s.sched.FailedCooldown)
	}
	return ar, nil
}

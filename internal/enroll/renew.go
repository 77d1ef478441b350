package enroll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/storage"
)

// Renewal timing.
const (
	DefaultRenewBefore = 30 * 24 * time.Hour // --renew-before
	expiringWindow     = 30 * 24 * time.Hour // what the metric counts
	retryFailedAfter   = 24 * time.Hour      // a refused profile is sent again after this
	failedWarnEvery    = 24 * time.Hour
	renewScanPage      = 500
)

// RenewalStore is what the renewer needs: the enrollments to walk and
// update, and a place for the challenges it issues.
type RenewalStore interface {
	ListEnrollments(ctx context.Context, after string, limit int) ([]storage.Enrollment, error)
	Enrollment(ctx context.Context, id string) (*storage.Enrollment, error)
	UpdateEnrollment(ctx context.Context, id string, create *storage.Enrollment, fn func(e *storage.Enrollment) error) error
	PutChallenge(ctx context.Context, c *storage.Challenge) error
	// The last scan's count of expiring certificates is kept as a setting,
	// so replicas that do not run the scan report it too.
	Setting(ctx context.Context, key string) ([]byte, error)
	PutSetting(ctx context.Context, key string, value []byte) error
}

// ExpiringSettingKey is the setting holding the last scan's count of
// certificates expiring soon.
const ExpiringSettingKey = "identity-renewal:expiring"

// expiringRecord is ExpiringSettingKey's value.
type expiringRecord struct {
	Count     int       `json:"count"`
	ScannedAt time.Time `json:"scanned_at"`
}

// Renewer renews device identity certificates before they expire, the way
// Apple's clients expect it: it queues InstallProfile with a fresh
// enrollment profile (the same PayloadIdentifier, so it replaces the
// installed one) whose SCEP challenge is single-use and bound to the
// device and to the certificate it renews. The device enrolls a new key,
// and its Authenticate with the new certificate re-binds the enrollment
// (mdm/service). It also observes the service: a refused profile marks the
// renewal failed.
type Renewer struct {
	h      *Handler
	store  RenewalStore
	cmds   Commands
	before time.Duration
	log    *slog.Logger

	mu         sync.Mutex
	warnedAt   time.Time
	legacyTold bool
}

// NewRenewer builds a renewer that starts before expiry (0: DefaultRenewBefore).
func NewRenewer(h *Handler, store RenewalStore, cmds Commands, before time.Duration) (*Renewer, error) {
	if h == nil || store == nil || cmds == nil {
		return nil, errors.New("enroll: renewer needs the handler, a store and the command service")
	}
	if before < 0 {
		return nil, errors.New("enroll: renew-before must not be negative")
	}
	if before == 0 {
		before = DefaultRenewBefore
	}
	return &Renewer{h: h, store: store, cmds: cmds, before: before, log: h.log}, nil
}

// Expiring is how many enrolled devices' certificates expired within 30
// days at the last scan, whichever replica ran it (0 before any scan).
func (r *Renewer) Expiring(ctx context.Context) (int, error) {
	raw, err := r.store.Setting(ctx, ExpiringSettingKey)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the expiring count: %w", err)
	}
	var rec expiringRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return 0, fmt.Errorf("read the expiring count: %w", err)
	}
	return rec.Count, nil
}

// publish stores the scan's count when it changed, so an hourly scan of a
// steady fleet writes nothing.
func (r *Renewer) publish(ctx context.Context, n int, now time.Time) error {
	if cur, err := r.Expiring(ctx); err == nil && cur == n {
		return nil
	}
	raw, err := json.Marshal(expiringRecord{Count: n, ScannedAt: now})
	if err != nil {
		return err
	}
	if err := r.store.PutSetting(ctx, ExpiringSettingKey, raw); err != nil {
		return fmt.Errorf("store the expiring count: %w", err)
	}
	return nil
}

// Run scans at once, then every interval, until ctx ends.
func (r *Renewer) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := r.Scan(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("identity renewal scan", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// current is the renewal of the certificate bound now, nil when none.
func current(e *storage.Enrollment) *storage.Renewal {
	if e.Renewal != nil && e.Renewal.ForCert == e.CertHash {
		return e.Renewal
	}
	return nil
}

// Scan walks the enrolled devices once: it queues the renewals that are
// due, fails those whose certificate expired first, counts the
// certificates expiring soon, and once a day warns of failed renewals.
// Its first pass also warns of Shared iPad user channels keyed by the
// shared UserID (from before per-user keys), which it leaves as they are.
func (r *Renewer) Scan(ctx context.Context) error {
	now := r.h.now()
	expiring := 0
	var failed, legacy []string
	var firstErr error
	for after := ""; ; {
		page, err := r.store.ListEnrollments(ctx, after, renewScanPage)
		if err != nil {
			return fmt.Errorf("list enrollments: %w", err)
		}
		for i := range page {
			e := &page[i]
			if _, user, ok := strings.Cut(e.ID, mdm.ChannelSeparator); ok && mdm.IsSharedIPadUserID(user) {
				legacy = append(legacy, e.ID)
			}
			if e.ID != e.DeviceID || !e.Enrolled || e.CertHash == "" || e.CertNotAfter.IsZero() {
				continue
			}
			live := now.Before(e.CertNotAfter)
			if live && e.CertNotAfter.Sub(now) <= expiringWindow {
				expiring++
			}
			cur := current(e)
			var err error
			switch {
			// User Enrollment devices enrolled with another kind of
			// profile: a device enrollment profile must not replace it.
			case e.Type == storage.Device && live && !now.Before(e.CertNotAfter.Add(-r.before)) &&
				(cur == nil || cur.State == storage.RenewalFailed && now.Sub(cur.UpdatedAt) >= retryFailedAfter):
				err = r.queue(ctx, e, now)
			case !live && cur != nil && cur.State == storage.RenewalQueued:
				err = r.fail(ctx, e.ID, e.CertHash, cur.CommandUUID, "the identity certificate expired before the device installed the renewal profile", now)
				cur = &storage.Renewal{State: storage.RenewalFailed}
			}
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("renew %s: %w", e.ID, err)
			}
			if cur != nil && cur.State == storage.RenewalFailed {
				failed = append(failed, e.ID)
			}
		}
		if len(page) < renewScanPage {
			break
		}
		after = page[len(page)-1].ID
	}
	if err := r.publish(ctx, expiring, now); err != nil && firstErr == nil {
		firstErr = err
	}
	r.mu.Lock()
	if len(legacy) > 0 && !r.legacyTold {
		// Nothing is moved: which user those commands were for is unknown.
		// Told under the lock, so once any Scan returns it has been told.
		r.legacyTold = true
		r.log.Warn("Shared iPad user channels from before per-user keys: every user of these iPads shared one queue; "+
			"users now get a channel each (device:UserShortName) at their next TokenUpdate, and commands still queued "+
			"on these channels are never delivered (cancel them)", "count", len(legacy), "channels", strings.Join(legacy[:min(len(legacy), 50)], ","))
	}
	warn := len(failed) > 0 && (r.warnedAt.IsZero() || now.Sub(r.warnedAt) >= failedWarnEvery)
	if warn {
		r.warnedAt = now
	}
	r.mu.Unlock()
	if warn {
		const show = 50
		list := failed
		if len(list) > show {
			list = list[:show]
		}
		r.log.Warn("identity renewals failed: these devices are locked out when their certificate expires",
			"count", len(failed), "devices", strings.Join(list, ","))
	}
	return firstErr
}

// queue issues the device's renewal challenge, queues the profile and
// records the renewal as queued.
func (r *Renewer) queue(ctx context.Context, e *storage.Enrollment, now time.Time) error {
	spec := scep.ChallengeSpec{Kind: storage.KindReenroll, Ref: e.ID, ForUDID: e.DeviceID, RenewalOf: e.CertHash,
		TTL: e.CertNotAfter.Sub(now)}
	secret, ch, err := scep.NewChallenge(spec, now)
	if err != nil {
		return err
	}
	raw, err := r.h.buildProfile(secret, spec)
	if err != nil {
		return err
	}
	if err := r.store.PutChallenge(ctx, ch); err != nil {
		return fmt.Errorf("store challenge: %w", err)
	}
	cmd, err := r.cmds.Encode(map[string]any{"RequestType": "InstallProfile", "Payload": raw})
	if err != nil {
		return err
	}
	if _, err := r.cmds.Queue(ctx, []string{e.ID}, command.Push, cmd); err != nil {
		return fmt.Errorf("queue renewal profile: %w", err)
	}
	err = r.store.UpdateEnrollment(ctx, e.ID, nil, func(cur *storage.Enrollment) error {
		if cur.CertHash != e.CertHash {
			return nil // re-bound meanwhile
		}
		cur.Renewal = &storage.Renewal{State: storage.RenewalQueued, ForCert: e.CertHash, CommandUUID: cmd.UUID,
			ChallengeID: ch.ID, QueuedAt: now, UpdatedAt: now}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record renewal: %w", err)
	}
	r.log.Info("identity renewal queued", "device", e.ID, "command", cmd.UUID, "cert_not_after", e.CertNotAfter)
	return nil
}

// fail marks the renewal of certHash (queued as command uuid) failed.
func (r *Renewer) fail(ctx context.Context, id, certHash, uuid, reason string, now time.Time) error {
	err := r.store.UpdateEnrollment(ctx, id, nil, func(e *storage.Enrollment) error {
		cur := current(e)
		if e.CertHash != certHash || cur == nil || cur.CommandUUID != uuid || cur.State != storage.RenewalQueued {
			return nil
		}
		done := *cur
		done.State, done.Reason, done.UpdatedAt = storage.RenewalFailed, reason, now
		e.Renewal = &done
		return nil
	})
	if err == nil {
		r.log.Warn("identity renewal failed", "device", id, "reason", reason)
	}
	return err
}

// Observe implements service.Observer: a device that refuses the renewal
// profile fails its renewal (it is sent again a day later).
func (r *Renewer) Observe(ctx context.Context, ev service.Event) {
	rs, ok := ev.(service.ResultStored)
	if !ok || rs.Result.RequestType != "InstallProfile" || !rs.Result.Status.Final() || rs.Result.Status == storage.Acknowledged {
		return
	}
	e, err := r.store.Enrollment(ctx, rs.Result.ChannelID)
	if err != nil {
		return // a user channel, or gone: not a renewal
	}
	cur := current(e)
	if cur == nil || cur.CommandUUID != rs.Result.CommandUUID {
		return
	}
	reason := "the device answered " + string(rs.Result.Status)
	if len(rs.Result.ErrorChain) > 0 {
		ec := rs.Result.ErrorChain[0]
		reason += fmt.Sprintf(": %s %d %.200s", ec.ErrorDomain, ec.ErrorCode, ec.USEnglishDescription)
	}
	if err := r.fail(ctx, e.ID, e.CertHash, cur.CommandUUID, reason, r.h.now()); err != nil {
		r.log.Error("record failed identity renewal", "device", e.ID, "err", err)
	}
}

package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/identity"
	"github.com/orchardmdm/orchard/storage"
)

// Checkin handles one check-in message from a verified identity and returns
// the body to answer with (nil for an empty 200).
func (s *Service) Checkin(ctx context.Context, id *identity.Identity, c *mdm.Checkin) ([]byte, error) {
	body, err := s.checkin(ctx, id, c)
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, CheckinReceived{Checkin: c}); err != nil {
		return nil, err
	}
	return body, nil
}

func (s *Service) checkin(ctx context.Context, id *identity.Identity, c *mdm.Checkin) ([]byte, error) {
	if m, ok := c.Message.(*mdm.Authenticate); ok {
		return nil, s.authenticate(ctx, id, c.Channel, m)
	}
	ch, err := s.boundDevice(ctx, id.Hash, c.Channel)
	if err != nil {
		return nil, err
	}
	c.Channel = ch
	s.touch(c.Channel.ID())
	switch m := c.Message.(type) {
	case *mdm.TokenUpdate:
		return nil, s.tokenUpdate(ctx, c.Channel, m)
	case *mdm.CheckOut:
		return nil, s.checkOut(ctx, c.Channel)
	case *mdm.UserAuthenticate:
		return s.userAuthenticate(ctx, c.Channel, m)
	case *mdm.SetBootstrapToken:
		return nil, s.setBootstrapToken(ctx, c.Channel, m)
	case *mdm.GetBootstrapToken:
		return s.getBootstrapToken(ctx, c.Channel)
	case *mdm.DeclarativeManagement:
		if s.ddm == nil {
			return nil, fmt.Errorf("%w: %s is not supported yet", ErrNotSupported, c.Type)
		}
		return s.ddm.DeclarativeManagement(ctx, c.Channel.ID(), m.Endpoint, m.Data)
	case *mdm.GetToken:
		return nil, fmt.Errorf("%w: %s is not supported yet", ErrNotSupported, c.Type)
	}
	return nil, fmt.Errorf("%w: unhandled message %s", ErrBadRequest, c.Type)
}

func (s *Service) authenticate(ctx context.Context, id *identity.Identity, ch mdm.Channel, m *mdm.Authenticate) error {
	epoch := s.cache.now() // before the reads and writes below
	if err := s.checkTopic(m.Topic); err != nil {
		return err
	}
	// Storage finds the device under any spelling of a hex UDID; the
	// enrollment keeps the spelling it was first stored under, so one device
	// never gets two records.
	old, err := s.store.Enrollment(ctx, ch.DeviceID)
	if errors.Is(err, storage.ErrNotFound) {
		old = &storage.Enrollment{}
	} else if err != nil {
		return err
	} else {
		ch.DeviceID = old.DeviceID
	}
	bound, err := s.store.DeviceForCert(ctx, id.Hash)
	switch {
	case err == nil && bound != ch.DeviceID:
		return fmt.Errorf("%w: certificate is already bound to another device", ErrForbidden)
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return err
	}
	certRec, err := id.Record(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		certRec = nil // the verifier found it moments ago: treated as before, without one
	} else if err != nil {
		return err
	}
	var auth storage.CertAuthorization
	if certRec != nil {
		auth = certRec.Authorization
	}
	now := s.now()
	if auth.ForUDID != "" && !mdm.SameDeviceID(auth.ForUDID, ch.DeviceID) || auth.ForSerial != "" && auth.ForSerial != m.SerialNumber {
		s.recordFailure(ctx, failureOf(now, ch.DeviceID, m, auth, "identity_refused", "certificate was issued for another device"))
		return fmt.Errorf("%w: certificate was issued for another device", ErrForbidden)
	}
	if isRenewalOf(certRec, old) {
		return s.rebind(ctx, id, old, m, now)
	}
	if certRec != nil && auth.Kind == storage.KindReenroll && old.Enrolled && old.CertHash == id.Hash {
		// The renewed certificate's Authenticate again (its answer was
		// lost): the enrollment was re-bound already and goes on.
		return nil
	}
	if old.Enrolled && old.CertHash != "" && old.CertHash != id.Hash && !mayReplace(certRec, old, now) {
		s.log.Warn("takeover of an enrolled device refused", "device", ch.DeviceID, "kind", auth.Kind, "ref", auth.Ref)
		s.recordFailure(ctx, failureOf(now, ch.DeviceID, m, auth, "reenrollment_refused", "takeover refused: device is enrolled under another certificate"))
		return fmt.Errorf("%w: %s", ErrForbidden, refusedTakeover)
	}
	var admitted *AdmissionResult
	if s.admit != nil {
		res, err := s.admit.Admit(ctx, AdmissionRequest{User: auth.User, Method: auth.Kind, Platform: mdm.Platform(m.ProductName, m.Model),
			OSVersion: m.OSVersion, DeviceID: ch.DeviceID, Serial: m.SerialNumber, IMEI: m.IMEI, Model: m.Model})
		if err != nil {
			return fmt.Errorf("decide enrollment policy: %w", err)
		}
		if !res.Allowed {
			f := failureOf(now, ch.DeviceID, m, auth, res.Code, res.Message)
			f.Policy, f.Rule = res.Policy, res.Rule
			s.recordFailure(ctx, f)
			s.log.Warn("enrollment refused by policy", "device", ch.DeviceID, "code", res.Code, "policy", res.Policy, "rule", res.Rule)
			// 403, never 401: a refused profile installation stops there
			// with the message shown, and is not retried by the device.
			return fmt.Errorf("%w: enrollment refused (%s): %s; %s", ErrForbidden, res.Code, res.Message, res.Remedy)
		}
		admitted = &res
	}
	typ := storage.Device
	if ch.UserEnrollment {
		typ = storage.UserEnrollmentDevice
	}
	cert, err := id.Cert()
	if err != nil {
		return err
	}
	e := storage.Enrollment{
		ID:         ch.ID(),
		DeviceID:   ch.DeviceID,
		Type:       typ,
		EnrolledAt: now,
		LastSeen:   now,
		Topic:      m.Topic,
		Facts: &storage.DeviceFacts{
			UDID: m.UDID, EnrollmentID: m.EnrollmentID, SerialNumber: m.SerialNumber,
			Model: m.Model, ModelName: m.ModelName, ProductName: m.ProductName,
			OSVersion: m.OSVersion, BuildVersion: m.BuildVersion, DeviceName: m.DeviceName,
			IMEI: m.IMEI, MEID: m.MEID,
		},
		CertHash:     id.Hash,
		CertSerial:   fmt.Sprintf("%x", cert.SerialNumber),
		CertNotAfter: cert.NotAfter,
	}
	e.EnrollmentMethod, e.EnrollmentRef = auth.Kind, auth.Ref
	e.EnrollmentUser, e.EnrollmentCategory, e.EnrollmentSession = auth.User, auth.ForCategory, auth.ForSession
	if admitted != nil {
		e.Ownership, e.OwnershipBy = admitted.Ownership, admitted.OwnershipBy
		if admitted.DEM {
			// A device enrollment manager enrolls devices for others.
			e.EnrolledBy, e.EnrollmentUser = auth.User, ""
		}
	}
	err = s.store.Authenticate(ctx, &storage.AuthenticateRecord{Enrollment: e, PrevCertHash: old.CertHash})
	if errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	if err != nil {
		return err
	}
	// The old enrollment's user channels ended with it.
	s.cache.unenroll(mdm.Channel{DeviceID: ch.DeviceID})
	s.cache.bind(epoch, id.Hash, ch.DeviceID)
	s.cache.setEnrolled(epoch, ch)
	s.log.Info("device authenticated", "device", ch.DeviceID, "serial", m.SerialNumber, "model", m.Model, "cert_serial", e.CertSerial)
	s.emit(ctx, Authenticated{Enrollment: &e})
	return nil
}

// refusedTakeover tells a refused device what would admit it.
const refusedTakeover = "device is enrolled under another certificate; to replace that enrollment, check the device out, " +
	"have an admin release it (orchard devices release), or enroll it by ADE or Apple Configurator with Apple-verified MachineInfo"

// isRenewalOf reports whether a certificate renews an enrollment's bound
// one through a re-sent enrollment profile: its challenge was issued by
// Orchard for this device and for renewing exactly that certificate (the
// device ID was checked against the challenge's by the caller). Nothing
// else re-binds, so this is never a takeover path.
func isRenewalOf(rec *storage.CertRecord, old *storage.Enrollment) bool {
	return rec != nil && old.Enrolled && old.CertHash != "" && rec.Hash != old.CertHash &&
		rec.Authorization.Kind == storage.KindReenroll && rec.Authorization.ForUDID != "" &&
		rec.Authorization.RenewalOf == old.CertHash
}

// rebind moves an enrollment to its renewed certificate: the queues, user
// channels, tokens, inventory, bootstrap token and ADE state stay. From
// now on the old certificate is refused.
func (s *Service) rebind(ctx context.Context, id *identity.Identity, old *storage.Enrollment, m *mdm.Authenticate, now time.Time) error {
	epoch := s.cache.now() // before the reads and writes below
	cert, err := id.Cert()
	if err != nil {
		return err
	}
	rec := &storage.RebindRecord{
		DeviceID: old.DeviceID, PrevCertHash: old.CertHash,
		CertHash: id.Hash, CertSerial: fmt.Sprintf("%x", cert.SerialNumber), CertNotAfter: cert.NotAfter,
		Facts: &storage.DeviceFacts{
			UDID: m.UDID, EnrollmentID: m.EnrollmentID, SerialNumber: m.SerialNumber,
			Model: m.Model, ModelName: m.ModelName, ProductName: m.ProductName,
			OSVersion: m.OSVersion, BuildVersion: m.BuildVersion, DeviceName: m.DeviceName,
			IMEI: m.IMEI, MEID: m.MEID,
		},
	}
	if r := old.Renewal; r != nil && r.ForCert == old.CertHash {
		done := *r
		done.State, done.Reason, done.UpdatedAt = storage.RenewalInstalled, "", now
		rec.Renewal = &done
	}
	err = s.store.Rebind(ctx, rec)
	if errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	if err != nil {
		return err
	}
	s.cache.bind(epoch, id.Hash, old.DeviceID)
	s.log.Info("device identity renewed", "device", old.DeviceID, "cert_serial", rec.CertSerial, "not_after", rec.CertNotAfter)
	s.emit(ctx, Renewed{DeviceID: old.DeviceID, CertNotAfter: rec.CertNotAfter})
	return nil
}

// mayReplace reports whether a new certificate may take over an enrolled
// device: it renews the bound certificate; or it came, after the current
// enrollment began, from an ADE or Apple Configurator challenge whose
// MachineInfo Apple vouches for (the caller has checked its UDID and serial
// are this device's); or an admin released the enrollment recently. A
// challenge bound to the UDID and serial of an unverified MachineInfo is
// not enough: anyone who knows them could have obtained it.
func mayReplace(rec *storage.CertRecord, old *storage.Enrollment, now time.Time) bool {
	if rec != nil {
		a := rec.Authorization
		if a.RenewalOf != "" && a.RenewalOf == old.CertHash {
			return true
		}
		if a.AppleVerified && (a.Kind == storage.KindADE || a.Kind == storage.KindConfigurator) &&
			a.ForUDID != "" && a.ForSerial != "" && rec.IssuedAt.After(old.EnrolledAt) {
			return true
		}
	}
	return now.Before(old.ReleasedUntil)
}

// failureOf is the failure record of a refused Authenticate. The fields
// come from the message: cut so the bounded record stays small.
func failureOf(at time.Time, udid string, m *mdm.Authenticate, auth storage.CertAuthorization, code, reason string) storage.EnrollmentFailure {
	return storage.EnrollmentFailure{At: at, UDID: clip(udid, 128), Serial: clip(m.SerialNumber, 64), IMEI: clip(m.IMEI, 32),
		Method: auth.Kind, User: auth.User, Reason: reason, Code: code, Stage: "authenticate",
		Platform: mdm.Platform(m.ProductName, m.Model), OSVersion: clip(m.OSVersion, 32)}
}

// recordFailure keeps a refused Authenticate for the enrollment-failures
// report; the refusal stands whether or not the write succeeds.
func (s *Service) recordFailure(ctx context.Context, f storage.EnrollmentFailure) {
	if s.failures == nil {
		return
	}
	if err := s.failures.RecordEnrollmentFailure(ctx, &f); err != nil {
		s.log.Error("record enrollment failure", "device", f.UDID, "err", err)
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ReleaseFor is how long an admin's release lets a new enrollment of a
// device take over its current one.
const ReleaseFor = 7 * 24 * time.Hour

// Release lets the next enrollment of an enrolled device replace its bound
// certificate within ReleaseFor (a wiped or replaced device that could not
// check out). It returns when the release lapses; ErrNotFound when no such
// device channel exists.
func (s *Service) Release(ctx context.Context, deviceID string) (time.Time, error) {
	// Looked up first: the device may be stored under another spelling.
	cur, err := s.store.Enrollment(ctx, deviceID)
	if err != nil {
		return time.Time{}, err
	}
	deviceID = cur.ID
	until := s.now().Add(ReleaseFor)
	err = s.store.UpdateEnrollment(ctx, deviceID, nil, func(e *storage.Enrollment) error {
		if e.ID != e.DeviceID {
			return fmt.Errorf("%w: %s is a user channel; release its device", ErrBadRequest, deviceID)
		}
		e.ReleasedUntil = until
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	s.log.Info("enrollment released by an admin", "device", deviceID, "until", until)
	return until, nil
}

func (s *Service) tokenUpdate(ctx context.Context, ch mdm.Channel, m *mdm.TokenUpdate) error {
	epoch := s.cache.now() // before the reads and writes below
	if err := s.checkTopic(m.Topic); err != nil {
		return err
	}
	dev, err := s.enrolledChannel(ctx, mdm.Channel{DeviceID: ch.DeviceID, UserEnrollment: ch.UserEnrollment})
	if err != nil {
		return err
	}
	var create *storage.Enrollment
	if ch.IsUser() {
		typ := storage.User
		switch {
		case ch.UserEnrollment:
			typ = storage.UserEnrollment
		case ch.SharedIPad:
			typ = storage.SharedIPadUser
		}
		create = &storage.Enrollment{ID: ch.ID(), DeviceID: ch.DeviceID, Type: typ, UserID: ch.UserID, EnrolledAt: s.now()}
	}
	var user *storage.Enrollment
	var unlock []byte
	if len(m.UnlockToken) > 0 {
		unlock = s.box.Seal(m.UnlockToken, labelUnlock)
	}
	first := false
	now := s.now()
	err = s.store.UpdateEnrollment(ctx, ch.ID(), create, func(e *storage.Enrollment) error {
		if ch.IsUser() && !e.Enrolled {
			// A user channel starts (again) under the current device enrollment.
			e.EnrolledAt, e.CheckedOutAt = now, time.Time{}
		}
		first = e.TokenUpdatedAt.Before(e.EnrolledAt) || e.TokenUpdatedAt.IsZero()
		e.Enrolled = true
		e.Topic, e.Token, e.PushMagic, e.TokenInvalid = m.Topic, m.Token, m.PushMagic, false
		e.TokenUpdatedAt = now
		e.AwaitingConfiguration = m.AwaitingConfiguration
		if unlock != nil {
			e.UnlockTokenSealed = unlock
		}
		if ch.IsUser() {
			e.UserShortName, e.UserLongName = m.UserShortName, m.UserLongName
			e.EnrollmentUserID = m.EnrollmentUserID
			u := *e
			user = &u
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: channel %s is not enrolled", ErrForbidden, ch.ID())
	}
	if err != nil {
		return err
	}
	s.cache.setEnrolled(epoch, ch)
	if first && !ch.IsUser() {
		dev.Token, dev.PushMagic, dev.Topic, dev.AwaitingConfiguration = m.Token, m.PushMagic, m.Topic, m.AwaitingConfiguration
		s.emit(ctx, Enrolled{Enrollment: dev})
	}
	if first && user != nil {
		s.emit(ctx, UserEnrolled{Enrollment: user})
	}
	return nil
}

func (s *Service) checkOut(ctx context.Context, ch mdm.Channel) error {
	now := s.now()
	// Forget first: a failed write must not leave the cache saying enrolled.
	s.cache.unenroll(ch)
	if !ch.IsUser() {
		if err := s.store.CheckOut(ctx, ch.DeviceID, now); err != nil {
			return err
		}
		s.log.Info("device checked out", "device", ch.DeviceID)
		return nil
	}
	err := s.store.UpdateEnrollment(ctx, ch.ID(), nil, func(e *storage.Enrollment) error {
		e.Enrolled, e.CheckedOutAt = false, now
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil // nothing to check out
	}
	return err
}

// userAuthenticate answers 410 Gone unless user authentication is on;
// then it admits the user without a digest prompt (an empty
// DigestChallenge), since Orchard has no user directory to check against.
func (s *Service) userAuthenticate(ctx context.Context, ch mdm.Channel, m *mdm.UserAuthenticate) ([]byte, error) {
	if !s.userAuth() {
		return nil, fmt.Errorf("%w: user channels are not enabled on this server", ErrGone)
	}
	if _, err := s.enrolledChannel(ctx, mdm.Channel{DeviceID: ch.DeviceID}); err != nil {
		return nil, err
	}
	if m.DigestResponse != "" {
		return nil, nil
	}
	return plist.Marshal(struct{ DigestChallenge string }{""})
}

func (s *Service) setBootstrapToken(ctx context.Context, ch mdm.Channel, m *mdm.SetBootstrapToken) error {
	var sealed []byte
	if len(m.BootstrapToken) > 0 {
		sealed = s.box.Seal(m.BootstrapToken, labelBootstrap)
	}
	now := s.now()
	err := s.store.UpdateEnrollment(ctx, ch.ID(), nil, func(e *storage.Enrollment) error {
		if !e.Enrolled {
			return fmt.Errorf("%w: device is not enrolled", ErrForbidden)
		}
		e.BootstrapTokenSealed, e.BootstrapTokenAt = sealed, now
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: device is not enrolled", ErrForbidden)
	}
	return err
}

func (s *Service) getBootstrapToken(ctx context.Context, ch mdm.Channel) ([]byte, error) {
	e, err := s.enrolledChannel(ctx, ch)
	if err != nil {
		return nil, err
	}
	var resp struct {
		BootstrapToken []byte `plist:",omitempty"`
	}
	if len(e.BootstrapTokenSealed) > 0 {
		if resp.BootstrapToken, err = s.box.Open(e.BootstrapTokenSealed, labelBootstrap); err != nil {
			return nil, fmt.Errorf("open escrowed bootstrap token: %w", err)
		}
	}
	s.log.Info("bootstrap token requested", "device", ch.DeviceID, "escrowed", len(resp.BootstrapToken) > 0)
	return plist.Marshal(resp)
}

// UnlockToken returns a channel's unlock token, for commands that need it
// (ClearPasscode). It is a secret: callers must not log or return it.
func (s *Service) UnlockToken(ctx context.Context, channel string) ([]byte, error) {
	e, err := s.store.Enrollment(ctx, channel)
	if err != nil {
		return nil, err
	}
	if len(e.UnlockTokenSealed) == 0 {
		return nil, fmt.Errorf("%w: no unlock token escrowed for %s", storage.ErrNotFound, channel)
	}
	return s.box.Open(e.UnlockTokenSealed, labelUnlock)
}

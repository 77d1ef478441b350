package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

const (
	bEnrollments = "enrollments"  // channel ID -> Enrollment JSON
	bCertBind    = "cert_binding" // cert hash -> device channel ID
	bCommands    = "commands"     // uuid -> Command JSON
	bCommandRaw  = "command_raw"  // uuid -> command plist
	bTargets     = "targets"      // uuid NUL channel -> Target JSON
	bQueue       = "queue"        // channel NUL seq -> uuid
	bDeferred    = "deferred"     // channel NUL seq -> uuid (NotNow'd)
	bResults     = "results"      // uuid NUL channel NUL n -> Result JSON
	bSettings    = "settings"     // key -> value
	bDeviceFold  = "device_fold"  // mdm.FoldDeviceID(device ID) -> device ID as stored
)

func init() {
	registerBuckets(bEnrollments, bCertBind, bCommands, bCommandRaw, bTargets, bQueue, bDeferred, bResults, bSettings)
	registerIndex(bDeviceFold, indexDeviceIDs)
}

// indexDeviceIDs fills the device_fold index from the enrollments of a
// database written before it existed. Records stay as they are: two that
// differ only in case are reported, and the first (in key order) keeps the
// index, so neither is changed behind the operator's back.
func indexDeviceIDs(tx *bolt.Tx) (notes []string, err error) {
	fold := tx.Bucket([]byte(bDeviceFold))
	err = tx.Bucket([]byte(bEnrollments)).ForEach(func(k, v []byte) error {
		if bytes.Contains(k, []byte(mdm.ChannelSeparator)) {
			return nil // user channel
		}
		f := []byte(mdm.FoldDeviceID(string(k)))
		if prev := fold.Get(f); prev != nil {
			notes = append(notes, fmt.Sprintf("device %s and %s differ only in case; both records kept, %s owns the ID", prev, k, prev))
			return nil
		}
		return fold.Put(f, k)
	})
	return notes, err
}

var _ storage.MDMStore = (*Store)(nil)

// Authenticate implements storage.CheckinStore.
func (s *Store) Authenticate(ctx context.Context, rec *storage.AuthenticateRecord) error {
	e := rec.Enrollment
	return s.update(func(tx *bolt.Tx) error {
		enr, bind := tx.Bucket([]byte(bEnrollments)), tx.Bucket([]byte(bCertBind))
		var old storage.Enrollment
		if err := getJSON(enr, []byte(e.ID), &old); errors.Is(err, storage.ErrNotFound) {
			old = storage.Enrollment{}
		} else if err != nil {
			return err
		}
		if old.CertHash != rec.PrevCertHash {
			return fmt.Errorf("%w: device %s is now bound to another certificate", storage.ErrConflict, e.ID)
		}
		fold, f := tx.Bucket([]byte(bDeviceFold)), []byte(mdm.FoldDeviceID(e.ID))
		if owner := fold.Get(f); owner != nil && string(owner) != e.ID {
			return fmt.Errorf("%w: device %s is enrolled as %s", storage.ErrConflict, e.ID, owner)
		}
		if err := fold.Put(f, []byte(e.ID)); err != nil {
			return err
		}
		if dev := bind.Get([]byte(e.CertHash)); dev != nil && string(dev) != e.ID {
			return fmt.Errorf("%w: certificate is bound to another device", storage.ErrConflict)
		}
		if old.CertHash != "" && old.CertHash != e.CertHash {
			if err := bind.Delete([]byte(old.CertHash)); err != nil {
				return err
			}
		}
		if err := bind.Put([]byte(e.CertHash), []byte(e.ID)); err != nil {
			return err
		}
		e.Generation = old.Generation + 1
		e.Enrolled = true
		if err := putJSON(enr, []byte(e.ID), &e); err != nil {
			return err
		}
		// The user channels of the old enrollment end with it.
		err := updateEach(enr, []byte(e.ID+mdm.ChannelSeparator), keyPrefix, func(u *storage.Enrollment) {
			u.Enrolled, u.Token, u.PushMagic = false, nil, ""
		})
		if err != nil {
			return err
		}
		return supersedeDevice(tx, e.ID, s.now())
	})
}

// Rebind implements storage.CheckinStore.
func (s *Store) Rebind(ctx context.Context, rec *storage.RebindRecord) error {
	return s.update(func(tx *bolt.Tx) error {
		enr, bind := tx.Bucket([]byte(bEnrollments)), tx.Bucket([]byte(bCertBind))
		var e storage.Enrollment
		if err := getJSON(enr, []byte(rec.DeviceID), &e); err != nil {
			return err
		}
		switch {
		case !e.Enrolled:
			return fmt.Errorf("%w: device %s is not enrolled", storage.ErrConflict, rec.DeviceID)
		case e.CertHash != rec.PrevCertHash:
			return fmt.Errorf("%w: device %s is now bound to another certificate", storage.ErrConflict, rec.DeviceID)
		}
		if dev := bind.Get([]byte(rec.CertHash)); dev != nil && string(dev) != rec.DeviceID {
			return fmt.Errorf("%w: certificate is bound to another device", storage.ErrConflict)
		}
		if rec.PrevCertHash != "" && rec.PrevCertHash != rec.CertHash {
			if err := bind.Delete([]byte(rec.PrevCertHash)); err != nil {
				return err
			}
		}
		if err := bind.Put([]byte(rec.CertHash), []byte(rec.DeviceID)); err != nil {
			return err
		}
		e.CertHash, e.CertSerial, e.CertNotAfter = rec.CertHash, rec.CertSerial, rec.CertNotAfter
		if rec.Facts != nil {
			e.Facts = rec.Facts
		}
		if rec.Renewal != nil {
			e.Renewal = rec.Renewal
		}
		return putJSON(enr, []byte(rec.DeviceID), &e)
	})
}

// supersedeDevice ends every queued or deferred command of a device and its
// user channels: they belonged to the previous enrollment.
func supersedeDevice(tx *bolt.Tx, deviceID string, now time.Time) error {
	for _, bucket := range []string{bQueue, bDeferred} {
		q := tx.Bucket([]byte(bucket))
		for _, p := range [][]byte{prefix(deviceID), []byte(deviceID + ":")} {
			c := q.Cursor()
			for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Seek(p) {
				channel := string(k[:len(k)-9])
				if err := setTargetStatus(tx, string(v), channel, storage.Superseded, now); err != nil {
					return err
				}
				if err := q.Delete(k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func setTargetStatus(tx *bolt.Tx, uuid, channel string, st storage.TargetStatus, now time.Time) error {
	tb := tx.Bucket([]byte(bTargets))
	var t storage.Target
	if err := getJSON(tb, key(uuid, channel), &t); err != nil {
		return err
	}
	t.Status, t.UpdatedAt = st, now
	return putJSON(tb, key(uuid, channel), &t)
}

// match says which keys updateEach visits.
type match int

const (
	exactKey  match = iota // only the key equal to p
	keyPrefix              // every key starting with p
)

// updateEach applies fn to the enrollments whose key matches p. Keys are
// collected first: bbolt cursors must not see the bucket change under them.
func updateEach(b *bolt.Bucket, p []byte, m match, fn func(*storage.Enrollment)) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
		if m == exactKey && len(k) != len(p) {
			break
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		var e storage.Enrollment
		if err := getJSON(b, k, &e); err != nil {
			return err
		}
		fn(&e)
		if err := putJSON(b, k, &e); err != nil {
			return err
		}
	}
	return nil
}

// Enrollment implements storage.CheckinStore.
func (s *Store) Enrollment(ctx context.Context, id string) (*storage.Enrollment, error) {
	var e storage.Enrollment
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bEnrollments))
		err := getJSON(b, []byte(id), &e)
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		// Another spelling of a hex device ID names the same device.
		dev, user, isUser := strings.Cut(id, mdm.ChannelSeparator)
		owner := tx.Bucket([]byte(bDeviceFold)).Get([]byte(mdm.FoldDeviceID(dev)))
		if owner == nil || string(owner) == dev {
			return err
		}
		k := string(owner)
		if isUser {
			k += mdm.ChannelSeparator + user
		}
		return getJSON(b, []byte(k), &e)
	})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// DeviceForCert implements storage.CheckinStore.
func (s *Store) DeviceForCert(ctx context.Context, certHash string) (string, error) {
	var id string
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bCertBind)).Get([]byte(certHash))
		if v == nil {
			return storage.ErrNotFound
		}
		id = string(v)
		return nil
	})
	return id, err
}

// UpdateEnrollment implements storage.CheckinStore.
func (s *Store) UpdateEnrollment(ctx context.Context, id string, create *storage.Enrollment, fn func(*storage.Enrollment) error) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bEnrollments))
		var e storage.Enrollment
		err := getJSON(b, []byte(id), &e)
		if errors.Is(err, storage.ErrNotFound) && create != nil {
			e = *create
		} else if err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
		e.ID = id
		return putJSON(b, []byte(id), &e)
	})
}

// CheckOut implements storage.CheckinStore.
func (s *Store) CheckOut(ctx context.Context, deviceID string, at time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bEnrollments))
		if b.Get([]byte(deviceID)) == nil {
			return storage.ErrNotFound
		}
		mark := func(e *storage.Enrollment) { e.Enrolled, e.CheckedOutAt = false, at }
		if err := updateEach(b, []byte(deviceID), exactKey, mark); err != nil {
			return err
		}
		return updateEach(b, []byte(deviceID+mdm.ChannelSeparator), keyPrefix, mark)
	})
}

// TouchLastSeen implements storage.CheckinStore.
func (s *Store) TouchLastSeen(ctx context.Context, seen map[string]time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bEnrollments))
		for id, at := range seen {
			var e storage.Enrollment
			if err := getJSON(b, []byte(id), &e); errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if at.After(e.LastSeen) {
				e.LastSeen = at
				if err := putJSON(b, []byte(id), &e); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ListEnrollments implements storage.CheckinStore.
func (s *Store) ListEnrollments(ctx context.Context, after string, limit int) ([]storage.Enrollment, error) {
	return listJSON[storage.Enrollment](s, []byte(bEnrollments), after, limit)
}

// queueFields is the part of an enrollment Enqueue reads: decoding only
// these keeps a command for 100,000 channels inside the queue's single
// write short.
type queueFields struct {
	ID         string `json:"id"`
	DeviceID   string `json:"device_id"`
	Enrolled   bool   `json:"enrolled"`
	Generation uint64 `json:"generation"`
}

// Enqueue implements storage.CommandQueue.
func (s *Store) Enqueue(ctx context.Context, cmd *storage.Command, channels []string) error {
	return s.update(func(tx *bolt.Tx) error {
		enr := tx.Bucket([]byte(bEnrollments))
		cb := tx.Bucket([]byte(bCommands))
		if cb.Get([]byte(cmd.UUID)) != nil {
			return fmt.Errorf("%w: command %s already exists", storage.ErrConflict, cmd.UUID)
		}
		if err := putJSON(cb, []byte(cmd.UUID), cmd); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bCommandRaw)).Put([]byte(cmd.UUID), cmd.Raw); err != nil {
			return err
		}
		q, tb, log := tx.Bucket([]byte(bQueue)), tx.Bucket([]byte(bTargets)), tx.Bucket([]byte(bCommandLog))
		hist := tx.Bucket([]byte(bHistory))
		// Seqs only grow: the log's new keys, like the targets', append.
		log.FillPercent = 0.9
		// A command's targets are one contiguous run of new keys: pages
		// split full rather than half full hold a 100,000-target command
		// in about half the pages (and half the memory until commit).
		tb.FillPercent = 0.9
		// bbolt keeps every value put until the commit: one copy of the
		// UUID serves all of a command's queue and history entries.
		uuid := []byte(cmd.UUID)
		for _, ch := range channels {
			var e queueFields
			if err := getJSON(enr, []byte(ch), &e); errors.Is(err, storage.ErrNotFound) || err == nil && !e.Enrolled {
				return fmt.Errorf("channel %s is not enrolled: %w", ch, storage.ErrNotFound)
			} else if err != nil {
				return err
			}
			tk := key(cmd.UUID, ch)
			if tb.Get(tk) != nil {
				continue // listed twice
			}
			seq, err := q.NextSequence()
			if err != nil {
				return err
			}
			gen := e.Generation
			if e.DeviceID != e.ID {
				var dev queueFields
				if err := getJSON(enr, []byte(e.DeviceID), &dev); err == nil {
					gen = dev.Generation
				}
			}
			t := storage.Target{ChannelID: ch, Status: storage.Queued, QueuedAt: cmd.CreatedAt, UpdatedAt: cmd.CreatedAt, Generation: gen, Seq: seq}
			if err := putJSON(tb, tk, &t); err != nil {
				return err
			}
			sk := seqKey(ch, seq) // bbolt copies keys
			if err := q.Put(sk, uuid); err != nil {
				return err
			}
			if err := hist.Put(sk, uuid); err != nil {
				return err
			}
			if err := log.Put(u64(seq), tk); err != nil {
				return err
			}
		}
		return nil
	})
}

// Next implements storage.CommandQueue.
func (s *Store) Next(ctx context.Context, channel string) (*storage.Command, error) {
	var cmd *storage.Command
	offered := true
	err := s.view(func(tx *bolt.Tx) (err error) {
		cmd, offered, err = head(tx, channel)
		return err
	})
	if err != nil || offered {
		return cmd, err
	}
	return s.offer(channel, cmd)
}

// head reads the first queued command of channel and whether it was
// offered (true when there is none).
func head(tx *bolt.Tx, channel string) (*storage.Command, bool, error) {
	p := prefix(channel)
	k, v := tx.Bucket([]byte(bQueue)).Cursor().Seek(p)
	if k == nil || !hasPrefix(k, p) {
		return nil, true, nil
	}
	cmd := new(storage.Command)
	if err := getJSON(tx.Bucket([]byte(bCommands)), v, cmd); err != nil {
		return nil, false, err
	}
	// Copy: bbolt memory is only valid inside the transaction.
	cmd.Raw = append([]byte(nil), tx.Bucket([]byte(bCommandRaw)).Get(v)...)
	var t storage.Target
	if err := getJSON(tx.Bucket([]byte(bTargets)), key(cmd.UUID, channel), &t); err != nil {
		return nil, false, err
	}
	return cmd, !t.OfferedAt.IsZero(), nil
}

// offer records the first offer of cmd, read at the head of channel, so
// that only offered commands can be answered. (The head may have moved
// since the read; offerHead marks whatever is there, which is what the
// next Next returns.)
func (s *Store) offer(channel string, cmd *storage.Command) (*storage.Command, error) {
	if err := s.update(func(tx *bolt.Tx) error { return offerHead(tx, channel, time.Now()) }); err != nil {
		return nil, err
	}
	return cmd, nil
}

// IdleNext implements storage.CommandQueue: the deferred check and the
// head in one read transaction.
func (s *Store) IdleNext(ctx context.Context, channel string) (*storage.Command, error) {
	var cmd *storage.Command
	deferred, offered := false, true
	err := s.view(func(tx *bolt.Tx) (err error) {
		p := prefix(channel)
		k, _ := tx.Bucket([]byte(bDeferred)).Cursor().Seek(p)
		if deferred = k != nil && hasPrefix(k, p); deferred {
			return nil
		}
		cmd, offered, err = head(tx, channel)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case deferred:
		if err := s.Undefer(ctx, channel); err != nil {
			return nil, err
		}
		return s.Next(ctx, channel)
	case offered:
		return cmd, nil
	}
	return s.offer(channel, cmd)
}

// StoreResult implements storage.CommandQueue.
func (s *Store) StoreResult(ctx context.Context, r *storage.Result) (bool, error) {
	var dup bool
	err := s.update(func(tx *bolt.Tx) error {
		dup = false
		tb := tx.Bucket([]byte(bTargets))
		tk := key(r.CommandUUID, r.ChannelID)
		var t storage.Target
		if err := getJSON(tb, tk, &t); err != nil {
			return err
		}
		var cmd storage.Command
		if err := getJSON(tx.Bucket([]byte(bCommands)), []byte(r.CommandUUID), &cmd); err != nil {
			return err
		}
		r.RequestType = cmd.RequestType
		if t.OfferedAt.IsZero() {
			return fmt.Errorf("command %s was never offered to %s: %w", r.CommandUUID, r.ChannelID, storage.ErrNotFound)
		}
		if t.ResultCount > 0 && (t.Status == r.Status || answered(t.Status)) {
			dup = true
			return nil
		}
		rk := append(prefix(r.CommandUUID, r.ChannelID), u64(uint64(t.ResultCount))...)
		if err := putJSON(tx.Bucket([]byte(bResults)), rk, r); err != nil {
			return err
		}
		t.ResultCount++
		t.Status, t.UpdatedAt = r.Status, r.At
		if err := putJSON(tb, tk, &t); err != nil {
			return err
		}
		if r.Effect != nil {
			if e := r.Effect(cmd.RequestType); e != nil {
				if err := putDeviceReport(tx, r.ChannelID, e); err != nil {
					return err
				}
			}
		}
		qk := seqKey(r.ChannelID, t.Seq)
		q, d := tx.Bucket([]byte(bQueue)), tx.Bucket([]byte(bDeferred))
		if r.Status == storage.NotNow {
			if err := move(q, d, qk); err != nil {
				return err
			}
		} else {
			if err := q.Delete(qk); err != nil {
				return err
			}
			if err := d.Delete(qk); err != nil {
				return err
			}
		}
		return offerHead(tx, r.ChannelID, r.At)
	})
	return dup, err
}

// offerHead marks the command now at the head of a channel's queue
// offered. StoreResult calls it because the service hands that command out
// in the same response; doing it in the result's write saves Next a write
// (and an fsync) per command when several are queued.
func offerHead(tx *bolt.Tx, channel string, at time.Time) error {
	p := prefix(channel)
	k, v := tx.Bucket([]byte(bQueue)).Cursor().Seek(p)
	if k == nil || !hasPrefix(k, p) {
		return nil
	}
	tb := tx.Bucket([]byte(bTargets))
	tk := key(string(v), channel)
	var t storage.Target
	if err := getJSON(tb, tk, &t); err != nil {
		return err
	}
	if !t.OfferedAt.IsZero() {
		return nil
	}
	t.OfferedAt = at
	return putJSON(tb, tk, &t)
}

// answered reports whether a status is the device's final answer.
func answered(st storage.TargetStatus) bool {
	return st == storage.Acknowledged || st == storage.Error || st == storage.CommandFormatError
}

// move transfers k from one bucket to another if it is there.
func move(from, to *bolt.Bucket, k []byte) error {
	v := from.Get(k)
	if v == nil {
		return nil
	}
	if err := to.Put(k, append([]byte(nil), v...)); err != nil {
		return err
	}
	return from.Delete(k)
}

// Defer implements storage.CommandQueue.
func (s *Store) Defer(ctx context.Context, channel, uuid string) error {
	return s.update(func(tx *bolt.Tx) error {
		var t storage.Target
		if err := getJSON(tx.Bucket([]byte(bTargets)), key(uuid, channel), &t); err != nil {
			return err
		}
		return move(tx.Bucket([]byte(bQueue)), tx.Bucket([]byte(bDeferred)), seqKey(channel, t.Seq))
	})
}

// Undefer implements storage.CommandQueue.
func (s *Store) Undefer(ctx context.Context, channel string) error {
	p := prefix(channel)
	var any bool
	if err := s.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket([]byte(bDeferred)).Cursor().Seek(p)
		any = k != nil && hasPrefix(k, p)
		return nil
	}); err != nil || !any {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		q, d := tx.Bucket([]byte(bQueue)), tx.Bucket([]byte(bDeferred))
		now := s.now()
		c := d.Cursor()
		for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Seek(p) {
			// Queued again: a later NotNow is a new answer, not a repeat.
			if err := setTargetStatus(tx, string(v), channel, storage.Queued, now); err != nil {
				return err
			}
			if err := move(d, q, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Command implements storage.CommandQueue.
func (s *Store) Command(ctx context.Context, uuid string) (*storage.Command, []storage.Target, error) {
	var cmd storage.Command
	var targets []storage.Target
	err := s.view(func(tx *bolt.Tx) error {
		if err := getJSON(tx.Bucket([]byte(bCommands)), []byte(uuid), &cmd); err != nil {
			return err
		}
		cmd.Raw = append([]byte(nil), tx.Bucket([]byte(bCommandRaw)).Get([]byte(uuid))...)
		c := tx.Bucket([]byte(bTargets)).Cursor()
		p := prefix(uuid)
		for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
			var t storage.Target
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
			targets = append(targets, t)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return &cmd, targets, nil
}

// Results implements storage.CommandQueue.
func (s *Store) Results(ctx context.Context, uuid string) ([]storage.Result, error) {
	var out []storage.Result
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bResults)).Cursor()
		p := prefix(uuid)
		for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
			var r storage.Result
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Cancel implements storage.CommandQueue.
func (s *Store) Cancel(ctx context.Context, uuid string) (int, error) {
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		if tx.Bucket([]byte(bCommands)).Get([]byte(uuid)) == nil {
			return storage.ErrNotFound
		}
		tb := tx.Bucket([]byte(bTargets))
		q, d := tx.Bucket([]byte(bQueue)), tx.Bucket([]byte(bDeferred))
		p := prefix(uuid)
		now := s.now()
		var ks [][]byte
		c := tb.Cursor()
		for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
			ks = append(ks, append([]byte(nil), k...))
		}
		for _, k := range ks {
			var t storage.Target
			if err := getJSON(tb, k, &t); err != nil {
				return err
			}
			if t.Status != storage.Queued && t.Status != storage.NotNow {
				continue
			}
			qk := seqKey(t.ChannelID, t.Seq)
			if err := q.Delete(qk); err != nil {
				return err
			}
			if err := d.Delete(qk); err != nil {
				return err
			}
			t.Status, t.UpdatedAt = storage.Canceled, now
			if err := putJSON(tb, k, &t); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// QueueDepth implements storage.CommandQueue.
func (s *Store) QueueDepth(ctx context.Context, channel string) (int, error) {
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		p := prefix(channel)
		for _, b := range []string{bQueue, bDeferred} {
			c := tx.Bucket([]byte(b)).Cursor()
			for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
				n++
			}
		}
		return nil
	})
	return n, err
}

// Setting implements storage.SettingsStore.
func (s *Store) Setting(ctx context.Context, k string) ([]byte, error) {
	var v []byte
	err := s.view(func(tx *bolt.Tx) error {
		got := tx.Bucket([]byte(bSettings)).Get([]byte(k))
		if got == nil {
			return storage.ErrNotFound
		}
		v = append([]byte(nil), got...)
		return nil
	})
	return v, err
}

// PutSetting implements storage.SettingsStore.
func (s *Store) PutSetting(ctx context.Context, k string, v []byte) error {
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bSettings)).Put([]byte(k), v) })
}

// PushTargets implements storage.PushStore.
func (s *Store) PushTargets(ctx context.Context, ids []string) ([]storage.PushTarget, error) {
	out := make([]storage.PushTarget, 0, len(ids))
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bEnrollments))
		for _, id := range ids {
			var t storage.PushTarget
			if err := getJSON(b, []byte(id), &t); errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// RecordPushResults implements storage.PushStore.
func (s *Store) RecordPushResults(ctx context.Context, results []storage.PushResult) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bEnrollments))
		for _, r := range results {
			var e storage.Enrollment
			if err := getJSON(b, []byte(r.ChannelID), &e); errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			e.LastPushAt, e.LastPushSent, e.LastPushError = r.At, r.Sent, r.Reason
			if r.TokenInvalid && bytes.Equal(e.Token, r.Token) {
				e.TokenInvalid = true
			}
			if err := putJSON(b, []byte(r.ChannelID), &e); err != nil {
				return err
			}
		}
		return nil
	})
}

// Counts implements storage.CommandQueue.
func (s *Store) Counts(ctx context.Context) (queued, enrolled int, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		queued = tx.Bucket([]byte(bQueue)).Stats().KeyN + tx.Bucket([]byte(bDeferred)).Stats().KeyN
		return tx.Bucket([]byte(bEnrollments)).ForEach(func(k, v []byte) error {
			// Only the two fields that matter are decoded.
			var e struct {
				DeviceID string `json:"device_id"`
				Enrolled bool   `json:"enrolled"`
			}
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if e.Enrolled && e.DeviceID == string(k) {
				enrolled++
			}
			return nil
		})
	})
	return queued, enrolled, err
}

package service

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// stateCache remembers, for the connect hot path, which device each
// certificate is bound to and which channels are enrolled. Only this
// service changes either (Authenticate, TokenUpdate, CheckOut), and it
// updates the cache after each such write, so storage stays the truth and
// the cache never answers for a state storage does not hold.
//
// It is kept compact because it holds every device that connected: a
// SHA-256 hex fingerprint is held as its 32 bytes, a device's own state is
// one small value, and only devices with user channels get a set of them
// (a map per device cost ~650 bytes a device; this costs ~150).
type stateCache struct {
	mu      sync.RWMutex
	bound   map[fingerprint]string // cert hash -> device ID
	other   map[string]string      // cert hashes that are not SHA-256 hex
	devices map[string]deviceState // device ID -> its binding and enrollment
	otherOf map[string]string      // device ID -> its hash in other (rare: kept apart)
	users   map[string]map[string]struct{}
	// epoch counts invalidations: a fill read before the latest one is
	// dropped, so a change another replica made is never cached over.
	epoch uint64
	// readThrough: another replica's changes may be unknown (notifications
	// lost), so nothing is answered from or kept in the cache.
	readThrough bool
}

type fingerprint [sha256.Size]byte

// deviceState is what the cache knows of one device.
type deviceState struct {
	hash     fingerprint
	hashed   bool // hash is set (else see otherOf)
	enrolled bool // the device channel is enrolled
}

// maxCachedDevices bounds the cache; past it, it starts over.
const maxCachedDevices = 500_000

func newStateCache() *stateCache {
	return &stateCache{bound: map[fingerprint]string{}, other: map[string]string{},
		devices: map[string]deviceState{}, otherOf: map[string]string{}, users: map[string]map[string]struct{}{}}
}

// parseFingerprint reads a lowercase SHA-256 hex hash (the only spelling
// that maps back to the same string), on every connect: no allocation.
func parseFingerprint(hash string) (fingerprint, bool) {
	var f fingerprint
	if len(hash) != 2*len(f) {
		return f, false
	}
	for i := range f {
		hi, ok1 := lowerHex(hash[2*i])
		lo, ok2 := lowerHex(hash[2*i+1])
		if !ok1 || !ok2 {
			return fingerprint{}, false
		}
		f[i] = hi<<4 | lo
	}
	return f, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// now is the epoch a caller reads storage in; it passes it to bind or
// setEnrolled with what it read.
func (c *stateCache) now() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.epoch
}

// invalidate drops everything and, with readThrough, stops caching until
// called again without it.
func (c *stateCache) invalidate(readThrough bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.readThrough = readThrough
	c.clearAll()
}

// clearAll empties every map; c.mu is held.
func (c *stateCache) clearAll() {
	clear(c.bound)
	clear(c.other)
	clear(c.devices)
	clear(c.otherOf)
	clear(c.users)
}

// stale says a fill read at epoch must not be kept; c.mu is held.
func (c *stateCache) stale(epoch uint64) bool { return c.readThrough || epoch != c.epoch }

func (c *stateCache) device(hash string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.readThrough {
		return "", false
	}
	if f, ok := parseFingerprint(hash); ok {
		d, ok := c.bound[f]
		return d, ok
	}
	d, ok := c.other[hash]
	return d, ok
}

func (c *stateCache) bind(epoch uint64, hash, device string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stale(epoch) {
		return
	}
	c.trim()
	st := c.devices[device]
	if st.hashed {
		delete(c.bound, st.hash)
	} else if k, ok := c.otherOf[device]; ok {
		delete(c.other, k)
		delete(c.otherOf, device)
	}
	st.hash, st.hashed = fingerprint{}, false
	if f, ok := parseFingerprint(hash); ok {
		st.hash, st.hashed = f, true
		c.bound[f] = device
	} else {
		c.otherOf[device] = hash
		c.other[hash] = device
	}
	c.devices[device] = st
}

// trim starts over once the cache is full; c.mu is held.
func (c *stateCache) trim() {
	if len(c.devices) >= maxCachedDevices {
		c.clearAll()
	}
}

func (c *stateCache) isEnrolled(ch mdm.Channel) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.readThrough {
		return false
	}
	if ch.IsUser() {
		_, ok := c.users[ch.DeviceID][ch.ID()]
		return ok
	}
	return c.devices[ch.DeviceID].enrolled
}

func (c *stateCache) setEnrolled(epoch uint64, ch mdm.Channel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stale(epoch) {
		return
	}
	c.trim()
	if !ch.IsUser() {
		st := c.devices[ch.DeviceID]
		st.enrolled = true
		c.devices[ch.DeviceID] = st
		return
	}
	m := c.users[ch.DeviceID]
	if m == nil {
		m = map[string]struct{}{}
		c.users[ch.DeviceID] = m
	}
	m[ch.ID()] = struct{}{}
}

// unenroll forgets a channel, or a device with all its user channels (its
// certificate binding stays: it is storage's, not the enrollment's).
func (c *stateCache) unenroll(ch mdm.Channel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch.IsUser() {
		delete(c.users[ch.DeviceID], ch.ID())
		return
	}
	delete(c.users, ch.DeviceID)
	if st, ok := c.devices[ch.DeviceID]; ok {
		st.enrolled = false
		c.devices[ch.DeviceID] = st
	}
}

// boundDevice checks the message claims the device the identity is bound
// to (one device can never act as another) and returns the channel spelled
// as that device is stored: hex UDIDs compare case-insensitively.
func (s *Service) boundDevice(ctx context.Context, hash string, ch mdm.Channel) (mdm.Channel, error) {
	epoch := s.cache.now()
	dev, ok := s.cache.device(hash)
	if !ok {
		var err error
		dev, err = s.store.DeviceForCert(ctx, hash)
		if errors.Is(err, storage.ErrNotFound) {
			return ch, fmt.Errorf("%w: certificate is not bound to an enrollment; Authenticate first", ErrForbidden)
		}
		if err != nil {
			return ch, err
		}
		s.cache.bind(epoch, hash, dev)
	}
	if !mdm.SameDeviceID(dev, ch.DeviceID) {
		return ch, fmt.Errorf("%w: certificate is bound to another device", ErrForbidden)
	}
	ch.DeviceID = dev
	return ch, nil
}

// checkEnrolled is enrolledChannel for callers that need no record.
func (s *Service) checkEnrolled(ctx context.Context, ch mdm.Channel) error {
	if s.cache.isEnrolled(ch) {
		return nil
	}
	_, err := s.enrolledChannel(ctx, ch)
	return err
}

// enrolledChannel loads a channel and checks it is enrolled.
func (s *Service) enrolledChannel(ctx context.Context, ch mdm.Channel) (*storage.Enrollment, error) {
	epoch := s.cache.now()
	e, err := s.store.Enrollment(ctx, ch.ID())
	if errors.Is(err, storage.ErrNotFound) || err == nil && !e.Enrolled {
		return nil, fmt.Errorf("%w: channel %s is not enrolled", ErrForbidden, ch.ID())
	}
	if err != nil {
		return nil, err
	}
	s.cache.setEnrolled(epoch, ch)
	return e, nil
}

// ForgetCached drops what the service cached of certificate bindings and
// enrolled channels, for a change another replica made. With readThrough
// it also stops caching (every check reads storage) until the next call
// without it: for when such changes may have been missed.
func (s *Service) ForgetCached(readThrough bool) { s.cache.invalidate(readThrough) }

package service

import (
	"context"
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
type stateCache struct {
	mu       sync.RWMutex
	bound    map[string]string              // cert hash -> device ID
	hashOf   map[string]string              // device ID -> cert hash
	enrolled map[string]map[string]struct{} // device ID -> enrolled channels of it
}

// maxCachedDevices bounds the cache; past it, it starts over.
const maxCachedDevices = 500_000

func newStateCache() *stateCache {
	return &stateCache{bound: map[string]string{}, hashOf: map[string]string{}, enrolled: map[string]map[string]struct{}{}}
}

func (c *stateCache) device(hash string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, ok := c.bound[hash]
	return d, ok
}

func (c *stateCache) bind(hash, device string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.hashOf) >= maxCachedDevices {
		clear(c.bound)
		clear(c.hashOf)
		clear(c.enrolled)
	}
	if old, ok := c.hashOf[device]; ok && old != hash {
		delete(c.bound, old)
	}
	c.bound[hash], c.hashOf[device] = device, hash
}

func (c *stateCache) isEnrolled(ch mdm.Channel) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.enrolled[ch.DeviceID][ch.ID()]
	return ok
}

func (c *stateCache) setEnrolled(ch mdm.Channel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.enrolled[ch.DeviceID]
	if m == nil {
		m = map[string]struct{}{}
		c.enrolled[ch.DeviceID] = m
	}
	m[ch.ID()] = struct{}{}
}

// unenroll forgets a channel, or a device with all its user channels.
func (c *stateCache) unenroll(ch mdm.Channel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch.IsUser() {
		delete(c.enrolled[ch.DeviceID], ch.ID())
		return
	}
	delete(c.enrolled, ch.DeviceID)
}

// boundDevice checks the message claims the device the identity is bound
// to (one device can never act as another) and returns the channel spelled
// as that device is stored: hex UDIDs compare case-insensitively.
func (s *Service) boundDevice(ctx context.Context, hash string, ch mdm.Channel) (mdm.Channel, error) {
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
		s.cache.bind(hash, dev)
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
	e, err := s.store.Enrollment(ctx, ch.ID())
	if errors.Is(err, storage.ErrNotFound) || err == nil && !e.Enrolled {
		return nil, fmt.Errorf("%w: channel %s is not enrolled", ErrForbidden, ch.ID())
	}
	if err != nil {
		return nil, err
	}
	s.cache.setEnrolled(ch)
	return e, nil
}

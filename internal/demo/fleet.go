// Package demo is Orchard without hardware: a fleet of simulated iPhones,
// iPads and Macs (internal/simdevice, speaking the public protocol from
// real enrollment profiles) that enroll through the admin API and then
// stay online, answering commands when woken and on a regular check.
// `orchard demo` runs it against a server of its own with a fake APNs;
// `orchard simulate` against an existing server.
package demo

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// kinds are the device models the fleet cycles through.
var kinds = []struct {
	name, model, modelName, product, os, build string
}{
	{"iPhone", "iPhone15,2", "iPhone", "iPhone15,2", "17.5", "21F79"},
	{"iPad", "iPad13,16", "iPad Air", "iPad13,16", "18.1", "22B83"},
	{"Mac", "Mac14,2", "MacBook Air", "Mac14,2", "14.5", "23F79"},
}

// Fleet is a set of simulated devices that stay online.
type Fleet struct {
	Devices []*simdevice.Device
	// Interval is how often each device checks in on its own (Idle) when
	// not woken; a device also connects at once when woken.
	Interval time.Duration
	// OnCommand, when set, hears every command a device answers.
	OnCommand func(d *simdevice.Device, c *simdevice.Command)

	mu   sync.Mutex
	wake map[string]chan struct{} // hex push token -> the device's wake signal
}

// NewFleet makes n devices, iPhone, iPad and Mac in turn; prefix keeps
// their UDIDs and serials apart from another fleet's.
func NewFleet(n int, prefix string) *Fleet {
	f := &Fleet{Interval: 10 * time.Second, wake: map[string]chan struct{}{}}
	for i := range n {
		k := kinds[i%len(kinds)]
		id := fmt.Sprintf("%s%04d", prefix, i+1)
		token := make([]byte, 32)
		rand.Read(token)
		d := &simdevice.Device{
			UDID:         fmt.Sprintf("0000DE30-%016X", hashID(id)),
			SerialNumber: fmt.Sprintf("DEMO%s", id),
			Model:        k.model, ModelName: k.modelName, ProductName: k.product,
			OSVersion: k.os, BuildVersion: k.build,
			DeviceName: fmt.Sprintf("Demo %s %d", k.name, i+1),
			// The profile's topic replaces it; a server without a push
			// certificate names none.
			Topic:     "com.apple.mgmt.External.00000000-0000-0000-0000-000000000000",
			Token:     token,
			PushMagic: "demo-push-magic-" + hex.EncodeToString(token[:8]),
		}
		f.Devices = append(f.Devices, d)
		f.wake[hex.EncodeToString(token)] = make(chan struct{}, 1)
	}
	return f
}

// hashID spreads a short id over 64 bits (FNV-1a) for a UDID.
func hashID(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Enroll enrolls every device the way a person would with a profile from
// the admin API: a fresh one each (its SCEP challenge is single-use), SCEP
// for the identity, Authenticate and TokenUpdate, then the server's first
// queries answered. hc must trust the server's TLS certificate.
func (f *Fleet) Enroll(ctx context.Context, api *apiclient.Client, hc *http.Client, enrolled func(*simdevice.Device)) error {
	for _, d := range f.Devices {
		profile, err := api.Call(ctx, http.MethodGet, "/v1/enrollment/profile", nil)
		if err != nil {
			return fmt.Errorf("enrollment profile: %w", err)
		}
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		if err := d.EnrollFromProfile(ctx, profile, key, hc); err != nil {
			return fmt.Errorf("%s: %w", d.DeviceName, err)
		}
		if err := d.Enroll(ctx); err != nil {
			return fmt.Errorf("%s: %w", d.DeviceName, err)
		}
		if _, err := d.Drain(ctx, f.answer(d)); err != nil {
			return fmt.Errorf("%s: %w", d.DeviceName, err)
		}
		if enrolled != nil {
			enrolled(d)
		}
	}
	return nil
}

// Wake is APNs reaching the device with this push token; unknown tokens
// are ignored. It never blocks.
func (f *Fleet) Wake(token []byte) {
	f.mu.Lock()
	ch := f.wake[hex.EncodeToString(token)]
	f.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default: // already pending
		}
	}
}

func (f *Fleet) answer(d *simdevice.Device) simdevice.Answerer {
	return func(c *simdevice.Command) (string, map[string]any) {
		if f.OnCommand != nil {
			f.OnCommand(d, c)
		}
		return d.Answer(c)
	}
}

// Run keeps every device online until ctx ends: each connects when woken
// and every Interval, and answers what it is sent. A failed connect is
// reported through errs (when set) and retried at the next turn.
func (f *Fleet) Run(ctx context.Context, errs func(d *simdevice.Device, err error)) {
	var wg sync.WaitGroup
	for _, d := range f.Devices {
		f.mu.Lock()
		ch := f.wake[hex.EncodeToString(d.Token)]
		f.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(f.Interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-ch:
				case <-tick.C:
				}
				if _, err := d.Drain(ctx, f.answer(d)); err != nil && errs != nil && !errors.Is(ctx.Err(), context.Canceled) {
					errs(d, err)
				}
			}
		}()
	}
	wg.Wait()
}

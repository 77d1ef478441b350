package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/pki"
)

// loadKeys returns n RSA 2048 keys, generated in parallel and cached in
// dir (when set) so reruns skip the generation.
func loadKeys(ctx context.Context, dir string, n int) ([]*rsa.PrivateKey, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	keys := make([]*rsa.PrivateKey, n)
	err := parallel(ctx, n, runtime.NumCPU(), func(ctx context.Context, i int) error {
		var path string
		if dir != "" {
			path = filepath.Join(dir, fmt.Sprintf("device-%06d.key", i))
			if data, err := os.ReadFile(path); err == nil {
				if k, err := parseRSAKey(data); err == nil {
					keys[i] = k
					return nil
				}
			}
		}
		k, err := pki.NewRSAKey(2048)
		if err != nil {
			return err
		}
		keys[i] = k
		if path == "" {
			return nil
		}
		der := x509.MarshalPKCS1PrivateKey(k)
		return pki.WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600)
	})
	return keys, err
}

func parseRSAKey(data []byte) (*rsa.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParsePKCS1PrivateKey(b.Bytes)
}

// newDevice is simulated iPhone i with stable identifiers, so reruns
// against the same server data re-enroll the same devices.
func newDevice(i int, hc *http.Client) *simdevice.Device {
	return &simdevice.Device{
		UDID:         fmt.Sprintf("0000%04X-LOAD-%012X", 8101, i),
		SerialNumber: fmt.Sprintf("LD%010d", i),
		Model:        "iPhone15,2", ModelName: "iPhone", ProductName: "iPhone15,2",
		OSVersion: "18.1", BuildVersion: "22B83",
		DeviceName: fmt.Sprintf("Load iPhone %d", i),
		Topic:      "com.apple.mgmt.External.00000000-0000-0000-0000-000000000000",
		Token:      bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5A, 0xC3}, 8),
		PushMagic:  fmt.Sprintf("LOAD-PUSHMAGIC-%d", i),
		Client:     hc,
	}
}

// enroller gets one device its identity and runs Authenticate and TokenUpdate.
type enroller func(ctx context.Context, d *simdevice.Device, key *rsa.PrivateKey) error

// orchardEnroller fetches a fresh enrollment profile per device from the
// admin API, as an admin script would, and follows it. With rebase, the
// profile's https URLs are sent to --server instead, as a TLS-terminating
// proxy in front of `orchard serve --plain-http` would forward them.
func orchardEnroller(c *config, admin *http.Client) enroller {
	return func(ctx context.Context, d *simdevice.Device, key *rsa.PrivateKey) error {
		profile, err := apiGet(ctx, admin, c.ProfileURL, c.APIKey)
		if err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		ps, err := simdevice.ReadProfile(profile)
		if err != nil {
			return err
		}
		if c.Rebase {
			for _, u := range []*string{&ps.SCEPURL, &ps.ServerURL, &ps.CheckInURL} {
				if *u, err = rebase(*u, c.Server); err != nil {
					return err
				}
			}
		}
		return enrollWith(ctx, d, key, ps)
	}
}

// staticEnroller enrolls with a fixed SCEP URL and challenge (NanoMDM
// behind micromdm's scepserver has no profile service).
func staticEnroller(c *config) enroller {
	return func(ctx context.Context, d *simdevice.Device, key *rsa.PrivateKey) error {
		return enrollWith(ctx, d, key, &simdevice.ProfileSettings{
			SCEPURL: c.SCEPURL, Challenge: c.Challenge,
			Subject:   pkix.Name{CommonName: d.UDID, Organization: []string{"orchard-load"}},
			ServerURL: c.ServerURL, CheckInURL: c.CheckinURL,
		})
	}
}

// enrollWith gets the device's identity by SCEP, runs Authenticate and
// TokenUpdate, then answers what the server queues at enrollment (Orchard's
// inventory queries), as a real device does before it idles. It all goes
// over the device's own client, so its TLS session cache is warm after.
func enrollWith(ctx context.Context, d *simdevice.Device, key *rsa.PrivateKey, ps *simdevice.ProfileSettings) error {
	if err := d.EnrollWith(ctx, ps, key, d.Client); err != nil {
		return err
	}
	if err := d.Enroll(ctx); err != nil {
		return err
	}
	_, err := d.Settle(ctx)
	return err
}

// rebase keeps raw's path and query on base's scheme and host.
func rebase(raw, base string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("profile URL %q: %w", raw, err)
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Scheme, u.Host = b.Scheme, b.Host
	return u.String(), nil
}

// apiGet fetches a whole URL from the admin API.
func apiGet(ctx context.Context, hc *http.Client, url, key string) ([]byte, error) {
	return (&apiclient.Client{Key: key, HTTP: hc}).Call(ctx, http.MethodGet, url, nil)
}

// parallel runs fn for 0..n-1 on at most workers goroutines and returns
// the first error; it stops handing out work once ctx ends or fn fails.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// router spreads devices over several replicas, as a load balancer in
// front of them would: device i prefers replica i mod n and moves to the
// next one that is up when a request to its replica fails without an
// HTTP answer (the replica died). A restarted replica is up again once it
// answers its health check.
type router struct {
	urls []*url.URL
	down []atomic.Bool
}

func newRouter(c *config) (*router, error) {
	if len(c.Replicas) == 0 {
		return nil, nil
	}
	r := &router{down: make([]atomic.Bool, len(c.Replicas))}
	for _, raw := range c.Replicas {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("--replicas: %w", err)
		}
		r.urls = append(r.urls, u)
	}
	return r, nil
}

// point sets the device's MDM URLs to the replica it should use now and
// returns that replica's index (-1 without a router).
func (r *router) point(d *simdevice.Device, s *deviceState) int {
	if r == nil {
		return -1
	}
	if s.serverURLs == nil {
		for _, u := range r.urls {
			s.serverURLs = append(s.serverURLs, onHost(d.ServerURL, u))
			s.checkinURLs = append(s.checkinURLs, onHost(d.CheckinURL, u))
		}
	}
	n := len(r.urls)
	i := s.slot % n
	for k := range n {
		if j := (s.slot + k) % n; !r.down[j].Load() {
			i = j
			break
		}
	}
	d.ServerURL, d.CheckinURL = s.serverURLs[i], s.checkinURLs[i]
	return i
}

// failed marks replica i down when err is no HTTP answer, or a proxy's
// "unavailable".
func (r *router) failed(i int, err error) {
	if r == nil || i < 0 {
		return
	}
	var se *simdevice.StatusError
	if errors.As(err, &se) && se.Code != http.StatusBadGateway && se.Code != http.StatusServiceUnavailable {
		return
	}
	r.down[i].Store(true)
}

// live is the base URL of a replica that is up (the first one when none is).
func (r *router) live() string {
	for i, u := range r.urls {
		if !r.down[i].Load() {
			return u.String()
		}
	}
	return r.urls[0].String()
}

// onHost is raw with u's scheme and host.
func onHost(raw string, u *url.URL) string {
	p, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	p.Scheme, p.Host = u.Scheme, u.Host
	return p.String()
}

// killResult is what --kill-pid did during the measured phase.
type killResult struct {
	PID           int     `json:"pid"`
	AfterRequests int     `json:"after_requests"`
	Restarted     bool    `json:"restarted"`
	RestartS      float64 `json:"restart_s,omitempty"` // from the kill until the restarted replica answered
}

// killer SIGKILLs a replica once the measured phase has sent a share of
// its requests and, with --restart-cmd, starts it again.
type killer struct {
	done    chan struct{}
	stopped chan struct{}
	err     error
	res     *killResult
	srv     *serverProc
}

func expectedRequests(c *config, devices int) int {
	if c.Scenario == scenarioRoundtrip {
		return devices * (max(c.Commands, 1) + 1) * max(c.Rounds, 1)
	}
	return devices * c.Connects
}

func startKiller(ctx context.Context, c *config, rt *router, st *stats, expected int, stderr io.Writer) *killer {
	k := &killer{done: make(chan struct{}), stopped: make(chan struct{})}
	if c.KillPID <= 0 {
		close(k.stopped)
		return k
	}
	at := max(1, int(c.KillAt*float64(expected)))
	go func() {
		defer close(k.stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for st.count() < at {
			select {
			case <-k.done:
				k.err = fmt.Errorf("--kill-pid: the run ended after %d requests, before the kill point %d", st.count(), at)
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		k.res = &killResult{PID: c.KillPID, AfterRequests: st.count()}
		if err := syscall.Kill(c.KillPID, syscall.SIGKILL); err != nil {
			k.err = fmt.Errorf("--kill-pid: %w", err)
			return
		}
		killed := time.Now()
		fmt.Fprintf(stderr, "%s: SIGKILL to pid %d after %d requests\n", c.Label, c.KillPID, k.res.AfterRequests)
		if c.RestartCmd == "" {
			return
		}
		// The signal is delivered before the process is gone: its
		// listening socket is free only once it has exited.
		if err := waitExited(ctx, c.KillPID); err != nil {
			k.err = err
			return
		}
		base := c.Replicas[c.KillReplica]
		srv, err := startServer(ctx, c.RestartCmd, strings.TrimRight(base, "/")+"/healthz", stderr)
		if err != nil {
			k.err = err
			return
		}
		k.srv = srv
		k.res.Restarted, k.res.RestartS = true, time.Since(killed).Seconds()
		rt.down[c.KillReplica].Store(false)
		fmt.Fprintf(stderr, "%s: replica %s restarted in %.2fs\n", c.Label, base, k.res.RestartS)
	}()
	return k
}

// waitExited waits until pid has exited (gone, or a zombie its parent has
// not reaped yet).
func waitExited(ctx context.Context, pid int) error {
	for range 2000 {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil
		}
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("--kill-pid: process %d still runs 10 s after SIGKILL", pid)
}

// wait ends the killer after the measured phase and reports its error.
func (k *killer) wait() error {
	close(k.done)
	<-k.stopped
	return k.err
}

func (k *killer) result() *killResult { return k.res }

// close stops the replica the killer restarted.
func (k *killer) close() {
	if k.srv != nil {
		k.srv.stop()
	}
}

// delivery checks every command queued for the roundtrip after it: each
// target acknowledged with one stored result, none offered twice.
type delivery struct {
	Queued       int   `json:"queued"`       // command targets queued (201)
	Acknowledged int   `json:"acknowledged"` // with exactly one result stored
	Lost         int   `json:"lost"`         // not acknowledged at the end
	StoredTwice  int   `json:"stored_twice"` // more than one result stored
	Redelivered  int64 `json:"offered_again"`
}

func verifyDelivery(ctx context.Context, c *config, hc *http.Client, uuids []string, st *stats) (*delivery, error) {
	base := c.Server
	if st.router != nil {
		base = st.router.live()
	}
	api := &apiclient.Client{BaseURL: base, Key: c.APIKey, HTTP: hc}
	d := &delivery{Redelivered: st.redelivered.Load()}
	for _, u := range uuids {
		raw, err := api.Call(ctx, http.MethodGet, "/v1/commands/"+url.PathEscape(u), nil)
		if err != nil {
			return nil, fmt.Errorf("verify delivery: %w", err)
		}
		var v struct {
			Targets []struct {
				Status      string `json:"status"`
				ResultCount int    `json:"result_count"`
			} `json:"targets"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("verify delivery: %w", err)
		}
		for _, t := range v.Targets {
			d.Queued++
			switch {
			case t.Status != "Acknowledged":
				d.Lost++
			case t.ResultCount > 1:
				d.StoredTwice++
			default:
				d.Acknowledged++
			}
		}
	}
	return d, nil
}

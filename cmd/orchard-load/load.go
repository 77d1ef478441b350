package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// maxRequestsPerDevice bounds the roundtrip drain loop.
const maxRequestsPerDevice = 1_000

func loadMain(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	rep, err := runLoad(ctx, c, stderr)
	if err != nil {
		return err
	}
	rep.writeText(stdout)
	if c.JSON != "" {
		return rep.writeJSON(c.JSON, stdout)
	}
	return nil
}

// runLoad enrolls the devices, prepares the scenario and measures it.
func runLoad(ctx context.Context, c *config, stderr io.Writer) (*report, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	pid := c.PID
	if c.ServerCmd != "" {
		srv, err := startServer(ctx, c.ServerCmd, c.ReadyURL, stderr)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		pid = srv.pid()
	}
	roots, err := rootsFor(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("TLS trust: %w", err)
	}
	tr := newTransports(c.Conn, roots)
	hc := tr.admin(c.Concurrency)
	defer hc.CloseIdleConnections()

	n := c.Devices
	if c.Backlog > 0 {
		n++ // the last device carries the backlog
	}
	keys, err := loadKeys(ctx, c.KeyCache, n)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	devs := make([]*simdevice.Device, n)
	for i := range devs {
		devs[i] = newDevice(c.First+i, tr.device())
	}
	defer func() {
		for _, d := range devs {
			d.Client.CloseIdleConnections()
		}
	}()
	enroll := orchardEnroller(c, hc)
	if c.Target == targetNanoMDM {
		enroll = staticEnroller(c)
	}

	rep := &report{Label: c.Label, Target: c.Target, Scenario: c.Scenario, Devices: c.Devices, Concurrency: c.Concurrency, Backlog: c.Backlog,
		Conn: c.Conn, Signing: signingFresh}
	if c.SignIdleOnce {
		rep.Signing = signingIdleOnce
	}
	ps := procs{db: c.DBPID}
	for _, p := range append([]int{pid}, c.PIDs...) {
		if p > 0 {
			ps.server = append(ps.server, p)
		}
	}
	before := markProc(ps)
	start := time.Now()
	err = parallel(ctx, n, c.Concurrency, func(ctx context.Context, i int) error {
		if err := enroll(ctx, devs[i], keys[i]); err != nil {
			return fmt.Errorf("enroll device %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.Enroll = phaseOf(time.Since(start), before, ps)
	rep.TLS = strings.HasPrefix(devs[0].ServerURL, "https://")
	fmt.Fprintf(stderr, "%s: enrolled %d devices in %s\n", c.Label, n, rep.Enroll.Wall.Round(time.Millisecond))

	if !c.EnrollOnly {
		queued, err := prepare(ctx, c, hc, devs)
		if err != nil {
			return nil, err
		}
		rt, err := newRouter(c)
		if err != nil {
			return nil, err
		}
		// Every device opens its own connection, resuming the TLS session
		// its enrollment left in its cache: in h1 and h2 mode just before
		// the measured phase, which then measures keep-alive connects (the
		// handshake is wake mode's figure, where every wake makes one); in
		// wake mode in every wake.
		for _, d := range devs {
			d.Client.CloseIdleConnections()
		}
		// Handshakes are counted for the measured phase's connections,
		// opened here or in it.
		tlsBefore := tr.stats.mark()
		if c.Conn != connWake {
			if err := openConns(ctx, c, devs); err != nil {
				return nil, err
			}
		}
		measured := devs
		if c.Backlog > 0 {
			measured = devs[:c.Devices]
		}
		st := newStats()
		st.router = rt
		k := startKiller(ctx, c, rt, st, expectedRequests(c, len(measured)), stderr)
		defer k.close()
		rounds := 1
		if c.Scenario == scenarioRoundtrip {
			rounds = c.Rounds
		}
		for r := range rounds {
			if r > 0 {
				more, err := queueRound(ctx, c, hc, measured)
				if err != nil {
					return nil, err
				}
				queued = append(queued, more...)
			}
			// The pushes for what was queued go out asynchronously; they
			// are the push path's cost, not the connects', so let them
			// finish.
			for _, p := range ps.server {
				settle(ctx, p)
			}
			before = markProc(ps)
			start = time.Now()
			if c.Scenario == scenarioRoundtrip {
				err = roundtrip(ctx, c, measured, st)
			} else {
				err = idle(ctx, c, devs, st)
			}
			if err != nil {
				break
			}
			rep.Load = rep.Load.plus(phaseOf(time.Since(start), before, ps))
		}
		kerr := k.wait()
		if err != nil {
			return nil, err
		}
		rep.fill(st)
		rep.fillTLS(tlsBefore, tr.stats.mark())
		rep.Replicas = len(c.Replicas)
		rep.Kill = k.result()
		if kerr != nil {
			return nil, kerr
		}
		if c.Scenario == scenarioRoundtrip && c.Target == targetOrchard {
			if rep.Delivery, err = verifyDelivery(ctx, c, hc, queued, st); err != nil {
				return nil, err
			}
		}
	}
	if pid > 0 {
		if p, err := readProc(pid); err == nil {
			rep.PeakRSSBytes = p.peakRSS
		}
	}
	return rep, nil
}

// openConns has every device open its keep-alive connection to the
// server with a request its MDM endpoints do not see (any answer will do).
func openConns(ctx context.Context, c *config, devs []*simdevice.Device) error {
	return parallel(ctx, len(devs), c.Concurrency, func(ctx context.Context, i int) error {
		u, err := url.Parse(devs[i].ServerURL)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.Scheme+"://"+u.Host+"/", nil)
		if err != nil {
			return err
		}
		resp, err := devs[i].Client.Do(req)
		if err != nil {
			return fmt.Errorf("device %d: open its connection: %w", i, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return resp.Body.Close()
	})
}

// prepare queues what the scenario needs before the measured phase (the
// first round's commands) and returns the roundtrip commands' UUIDs.
func prepare(ctx context.Context, c *config, hc *http.Client, devs []*simdevice.Device) ([]string, error) {
	enq := orchardQueue(c, hc)
	if c.Target == targetNanoMDM {
		enq = nanoQueue(c, hc)
	}
	if c.Backlog > 0 {
		d := devs[len(devs)-1]
		err := parallel(ctx, c.Backlog, c.Concurrency, func(ctx context.Context, i int) error {
			_, err := enq(ctx, []string{d.UDID})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("backlog: %w", err)
		}
	}
	if c.Scenario != scenarioRoundtrip {
		return nil, nil
	}
	return queueRound(ctx, c, hc, devs[:c.Devices])
}

// queueRound queues --commands DeviceInformation commands for each of
// devs and returns their UUIDs (one per API call).
func queueRound(ctx context.Context, c *config, hc *http.Client, devs []*simdevice.Device) ([]string, error) {
	enq := orchardQueue(c, hc)
	if c.Target == targetNanoMDM {
		enq = nanoQueue(c, hc)
	}
	var uuids []string
	for range max(c.Commands, 1) {
		ids := make([]string, 0, len(devs))
		for _, d := range devs {
			ids = append(ids, d.UDID)
		}
		for len(ids) > 0 {
			batch := ids[:min(len(ids), enqueueBatch(c.Target))]
			ids = ids[len(batch):]
			uuid, err := enq(ctx, batch)
			if err != nil {
				return nil, fmt.Errorf("enqueue: %w", err)
			}
			uuids = append(uuids, uuid)
		}
	}
	return uuids, nil
}

// deviceState is what one device carries between requests: the command
// it still has to answer.
type deviceState struct {
	mu      sync.Mutex
	pending *simdevice.Command
	// signIdleOnce: the device signs its Idle report once per run and
	// resends it (idleBody, idleSig), so the generator's RSA signing does
	// not crowd the server out of a shared machine. The body never
	// changes, and the server verifies the signature on every request.
	signIdleOnce bool
	idleBody     []byte
	idleSig      string
	seen         map[string]bool // commands offered to the device
	slot         int             // the device's index, which picks its replica
	// The device's MDM URLs on each replica (router).
	serverURLs, checkinURLs []string
}

// turn is one device's go: in h1 and h2 mode one request (Idle, or the
// answer to the pending command); in wake mode one wake, which answers
// until the server has nothing more (bounded by maxRequestsPerDevice)
// and then closes the connection.
func turn(ctx context.Context, c *config, d *simdevice.Device, s *deviceState, st *stats) error {
	if c.Conn != connWake {
		return request(ctx, d, s, st)
	}
	defer d.Client.CloseIdleConnections()
	for range maxRequestsPerDevice {
		if err := request(ctx, d, s, st); err != nil {
			return err
		}
		if s.pending == nil {
			st.wakes.Add(1)
			return nil
		}
	}
	st.wakes.Add(1) // the rest waits for the next wake
	return nil
}

// request sends one request: the answer to the pending command, or Idle.
func request(ctx context.Context, d *simdevice.Device, s *deviceState, st *stats) error {
	var cmd *simdevice.Command
	var err error
	var took time.Duration
	replica := st.router.point(d, s)
	switch {
	case s.pending != nil:
		status, extra := d.Answer(s.pending)
		t := time.Now()
		cmd, err = d.Report(ctx, status, s.pending.UUID, extra)
		took = time.Since(t)
	case s.signIdleOnce:
		if s.idleBody == nil {
			if s.idleBody, s.idleSig, err = signedIdle(d); err != nil {
				return err
			}
		}
		t := time.Now()
		var resp []byte
		if resp, err = d.PutSigned(ctx, d.ServerURL, contentTypeConnect, s.idleBody, s.idleSig); err == nil {
			cmd, err = simdevice.ParseCommand(resp)
		}
		took = time.Since(t)
	default:
		t := time.Now()
		cmd, err = d.Idle(ctx)
		took = time.Since(t)
	}
	st.observe(took, err)
	if err != nil {
		st.router.failed(replica, err)
		return err // the pending command stays: the device retries it, as a real one would
	}
	if s.pending != nil {
		st.answered.Add(1)
	}
	if cmd != nil {
		if s.seen == nil {
			s.seen = map[string]bool{}
		}
		if s.seen[cmd.UUID] {
			st.redelivered.Add(1)
		}
		s.seen[cmd.UUID] = true
	}
	s.pending = cmd
	return nil
}

const contentTypeConnect = "application/x-apple-aspen-mdm"

// signedIdle is the device's Idle report and its Mdm-Signature.
func signedIdle(d *simdevice.Device) ([]byte, string, error) {
	body, err := plist.Marshal(map[string]any{"UDID": d.UDID, "Status": "Idle"})
	if err != nil {
		return nil, "", err
	}
	sig, err := d.Sign(body)
	return body, sig, err
}

// idle runs --connects turns per device: requests (Idle, or the answer to
// a command the previous one returned), or wakes in wake mode.
func idle(ctx context.Context, c *config, devs []*simdevice.Device, st *stats) error {
	states := make([]deviceState, len(devs))
	for i := range states {
		states[i].signIdleOnce, states[i].slot = c.SignIdleOnce, i
	}
	total := len(devs) * c.Connects
	// Interleave devices so no device is in two workers at once in practice;
	// the per-device lock makes it certain.
	return parallel(ctx, total, c.Concurrency, func(ctx context.Context, i int) error {
		k := i % len(devs)
		states[k].mu.Lock()
		turn(ctx, c, devs[k], &states[k], st)
		states[k].mu.Unlock()
		return ctx.Err()
	})
}

// roundtrip connects each device until its queue is empty, bounded by
// maxRequestsPerDevice.
func roundtrip(ctx context.Context, c *config, devs []*simdevice.Device, st *stats) error {
	var left atomic.Int64
	err := parallel(ctx, len(devs), c.Concurrency, func(ctx context.Context, i int) error {
		s := deviceState{signIdleOnce: c.SignIdleOnce, slot: i}
		for n := 0; ; n++ {
			if n >= maxRequestsPerDevice {
				left.Add(1)
				return nil
			}
			if err := turn(ctx, c, devs[i], &s, st); err == nil && s.pending == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	})
	if n := left.Load(); n > 0 {
		return fmt.Errorf("roundtrip: %d devices still had commands after %d requests", n, maxRequestsPerDevice)
	}
	return err
}

// errorKind names an error for the report.
func errorKind(err error) string {
	var se *simdevice.StatusError
	var ae *apiclient.StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("http_%d", se.Code)
	case errors.As(err, &ae):
		return fmt.Sprintf("http_%d", ae.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "network"
	}
	return "other"
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Targets the generator knows how to drive.
const (
	targetOrchard = "orchard"
	targetNanoMDM = "nanomdm"
)

// Scenarios.
const (
	scenarioIdle      = "idle"
	scenarioRoundtrip = "roundtrip"
)

type config struct {
	Target   string
	Server   string // base URL
	APIKey   string
	Scenario string

	// Orchard enrollment.
	ProfileURL string
	// NanoMDM (or any server without a profile service) enrollment.
	SCEPURL, Challenge, CheckinURL, ServerURL string

	Devices     int
	First       int // index of the first simulated device (distinct devices per run on one server)
	Connects    int
	Concurrency int
	Backlog     int // commands queued on one extra device before the measured phase
	KeyCache    string
	Label       string
	JSON        string // write the JSON report here ("-" for stdout)
	PID         int
	ServerCmd   string
	ReadyURL    string
	Timeout     time.Duration
	AllowRemote bool
	EnrollOnly  bool
	Rebase      bool
	// SignIdleOnce: each device signs its Idle report once and resends it
	// (a labelled option; by default every message is signed afresh).
	SignIdleOnce bool
	// Conn is the connection mode: connH1, connH2 or connWake.
	Conn string
	// CA is a PEM file of roots to trust for TLS instead of the profile's.
	CA string

	// Replicas spreads the devices' MDM requests over these base URLs
	// (enrollment and the admin API use Server).
	Replicas []string
	// Commands is how many DeviceInformation commands each device is
	// queued in the roundtrip scenario, per round.
	Commands int
	// Rounds repeats the roundtrip: queue (pushes let finish), then every
	// device connects until its queue is empty; only the drains are measured.
	Rounds int
	// KillPID is SIGKILLed once KillAt of the measured phase's requests
	// are done; it serves Replicas[KillReplica], which RestartCmd (if set)
	// starts again.
	KillPID     int
	KillAt      float64
	KillReplica int
	RestartCmd  string
	// PIDs are more server processes (replicas) whose CPU is added to
	// PID's; DBPID is the database server (its children included).
	PIDs  []int
	DBPID int
}

func parseLoadFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("orchard-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Target, "target", targetOrchard, "server kind: orchard or nanomdm")
	fs.StringVar(&c.Server, "server", "http://127.0.0.1:8080", "server base URL")
	fs.StringVar(&c.APIKey, "api-key", "", "admin API key (Orchard: bearer key; NanoMDM: -api password)")
	fs.StringVar(&c.Scenario, "scenario", scenarioIdle, "idle: Idle connects; roundtrip: DeviceInformation for every device, connect until every queue is empty")
	fs.StringVar(&c.ProfileURL, "profile-url", "", "Orchard enrollment profile URL (default <server>/v1/enrollment/profile)")
	fs.StringVar(&c.SCEPURL, "scep-url", "", "SCEP URL (servers without a profile service)")
	fs.StringVar(&c.Challenge, "challenge", "", "SCEP challenge (servers without a profile service)")
	fs.StringVar(&c.CheckinURL, "checkin-url", "", "check-in URL (servers without a profile service)")
	fs.StringVar(&c.ServerURL, "server-url", "", "MDM ServerURL for connects (servers without a profile service)")
	fs.IntVar(&c.Devices, "devices", 200, "simulated devices")
	fs.IntVar(&c.First, "first", 0, "index of the first simulated device; runs against one data dir need distinct ranges")
	fs.IntVar(&c.Connects, "connects", 20, "connects per device (idle scenario)")
	fs.IntVar(&c.Concurrency, "concurrency", 8, "concurrent device workers")
	fs.IntVar(&c.Backlog, "backlog", 0, "queue this many commands on one extra device before measuring (Orchard)")
	fs.StringVar(&c.KeyCache, "key-cache", "", "directory caching the devices' RSA keys between runs")
	fs.StringVar(&c.Label, "label", "", "name of this run in the report")
	fs.StringVar(&c.JSON, "json", "", "also write the report as JSON to this file (- for stdout)")
	fs.IntVar(&c.PID, "pid", 0, "server process ID: report its CPU seconds and peak RSS")
	fs.StringVar(&c.ServerCmd, "server-cmd", "", "start this server command (sh -c 'exec ...') and measure it")
	fs.StringVar(&c.ReadyURL, "ready-url", "", "with --server-cmd: poll this URL until it answers (default <server>)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow a non-loopback server")
	fs.BoolVar(&c.Rebase, "rebase", true, "send the profile's https URLs to --server, as a TLS proxy in front of a --plain-http server would")
	signFresh := fs.Bool("sign-fresh", true, "sign every message afresh, as devices do")
	fs.BoolVar(&c.SignIdleOnce, "sign-idle-once", false, "each device signs its Idle report once and resends it (the server still verifies every request), so the generator's signing leaves the cores to the server; reports say so")
	fs.StringVar(&c.Conn, "conn", connH1, "h1: one keep-alive HTTP/1.1 connection per device; h2: one HTTP/2 connection per device (https); wake: a new connection per wake (TLS resumed), Idle, answers, close")
	fs.StringVar(&c.CA, "ca", "", "PEM file of the roots to trust for TLS (default: Orchard's enrollment profile root payload)")
	fs.BoolVar(&c.EnrollOnly, "enroll-only", false, "measure enrollment (profile, SCEP, Authenticate, TokenUpdate) and stop")
	pids := fs.String("pids", "", "comma-separated process IDs of more server replicas: their CPU is added to --pid's")
	fs.IntVar(&c.DBPID, "db-pid", 0, "database server process ID (PostgreSQL's postmaster): its and its children's CPU is reported apart")
	replicas := fs.String("replicas", "", "comma-separated base URLs to spread the devices' MDM requests over (a device moves to the next one when its replica stops answering)")
	fs.IntVar(&c.Commands, "commands", 1, "roundtrip: DeviceInformation commands queued per device (per round)")
	fs.IntVar(&c.Rounds, "rounds", 1, "roundtrip: rounds of queue, let the pushes finish, drain; only the drains are measured")
	fs.IntVar(&c.KillPID, "kill-pid", 0, "SIGKILL this server process (a replica) during the measured phase")
	fs.Float64Var(&c.KillAt, "kill-at", 0.3, "with --kill-pid: share of the measured phase's requests done before the kill")
	fs.IntVar(&c.KillReplica, "kill-replica", 0, "with --kill-pid: index in --replicas of the killed replica")
	fs.StringVar(&c.RestartCmd, "restart-cmd", "", "with --kill-pid: start the replica again with this command (sh -c 'exec ...') after the kill")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *pids != "" {
		for _, f := range strings.Split(*pids, ",") {
			p, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || p <= 0 {
				return nil, fmt.Errorf("--pids: bad process ID %q", f)
			}
			c.PIDs = append(c.PIDs, p)
		}
	}
	if *replicas != "" {
		c.Replicas = strings.Split(*replicas, ",")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	freshSet := false
	fs.Visit(func(f *flag.Flag) { freshSet = freshSet || f.Name == "sign-fresh" })
	if freshSet && *signFresh && c.SignIdleOnce {
		return nil, errors.New("--sign-fresh and --sign-idle-once contradict each other; pick one")
	}
	c.SignIdleOnce = c.SignIdleOnce || !*signFresh
	return c, c.validate()
}

// maxDevices bounds one run; larger fleets are seeded offline.
const maxDevices = 100_000

func (c *config) validate() error {
	c.Server = strings.TrimRight(c.Server, "/")
	switch {
	case c.Target != targetOrchard && c.Target != targetNanoMDM:
		return fmt.Errorf("--target: want orchard or nanomdm, got %q", c.Target)
	case c.Scenario != scenarioIdle && c.Scenario != scenarioRoundtrip:
		return fmt.Errorf("--scenario: want idle or roundtrip, got %q", c.Scenario)
	case c.Devices < 1 || c.Devices > maxDevices:
		return fmt.Errorf("--devices: want 1..%d", maxDevices)
	case c.First < 0 || c.First > 10_000_000:
		return errors.New("--first: want 0..10000000")
	case c.Connects < 1 || c.Connects > 1_000_000:
		return errors.New("--connects: want 1..1000000")
	case c.Concurrency < 1 || c.Concurrency > 4096:
		return errors.New("--concurrency: want 1..4096")
	case c.Backlog < 0 || c.Backlog > 1_000_000:
		return errors.New("--backlog: want 0..1000000")
	case c.Backlog > 0 && c.Target != targetOrchard:
		return errors.New("--backlog is implemented for orchard only")
	case c.Timeout <= 0:
		return errors.New("--timeout must be positive")
	case c.Conn != connH1 && c.Conn != connH2 && c.Conn != connWake:
		return fmt.Errorf("--conn: want h1, h2 or wake, got %q", c.Conn)
	case c.Conn == connH2 && !strings.HasPrefix(c.Server, "https://"):
		return errors.New("--conn h2 needs an https --server")
	case c.Commands < 1 || c.Commands > 1000:
		return errors.New("--commands: want 1..1000")
	case c.Rounds < 1 || c.Rounds > 1000:
		return errors.New("--rounds: want 1..1000")
	case c.Rounds > 1 && c.Scenario != scenarioRoundtrip:
		return errors.New("--rounds goes with --scenario roundtrip")
	case c.KillPID < 0 || c.KillAt <= 0 || c.KillAt >= 1:
		return errors.New("--kill-pid must be positive and --kill-at within (0, 1)")
	case c.KillPID > 0 && (c.KillReplica < 0 || c.KillReplica >= len(c.Replicas)):
		return errors.New("--kill-pid needs --replicas and a --kill-replica index into it")
	case c.RestartCmd != "" && c.KillPID == 0:
		return errors.New("--restart-cmd goes with --kill-pid")
	}
	for i, r := range c.Replicas {
		c.Replicas[i] = strings.TrimRight(r, "/")
	}
	if c.ProfileURL == "" && c.Target == targetOrchard {
		c.ProfileURL = c.Server + "/v1/enrollment/profile"
	}
	if c.Target == targetNanoMDM {
		if c.SCEPURL == "" || c.Challenge == "" {
			return errors.New("nanomdm: --scep-url and --challenge are required")
		}
		if c.CheckinURL == "" {
			c.CheckinURL = c.Server + "/checkin"
		}
		if c.ServerURL == "" {
			c.ServerURL = c.Server + "/mdm"
		}
	}
	if c.ReadyURL == "" {
		c.ReadyURL = c.Server + "/"
	}
	if c.Label == "" {
		c.Label = c.Target
	}
	if c.AllowRemote {
		// Trusting the profile's root means fetching it (with the API key)
		// before the server is verified: only on loopback.
		if c.CA == "" && c.Target == targetOrchard && strings.HasPrefix(c.ProfileURL, "https://") {
			return errors.New("a remote https server needs --ca: the profile's root cannot be trusted before the server is")
		}
		return nil
	}
	for _, u := range append([]string{c.Server, c.ProfileURL, c.SCEPURL, c.CheckinURL, c.ServerURL, c.ReadyURL}, c.Replicas...) {
		if u == "" {
			continue
		}
		if err := loopbackOnly(u); err != nil {
			return err
		}
	}
	return nil
}

// loopbackOnly refuses URLs whose host is not a loopback address or
// "localhost": a load generator must not be pointed at someone's server
// by accident.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad URL %q", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want http or https", raw)
	}
	h := u.Hostname()
	if h == "localhost" {
		return nil
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is not a loopback host (use --allow-remote to load a remote server)", h)
}

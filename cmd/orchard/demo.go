package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/demo"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// syncWriter lets the devices' goroutines print lines whole.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, a...)
}

// demoRun is what `orchard demo` does, with its listener and a hook for
// tests: a server on a temporary data dir with a fake APNs and a push
// certificate it trusts, n simulated devices enrolled in it and kept
// online, until ctx ends.
type demoRun struct {
	listen string
	n      int
	self   string // how the printed command lines call this binary
	// ready, when set, is called once the devices are enrolled.
	ready func(url, dataDir string, fleet *demo.Fleet)
}

func (d demoRun) run(ctx context.Context, stdout, stderr io.Writer) error {
	out := &syncWriter{w: stdout}
	dir, err := os.MkdirTemp("", "orchard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	cert, err := apnstest.NewPushCert()
	if err != nil {
		return err
	}
	fakeAPNs := apnstest.NewServer(cert.Leaf)
	defer fakeAPNs.Close()
	apnsCA := filepath.Join(dir, "fake-apns-ca.pem")
	if err := os.WriteFile(apnsCA, fakeAPNs.CertPEM(), 0o600); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	url := "https://" + ln.Addr().String()
	srv, err := server.New(server.Config{
		DataDir: dir, Listen: ln.Addr().String(), PublicURL: url, APNsURL: fakeAPNs.URL(), APNsCA: apnsCA,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		ln.Close()
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	err = d.enrollAndRun(ctx, out, srv, url, dir, cert, fakeAPNs)
	stop()
	if serr := <-served; err == nil && serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	if err == nil {
		out.printf("demo stopped; its data dir is gone\n")
	}
	return err
}

func (d demoRun) enrollAndRun(ctx context.Context, out *syncWriter, srv *server.Server, url, dir string, cert *apnstest.Cert, fakeAPNs *apnstest.Server) error {
	pool := x509.NewCertPool()
	pool.AddCert(srv.TLSCertificate().Leaf)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	api := &apiclient.Client{BaseURL: url, Key: srv.APIKey(), HTTP: hc}
	if _, err := api.Call(ctx, http.MethodPut, "/v1/push-certificate", map[string]any{
		"cert_pem": string(cert.CertPEM), "key_pem": string(cert.KeyPEM), "apple_id": "demo@example.com",
	}); err != nil {
		return fmt.Errorf("upload the demo push certificate: %w", err)
	}
	out.printf("Orchard demo: serving %s with a fake APNs; data in %s (removed on exit)\n", url, dir)
	fleet := demo.NewFleet(d.n, "")
	fleet.OnCommand = func(dev *simdevice.Device, c *simdevice.Command) {
		out.printf("  %-18s received %s\n", dev.DeviceName, c.RequestType)
	}
	fakeAPNs.OnPush(func(p apnstest.Push) { fleet.Wake(p.Token) })
	if err := fleet.Enroll(ctx, api, hc, func(dev *simdevice.Device) {
		out.printf("enrolled %-18s %s  %s\n", dev.DeviceName, dev.UDID, dev.ProductName)
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	first := fleet.Devices[0].UDID
	self := d.self
	if self == "" {
		self = "orchard"
	}
	cli := fmt.Sprintf("%s --data %s --server %s", self, dir, url)
	out.printf(`
%d devices are online and answer commands (woken through the fake APNs). Try, in another terminal:

  %s devices list
  %s devices action %s lock --set message="Hello from the demo"
  %s devices inventory %s
  %s commands show <command-uuid the lock answered>

Ctrl-C stops the demo.
`, len(fleet.Devices), cli, cli, first, cli, first, cli)
	if d.ready != nil {
		d.ready(url, dir, fleet)
	}
	fleet.Run(ctx, func(dev *simdevice.Device, err error) {
		out.printf("  %-18s could not connect: %v\n", dev.DeviceName, err)
	})
	return nil
}

func demoSetup(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve the demo on")
	n := fs.Int("n", 6, "number of simulated devices (iPhones, iPads and Macs in turn)")
	return func(ctx context.Context, _ []string) error {
		if *n < 1 || *n > 500 {
			return usagef("orchard demo", "-n must be 1 to 500")
		}
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return demoRun{listen: *listen, n: *n, self: os.Args[0]}.run(ctx, e.stdout, e.stderr)
	}
}

// simulateSetup enrolls simulated devices in an existing server and keeps
// them online until Ctrl-C. A real server pushes through Apple, which
// cannot reach them: they check in every --interval instead.
func simulateSetup(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	n := fs.Int("n", 5, "number of simulated devices (iPhones, iPads and Macs in turn)")
	interval := fs.Duration("interval", 10*time.Second, "how often each device checks for commands")
	prefix := fs.String("prefix", "", "tell this fleet's UDIDs and serials apart from another's (default: random)")
	return func(ctx context.Context, _ []string) error {
		if *n < 1 || *n > 10000 {
			return usagef("orchard simulate", "-n must be 1 to 10000")
		}
		if *interval < time.Second {
			return usagef("orchard simulate", "--interval must be at least 1s")
		}
		c, err := e.newClient()
		if err != nil {
			return err
		}
		if *prefix == "" {
			*prefix = fmt.Sprintf("%X", time.Now().UnixNano()&0xFFFFFF)
		}
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		out := &syncWriter{w: e.stdout}
		fleet := demo.NewFleet(*n, *prefix)
		fleet.Interval = *interval
		fleet.OnCommand = func(dev *simdevice.Device, cmd *simdevice.Command) {
			out.printf("  %-18s received %s\n", dev.DeviceName, cmd.RequestType)
		}
		if err := fleet.Enroll(ctx, c.api, c.api.HTTP, func(dev *simdevice.Device) {
			out.printf("enrolled %-18s %s  %s\n", dev.DeviceName, dev.UDID, dev.ProductName)
		}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		out.printf("%d devices online, checking in every %s; Ctrl-C stops them\n", *n, *interval)
		fleet.Run(ctx, func(dev *simdevice.Device, err error) {
			out.printf("  %-18s could not connect: %v\n", dev.DeviceName, err)
		})
		return nil
	}
}

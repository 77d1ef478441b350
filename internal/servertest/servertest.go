// Package servertest starts a real Orchard server for tests: a temporary
// data dir, a real storage backend (bbolt unless a test picks another from
// Backends), real TLS on a loopback port, and simulated devices with
// certificates from the server's own CA.
package servertest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/postgres"
)

// Server is a running test server.
type Server struct {
	*server.Server
	URL    string // https://127.0.0.1:port
	Client *http.Client
	Dir    string
	// Apple is the server's stand-in for Apple's device CA: it trusts
	// Apple.Root for MachineInfo, so a device with Apple set enrolls as an
	// Apple-verified one. It signs with SHA-1, as Apple's device CA does,
	// and is shared by the servers of a test binary (RSA keys are slow to
	// make).
	Apple *simdevice.AppleChain
	// FakeAPNs receives the pushes when Start installed its push
	// certificate; nil otherwise.
	FakeAPNs *apnstest.Server
	api      *apiclient.Client
	stop     func() error // ends Serve and waits for it, once
	// AdminURL is where /v1 and /console are: URL, or the admin listener's
	// when the test set AdminListen.
	AdminURL string
}

// Backend is a storage backend the end-to-end suite runs on.
type Backend struct {
	Name string
	// Open opens a fresh, empty store for a server's data dir.
	Open func(t testing.TB, dataDir string) (storage.Store, error)
}

// Backends lists every backend the end-to-end suite runs on. PostgreSQL
// runs on pgtest's throwaway server: a test binary using it calls
// pgtest.Main from its TestMain.
var Backends = []Backend{
	{Name: "bolt", Open: func(_ testing.TB, dir string) (storage.Store, error) { return server.OpenBolt(dir) }},
	{Name: "postgres", Open: func(t testing.TB, _ string) (storage.Store, error) {
		return postgres.Open(context.Background(), pgtest.Prepared(t, "orchard", migrated), postgres.Options{})
	}},
}

// migrated prepares a schema for pgtest.Prepared: Open applies the migrations.
func migrated(dsn string) error {
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		return err
	}
	return s.Close()
}

// WithStore makes the server open its store with open.
func WithStore(open func(dataDir string) (storage.Store, error)) func(*server.Config) {
	return func(c *server.Config) { c.OpenStore = open }
}

// Start runs a server on the backend until the test ends; mutate may adjust
// the config further.
func (b Backend) Start(t testing.TB, mutate ...func(*server.Config)) *Server {
	t.Helper()
	open := func(dir string) (storage.Store, error) { return b.Open(t, dir) }
	return Start(t, append([]func(*server.Config){WithStore(open)}, mutate...)...)
}

// StartWithoutPushCert is Start on the backend, without a push certificate.
func (b Backend) StartWithoutPushCert(t testing.TB, mutate ...func(*server.Config)) *Server {
	t.Helper()
	open := func(dir string) (storage.Store, error) { return b.Open(t, dir) }
	return start(t, false, append([]func(*server.Config){WithStore(open)}, mutate...)...)
}

// PushTopic is the topic of the push certificate Start installs, and the
// simulated devices' topic.
const PushTopic = "com.apple.mgmt.External.00000000-0000-0000-0000-000000000000"

// Start runs a server until the test ends. mutate may adjust the config.
// Like a server in use, it has a push certificate (PushCert, topic
// PushTopic); it pushes to a fake APNs (FakeAPNs) unless mutate points
// APNs elsewhere.
func Start(t testing.TB, mutate ...func(*server.Config)) *Server {
	t.Helper()
	return start(t, true, mutate...)
}

// StartWithoutPushCert runs a server as on its first start: no push
// certificate yet.
func StartWithoutPushCert(t testing.TB, mutate ...func(*server.Config)) *Server {
	t.Helper()
	return start(t, false, mutate...)
}

// pushCerts are made once per topic: an RSA key per test server would
// cost seconds.
var pushCerts = struct {
	sync.Mutex
	m map[string]*apnstest.Cert
}{m: map[string]*apnstest.Cert{}}

// PushCert is the push certificate Start installs for topic.
func PushCert(t testing.TB, topic string) *apnstest.Cert {
	t.Helper()
	pushCerts.Lock()
	defer pushCerts.Unlock()
	if c := pushCerts.m[topic]; c != nil {
		return c
	}
	c, err := apnstest.NewPushCert(apnstest.WithTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	pushCerts.m[topic] = c
	return c
}

// UsePushTopic replaces the server's push certificate by one for topic
// (captured fixtures carry their own topic).
func (s *Server) UsePushTopic(t testing.TB, topic string) {
	t.Helper()
	cert := PushCert(t, topic)
	if s.FakeAPNs != nil {
		s.FakeAPNs.Trust(cert.Leaf)
	}
	body := map[string]any{"cert_pem": string(cert.CertPEM), "key_pem": string(cert.KeyPEM), "force": true}
	if code := s.API(t, http.MethodPut, "/v1/push-certificate", body, nil); code != http.StatusOK {
		t.Fatalf("upload the test push certificate: %d", code)
	}
}

// appleChain is the SHA-1 test chain every server of the process trusts.
var appleChain = sync.OnceValues(simdevice.NewAppleChainSHA1)

func start(t testing.TB, withPushCert bool, mutate ...func(*server.Config)) *Server {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ln.Addr().String()
	cfg := server.Config{
		DataDir:   dir,
		Listen:    ln.Addr().String(),
		PublicURL: url,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	apple, err := appleChain()
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	cfg.MachineInfoRoots = apple.Roots()
	for _, m := range mutate {
		m(&cfg)
	}
	adminURL := url
	if cfg.AdminListen != "" && cfg.AdminListener == nil {
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			ln.Close()
			t.Fatal(err)
		}
		cfg.AdminListener = aln
		adminURL = "https://" + aln.Addr().String()
	}
	var fake *apnstest.Server
	var cert *apnstest.Cert
	if withPushCert {
		cert = PushCert(t, PushTopic)
	}
	if withPushCert && cfg.APNsURL == "" {
		fake = apnstest.NewServer(cert.Leaf)
		t.Cleanup(fake.Close)
		cfg.APNsURL, cfg.APNsCA = fake.URL(), filepath.Join(dir, "fake-apns-ca.pem")
		if err := os.WriteFile(cfg.APNsCA, fake.CertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	pool := x509.NewCertPool()
	pool.AddCert(srv.TLSCertificate().Leaf)
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 64},
	}
	api := &apiclient.Client{BaseURL: adminURL, Key: srv.APIKey(), HTTP: client}
	s := &Server{Server: srv, URL: url, AdminURL: adminURL, Client: client, Dir: dir, Apple: apple, api: api, FakeAPNs: fake, stop: stop}
	if cert != nil {
		body := map[string]any{"cert_pem": string(cert.CertPEM), "key_pem": string(cert.KeyPEM)}
		if code := s.API(t, http.MethodPut, "/v1/push-certificate", body, nil); code != http.StatusOK {
			t.Fatalf("upload the test push certificate: %d", code)
		}
	}
	return s
}

// Stop shuts the server down as `orchard serve` does on SIGTERM (its
// database session ends, so its locks go to other replicas) and waits for
// it; the test's cleanup does not stop it again.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Errorf("server shutdown: %v", err)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

var serial atomic.Int64

// keyPool hands out RSA keys: generating one per device would dominate test time.
var keyPool = struct {
	sync.Mutex
	keys []*rsa.PrivateKey
}{}

func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	keyPool.Lock()
	defer keyPool.Unlock()
	for len(keyPool.keys) <= i%8 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keyPool.keys = append(keyPool.keys, k)
	}
	return keyPool.keys[i%8]
}

// IssueCert issues a device identity certificate from the server's CA and
// records it with the given authorization, as the SCEP service does.
func (s *Server) IssueCert(t testing.TB, auth storage.CertAuthorization) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	n := int(serial.Add(1))
	key := rsaKey(t, n)
	now := time.Now()
	tmpl := pki.DeviceTemplate(pki.RandomSerial(), pkix.Name{CommonName: fmt.Sprintf("Orchard test device %d", n)},
		key.Public(), now.Add(-time.Minute), now.AddDate(1, 0, 0))
	cert, err := s.CA().Sign(tmpl, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Raw)
	rec := &storage.CertRecord{
		Hash: hex.EncodeToString(sum[:]), Serial: fmt.Sprintf("%x", cert.SerialNumber),
		Subject: cert.Subject.String(), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
		IssuedAt: now, Authorization: auth,
	}
	if err := s.Store().PutCert(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// NewDevice returns a simulated iPhone with a fresh certificate.
func (s *Server) NewDevice(t testing.TB) *simdevice.Device {
	t.Helper()
	cert, key := s.IssueCert(t, storage.CertAuthorization{Kind: "admin"})
	n := serial.Load()
	return &simdevice.Device{
		UDID:         fmt.Sprintf("00008030-%016X", n),
		SerialNumber: fmt.Sprintf("F%011d", n),
		Model:        "iPhone14,2", ModelName: "iPhone", ProductName: "iPhone14,2",
		OSVersion: "17.5", BuildVersion: "21F79", DeviceName: fmt.Sprintf("Test iPhone %d", n),
		Topic:     PushTopic,
		Token:     bytes.Repeat([]byte{byte(n)}, 32),
		PushMagic: fmt.Sprintf("PUSHMAGIC-%d", n),
		Cert:      cert, Key: key,
		CheckinURL: s.URL + "/mdm/checkin",
		ServerURL:  s.URL + "/mdm/connect",
		Client:     s.Client,
	}
}

// API calls the admin API with the server's key and decodes JSON into out.
// It returns the status code.
func (s *Server) API(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	code, data, err := s.api.Do(context.Background(), method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return code
}

// Get fetches a path with the admin key and returns the raw body.
func (s *Server) Get(t testing.TB, path string) []byte {
	t.Helper()
	code, body, err := s.api.Do(context.Background(), http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", path, code, body)
	}
	return body
}

// EnrollOTA enrolls a new simulated device the way a real one does: it
// fetches a signed enrollment profile from the admin API, gets its identity
// certificate from /scep with the profile's challenge, and runs
// Authenticate and TokenUpdate.
func (s *Server) EnrollOTA(t testing.TB) *simdevice.Device {
	t.Helper()
	n := int(serial.Add(1))
	dev := &simdevice.Device{
		UDID:         fmt.Sprintf("00008110-%016X", n),
		SerialNumber: fmt.Sprintf("G%011d", n),
		Model:        "iPad13,16", ModelName: "iPad Air", ProductName: "iPad13,16",
		OSVersion: "18.1", BuildVersion: "22B83", DeviceName: fmt.Sprintf("Test iPad %d", n),
		Topic:     PushTopic,
		Token:     bytes.Repeat([]byte{byte(n), 0xA5}, 16),
		PushMagic: fmt.Sprintf("PUSHMAGIC-OTA-%d", n),
	}
	profile := s.Get(t, "/v1/enrollment/profile")
	if err := dev.EnrollFromProfile(context.Background(), profile, rsaKey(t, n), s.Client); err != nil {
		t.Fatal(err)
	}
	s.Enroll(t, dev)
	return dev
}

// Enroll runs the device's Authenticate and TokenUpdate, then answers the
// queries Orchard queues after enrollment (inventory), so the device's
// queue is empty when Enroll returns.
func (s *Server) Enroll(t testing.TB, dev *simdevice.Device) {
	t.Helper()
	ctx := context.Background()
	if err := dev.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Settle(ctx); err != nil {
		t.Fatalf("settle after enrollment: %v", err)
	}
}

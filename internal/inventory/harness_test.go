package inventory

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/dep/deptest"
	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/mdm/commands"
	"github.com/orchardmdm/orchard/mdm/identity"
	"github.com/orchardmdm/orchard/mdm/mdmhttp"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// harness is a real Orchard slice over loopback TLS: a bolt file, the MDM
// service observed by the inventory, the device endpoints, the core admin
// API and the inventory routes. Only APNs is replaced (pushRecorder).
type harness struct {
	t      *testing.T
	store  *bolt.Store
	inv    *Inventory
	cmds   *command.Service
	ca     *pki.CA
	clock  *deptest.Clock
	pushed *pushRecorder
	srv    *httptest.Server
	apiKey string
}

// pushRecorder stands in for APNs: it records which channels were pushed.
type pushRecorder struct {
	mu       sync.Mutex
	channels []string
}

func (p *pushRecorder) PushChannels(_ context.Context, channels []string) {
	p.mu.Lock()
	p.channels = append(p.channels, channels...)
	p.mu.Unlock()
}

func (p *pushRecorder) Wake(ctx context.Context, channel string) error {
	p.PushChannels(ctx, []string{channel})
	return nil
}

func (p *pushRecorder) count(channel string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.channels {
		if c == channel {
			n++
		}
	}
	return n
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	store, err := bolt.Open(filepath.Join(dir, "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ca, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	box, err := pki.LoadOrCreateSecretBox(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: store, ca: ca, clock: deptest.NewClock(time.Now().UTC().Truncate(time.Second)),
		pushed: &pushRecorder{}, apiKey: "test-admin-key"}
	log := quietLogger()
	var svc *service.Service
	unlock := UnlockTokenFunc(func(ctx context.Context, ch string) ([]byte, error) { return svc.UnlockToken(ctx, ch) })
	h.cmds, err = command.New(store, store, h.pushed, command.WithClock(h.clock.Now), command.WithLogger(log),
		command.WithTargets(command.TargetsFunc(func(ctx context.Context, e *storage.Enrollment) commands.Target { return h.inv.Target(ctx, e) })))
	if err != nil {
		t.Fatal(err)
	}
	if h.inv, err = New(store, unlock, h.cmds, WithClock(h.clock.Now), WithPusher(h.pushed), WithLogger(log)); err != nil {
		t.Fatal(err)
	}
	if svc, err = service.New(store, box, service.WithObserver(h.inv), service.WithResultEffects(h.inv), service.WithClock(h.clock.Now), service.WithLogger(log)); err != nil {
		t.Fatal(err)
	}
	verifier, err := identity.NewVerifier(ca.Pool(), store)
	if err != nil {
		t.Fatal(err)
	}
	device, err := mdmhttp.New(svc, verifier, mdmhttp.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	// The inventory's handlers as adminapi's route table mounts them (that
	// package imports this one, so its tests cover the real table).
	adminMux := http.NewServeMux()
	adminMux.HandleFunc("GET /v1/inventory", h.inv.List)
	adminMux.HandleFunc("GET /v1/inventory/counts", h.inv.Counts)
	adminMux.HandleFunc("GET /v1/devices/{id}/inventory", h.inv.Show)
	adminMux.HandleFunc("GET /v1/devices/{id}/apps", h.inv.Apps)
	adminMux.HandleFunc("GET /v1/devices/{id}/profiles", h.inv.Profiles)
	adminMux.HandleFunc("GET /v1/devices/{id}/certificates", h.inv.Certificates)
	adminMux.HandleFunc("GET /v1/devices/{id}/location", h.inv.Location)
	adminMux.HandleFunc("POST /v1/devices/{id}/actions/{action}", h.inv.Action)
	deviceMux := http.NewServeMux()
	device.Register(deviceMux)
	mux := http.NewServeMux()
	mux.Handle("/mdm/", deviceMux)
	mux.Handle("/v1/", requireKey(h.apiKey, adminMux))
	h.srv = httptest.NewTLSServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

var deviceKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

var deviceSeq atomic.Int64

// profile is a simulated device model.
type profile struct{ product, modelName, osVersion, build string }

var (
	simIPhone = profile{"iPhone15,3", "iPhone", "17.5.1", "21F90"}
	simMac    = profile{"Mac14,9", "MacBook Pro", "14.6.1", "23G93"}
	simIPad   = profile{"iPad13,16", "iPad Air", "18.1", "22B83"}
)

// enroll creates a device with a certificate authorized as kind and runs
// Authenticate and TokenUpdate.
func (h *harness) enroll(p profile, kind string) *simdevice.Device {
	h.t.Helper()
	key, err := deviceKey()
	if err != nil {
		h.t.Fatal(err)
	}
	n := deviceSeq.Add(1)
	now := time.Now()
	cert, err := h.ca.Sign(&x509.Certificate{
		SerialNumber: pki.RandomSerial(),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("inventory test device %d", n)},
		NotBefore:    now.Add(-time.Minute), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, key.Public())
	if err != nil {
		h.t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Raw)
	err = h.store.PutCert(context.Background(), &storage.CertRecord{
		Hash: hex.EncodeToString(sum[:]), Serial: fmt.Sprintf("%x", cert.SerialNumber), Subject: cert.Subject.String(),
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IssuedAt: now, Authorization: storage.CertAuthorization{Kind: kind},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	d := &simdevice.Device{
		UDID:         fmt.Sprintf("00008030-%016X", n),
		SerialNumber: fmt.Sprintf("SIM%09d", n),
		Model:        p.product, ModelName: p.modelName, ProductName: p.product,
		OSVersion: p.osVersion, BuildVersion: p.build, DeviceName: fmt.Sprintf("Sim %s %d", p.modelName, n),
		Topic: "com.apple.mgmt.External.2f4c8a7e-0000-4000-8000-000000000001",
		Token: bytes.Repeat([]byte{byte(n)}, 32), PushMagic: fmt.Sprintf("MAGIC-%d", n),
		Cert: cert, Key: key,
		CheckinURL: h.srv.URL + "/mdm/checkin", ServerURL: h.srv.URL + "/mdm/connect",
		Client: h.srv.Client(),
	}
	if err := d.Enroll(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return d
}

// api calls the admin API and decodes the JSON answer into out (when not nil).
func (h *harness) api(method, path string, body, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, ok := body.(string)
		if !ok {
			b, err := json.Marshal(body)
			if err != nil {
				h.t.Fatal(err)
			}
			raw = string(b)
		}
		rd = bytes.NewReader([]byte(raw))
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.apiKey)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// fixture loads a device answer from testdata.
func fixture(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := plist.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// answers plays a device: DeviceInformation gets the fixture's
// QueryResponses limited to the queries asked (and records them),
// SecurityInfo the fixture's SecurityInfo, everything else extra[rt] or
// a bare Acknowledged.
type answers struct {
	t        *testing.T
	info     map[string]any
	security map[string]any
	extra    map[string]map[string]any
	asked    []string
	seen     []*simdevice.Command
}

func newAnswers(t *testing.T, infoFile, securityFile string) *answers {
	return &answers{t: t, info: fixture(t, infoFile)["QueryResponses"].(map[string]any),
		security: fixture(t, securityFile), extra: map[string]map[string]any{}}
}

func (a *answers) answer(c *simdevice.Command) (string, map[string]any) {
	a.seen = append(a.seen, c)
	switch c.RequestType {
	case "DeviceInformation":
		q := map[string]any{}
		a.asked = a.asked[:0]
		queries, _ := c.Payload["Queries"].([]any)
		for _, k := range queries {
			name, _ := k.(string)
			a.asked = append(a.asked, name)
			if v, ok := a.info[name]; ok {
				q[name] = v
			}
		}
		return "Acknowledged", map[string]any{"QueryResponses": q}
	case "SecurityInfo":
		return "Acknowledged", a.security
	}
	return "Acknowledged", a.extra[c.RequestType]
}

func (a *answers) types() []string {
	var out []string
	for _, c := range a.seen {
		out = append(out, c.RequestType)
	}
	return out
}

func (a *answers) reset() { a.seen = nil }

func drain(t *testing.T, d *simdevice.Device, a simdevice.Answerer) []*simdevice.Command {
	t.Helper()
	cmds, err := d.Drain(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return cmds
}

func typesOf(cmds []*simdevice.Command) []string {
	out := []string{}
	for _, c := range cmds {
		out = append(out, c.RequestType)
	}
	slices.Sort(out)
	return out
}

// requireKey stands in for adminapi's key check, so h.api sends the key as
// a real client does.
func requireKey(key string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

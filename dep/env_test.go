package dep_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/dep/deptest"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

var (
	keysOnce sync.Once
	keysDir  string
	keys     *dep.KeyPair
)

func TestMain(m *testing.M) {
	code := m.Run()
	if keysDir != "" {
		os.RemoveAll(keysDir)
	}
	os.Exit(code)
}

// sharedKeys generates the RSA token key pair once for the package.
func sharedKeys(t testing.TB) *dep.KeyPair {
	keysOnce.Do(func() {
		dir, err := os.MkdirTemp("", "orchard-dep-keys")
		if err != nil {
			t.Fatal(err)
		}
		keysDir = dir
		keys, err = dep.LoadOrCreateKeyPair(dir)
		if err != nil {
			t.Fatal(err)
		}
	})
	if keys == nil {
		t.Fatal("no key pair")
	}
	return keys
}

var start = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

type env struct {
	t       testing.TB
	ctx     context.Context
	store   storage.DEPStore
	bolt    *bolt.Store
	fake    *deptest.Server
	tok     deptest.Token
	clock   *deptest.Clock
	svc     *dep.Service
	metrics *dep.Counters
	tokenID string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv wires a Service to a real bolt file and a fake with n devices.
func newEnv(t testing.TB, n int, wrap func(storage.DEPStore) storage.DEPStore, opts ...dep.Option) *env {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	box, err := pki.LoadOrCreateSecretBox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), bolt: db, store: db, tok: deptest.NewToken(),
		clock: deptest.NewClock(start), metrics: dep.NewCounters()}
	if wrap != nil {
		e.store = wrap(db)
	}
	e.fake = deptest.NewServer(t, e.tok, n)
	base := []dep.Option{
		dep.WithServiceClock(e.clock), dep.WithServiceLogger(quietLogger()), dep.WithServiceMetrics(e.metrics),
		dep.WithClientOptions(dep.WithBaseURL(e.fake.URL)),
	}
	e.svc, err = dep.New(e.ctx, dep.Config{Store: e.store, Box: box, Keys: sharedKeys(t),
		EnrollURL: func(tok, prof string) string { return "https://mdm.example.com/mdm/enroll/ade?profile=" + prof }},
		append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) addToken() dep.TokenView {
	e.t.Helper()
	v, err := e.svc.AddToken(e.ctx, "Main", "admin@example.com", deptest.P7M(e.t, sharedKeys(e.t).Cert, e.tok))
	if err != nil {
		e.t.Fatal(err)
	}
	e.tokenID = v.ID
	return v
}

func (e *env) state() storage.DEPSyncState {
	e.t.Helper()
	st, err := e.store.DEPSyncState(e.ctx, e.tokenID)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) count(f storage.DEPDeviceFilter) int {
	e.t.Helper()
	n, err := e.store.CountDEPDevices(e.ctx, f)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) device(serial string) storage.DEPDevice {
	e.t.Helper()
	d, err := e.store.DEPDevice(e.ctx, serial)
	if err != nil {
		e.t.Fatalf("device %s: %v", serial, err)
	}
	return d
}

package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

var bulkDevices = flag.Int("bulk.devices", 100_000, "devices BenchmarkBulkCommand seeds and targets")

// Environment of the server process BenchmarkBulkCommand starts (this
// test binary run again; see TestMain).
const (
	envBulkDir     = "ORCHARD_BULK_SERVER_DIR"
	envBulkAPNs    = "ORCHARD_BULK_SERVER_APNS"
	envBulkAPNsCA  = "ORCHARD_BULK_SERVER_APNS_CA"
	bulkTokenMagic = "BULK-MAGIC-"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envBulkDir); dir != "" {
		os.Exit(runBulkServer(dir, os.Getenv(envBulkAPNs), os.Getenv(envBulkAPNsCA)))
	}
	pgtest.Main(m) // runs the tests, then stops the PostgreSQL server TestE2E/postgres starts
}

// BenchmarkBulkCommand seeds -bulk.devices enrolled devices (default
// 100,000) with push tokens into a real bbolt file, runs the real server
// on it in a process of its own (so its RSS is the server's alone), with
// the fake APNs on loopback TLS in this process, and sends one POST
// /v1/commands to all of them. It reports the time to the API's answer,
// pushes/s until the fake has received one push per device, the pushes
// missing (dropped), the server's CPU time for it, its peak RSS during the command (VmHWM,
// reset just before it; also split as peak anonymous and file-backed,
// i.e. bbolt's mmap), its peak Go heap (objects) and its live heap
// before and after (idle; after a GC). Run it once:
//
//	go test ./internal/server -run '^$' -bench BulkCommand -benchtime 1x
func BenchmarkBulkCommand(b *testing.B) {
	n := *bulkDevices
	cert, err := apnstest.NewPushCert()
	if err != nil {
		b.Fatal(err)
	}
	fake := apnstest.NewServer(cert.Leaf)
	b.Cleanup(fake.Close)
	fake.StopRecording()
	dir := b.TempDir()
	caFile := filepath.Join(dir, "apns-ca.pem")
	if err := os.WriteFile(caFile, fake.CertPEM(), 0o600); err != nil {
		b.Fatal(err)
	}
	udids := make([]string, n)
	for i := range udids {
		udids[i] = fmt.Sprintf("00008030-BULK%012X", i)
	}
	seedStart := time.Now()
	if err := seedBulk(filepath.Join(dir, "orchard.db"), udids, cert.Topic, fakeCertHash); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d devices in %s", n, time.Since(seedStart).Round(time.Millisecond))
	srv := startBulkServer(b, dir, fake.URL(), caFile)

	p12, err := cert.P12("pw")
	if err != nil {
		b.Fatal(err)
	}
	if code, _, err := srv.api.Do(context.Background(), "PUT", "/v1/push-certificate", map[string]any{"p12": base64.StdEncoding.EncodeToString(p12), "password": "pw"}); err != nil || code != 200 {
		b.Fatalf("upload push certificate = %d %v", code, err)
	}

	var queued, drained time.Duration
	var missing int
	var before, during heapFigures
	var rss rssFigures
	var cpu time.Duration
	for b.Loop() {
		srv.waitQuiet() // the start-up scans of every enrollment are done
		fake.Reset()
		before = srv.heap(b) // also resets the peak
		srv.resetPeakRSS(b)
		stopRSS := srv.samplePeakRSS(b)
		cpu0 := procCPU(srv.procs + "stat")
		start := time.Now()
		code, body, err := srv.api.Do(context.Background(), "POST", "/v1/commands", map[string]any{"targets": udids, "request_type": "ProfileList"})
		queued = time.Since(start)
		if err != nil || code != 201 || strings.Count(string(body), `"queued": true`)+strings.Count(string(body), `"queued":true`) != n {
			b.Fatalf("POST /v1/commands = %d %v (%d bytes)", code, err, len(body))
		}
		// Wait until every push arrived or none arrived for a while.
		last, lastAt := 0, time.Now()
		for fake.Received() < n && time.Since(lastAt) < 10*time.Second {
			time.Sleep(5 * time.Millisecond)
			if r := fake.Received(); r != last {
				last, lastAt = r, time.Now()
			}
		}
		drained = time.Since(start)
		missing = n - fake.Received()
		rss = stopRSS()
		cpu = procCPU(srv.procs+"stat") - cpu0
		during = srv.heap(b)
	}
	time.Sleep(time.Second) // the last push results get recorded
	after := srv.heap(b)
	mb := func(v uint64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(queued.Seconds(), "s-to-queued")
	b.ReportMetric(float64(n-missing)/drained.Seconds(), "pushes/s")
	b.ReportMetric(float64(missing), "dropped")
	b.ReportMetric(cpu.Seconds(), "server-CPU-s")
	b.ReportMetric(mb(rss.hwm), "peak-RSS-MB")
	b.ReportMetric(mb(rss.anon), "peak-anon-RSS-MB")
	b.ReportMetric(mb(rss.file), "peak-file-RSS-MB")
	b.ReportMetric(mb(during.peak), "peak-heap-MB")
	b.ReportMetric(mb(before.live), "idle-heap-before-MB")
	b.ReportMetric(mb(after.live), "idle-heap-after-MB")
	if missing != 0 {
		b.Errorf("%d of %d devices were not pushed", missing, n)
	}
}

// seedBulk enrolls devices with push tokens, many writers at once so the
// store folds them into few fsyncs.
func seedBulk(path string, udids []string, topic string, certHash func(i int) string) error {
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 512)
	for i, udid := range udids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := st.Authenticate(ctx, &storage.AuthenticateRecord{Enrollment: storage.Enrollment{
				ID: udid, DeviceID: udid, Type: storage.Device, EnrolledAt: now, LastSeen: now, Topic: topic,
				Token: []byte(fmt.Sprintf("bulk-token-%021d", i)), PushMagic: bulkTokenMagic + strconv.Itoa(i), TokenUpdatedAt: now,
				Facts:    &storage.DeviceFacts{UDID: udid, SerialNumber: fmt.Sprintf("BK%010d", i), Model: "iPhone14,5", ProductName: "iPhone14,5", OSVersion: "18.1"},
				CertHash: certHash(i),
			}})
			if err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

func fakeCertHash(i int) string { return fmt.Sprintf("bulk-cert-%d", i) }

var idleConnects = flag.Int("idle.connect", 10_000, "devices BenchmarkIdleHeap connects once each (of -bulk.devices)")

// BenchmarkIdleHeap seeds -bulk.devices enrolled devices (default
// 100,000) into a real bbolt file, the first -idle.connect of them
// (default 10,000) with real certificates from the server's CA and an
// inventory already answered, runs the server in a process of its own,
// and reports its live Go heap (after a GC, the server idle) before any
// connect, after one connect (a signed Idle report over loopback TLS,
// answered with nothing to do) by each of those devices, the heap each
// connected device added, and what that makes, linearly, with every device
// connected once (an upper bound: the parsed-certificate cache is
// bounded). Connecting all 100,000 (-idle.connect 100000, as make bench
// does) measures that instead, in minutes: each device certificate is an
// RSA signature by the CA, and each connect another by the device.
//
//	go test ./internal/server -run '^$' -bench IdleHeap -benchtime 1x
func BenchmarkIdleHeap(b *testing.B) {
	n, k := *bulkDevices, min(*idleConnects, *bulkDevices)
	dir := b.TempDir()
	ca, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		b.Fatal(err)
	}
	devKey, err := pki.NewRSAKey(2048) // one key for all: key generation is not what is measured
	if err != nil {
		b.Fatal(err)
	}
	certs := make([]*x509.Certificate, k)
	now := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i := range k {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			tmpl := pki.DeviceTemplate(pki.RandomSerial(), pkix.Name{CommonName: fmt.Sprintf("bulk device %d", i)},
				devKey.Public(), now.Add(-time.Minute), now.AddDate(1, 0, 0))
			c, err := ca.Sign(tmpl, devKey.Public())
			if err != nil {
				b.Error(err)
				return
			}
			certs[i] = c
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	udids := make([]string, n)
	for i := range udids {
		udids[i] = fmt.Sprintf("00008030-BULK%012X", i)
	}
	path := filepath.Join(dir, "orchard.db")
	if err := seedCertRecords(path, certs, now); err != nil {
		b.Fatal(err)
	}
	hash := func(i int) string {
		if i < k {
			return pki.Fingerprint(certs[i])
		}
		return fakeCertHash(i)
	}
	if err := seedBulk(path, udids, "com.apple.mgmt.External.bulk", hash); err != nil {
		b.Fatal(err)
	}
	if err := seedInventoried(path, udids[:k], now); err != nil {
		b.Fatal(err)
	}
	srv := startBulkServer(b, dir, "", "")
	var seeded, connected heapFigures
	for b.Loop() {
		srv.waitQuiet()
		seeded = srv.heap(b)
		var failures sync.Map
		var wg sync.WaitGroup
		next := make(chan int)
		for range 32 {
			wg.Go(func() {
				for i := range next {
					d := &simdevice.Device{UDID: udids[i], Cert: certs[i], Key: devKey,
						ServerURL: srv.api.BaseURL + "/mdm/connect", Client: srv.api.HTTP}
					if _, err := d.Idle(context.Background()); err != nil {
						failures.Store(i, err)
					}
				}
			})
		}
		for i := range k {
			next <- i
		}
		close(next)
		wg.Wait()
		failures.Range(func(i, err any) bool {
			b.Errorf("device %d: connect: %v", i, err)
			return false
		})
		srv.waitQuiet()
		connected = srv.heap(b)
	}
	per := float64(connected.live-seeded.live) / float64(k)
	mb := func(v float64) float64 { return v / (1 << 20) }
	b.ReportMetric(mb(float64(seeded.live)), "idle-heap-seeded-MB")
	b.ReportMetric(mb(float64(connected.live)), "idle-heap-connected-MB")
	b.ReportMetric(per, "heap-B/connected-device")
	b.ReportMetric(mb(float64(seeded.live)+per*float64(n)), "idle-heap-all-connected-MB")
}

// seedInventoried records that devices answered their inventory queries
// at now, as enrolled devices have: their connects are then the Idle of a
// device with nothing to do, which is what an idle server sees.
func seedInventoried(path string, udids []string, now time.Time) error {
	return writeEach(path, udids, func(st *bolt.Store, udid string) error {
		_, err := st.UpdateInventory(context.Background(), udid, func(inv *storage.DeviceInventory) error {
			inv.QueriedAt, inv.DeviceInformationAt, inv.SecurityInfoAt = now, now, now
			return nil
		})
		return err
	})
}

// seedCertRecords stores the issuance records of certs, as SCEP would.
func seedCertRecords(path string, certs []*x509.Certificate, now time.Time) error {
	return writeEach(path, certs, func(st *bolt.Store, c *x509.Certificate) error {
		return st.PutCert(context.Background(), &storage.CertRecord{
			Hash: pki.Fingerprint(c), Serial: fmt.Sprintf("%x", c.SerialNumber), Subject: c.Subject.String(),
			NotBefore: c.NotBefore, NotAfter: c.NotAfter, IssuedAt: now,
			Authorization: storage.CertAuthorization{Kind: "admin", Ref: "bulk benchmark"},
		})
	})
}

// writeEach opens the bbolt file at path and runs write for every item,
// 512 at a time, so their commits batch; it answers the first error.
func writeEach[T any](path string, items []T, write func(*bolt.Store, T) error) error {
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	var wg sync.WaitGroup
	errs := make(chan error, len(items))
	sem := make(chan struct{}, 512)
	for _, item := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs <- write(st, item)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// bulkServer is the server process BenchmarkBulkCommand measures.
type bulkServer struct {
	cmd   *exec.Cmd
	out   *bufio.Scanner
	api   *apiclient.Client
	procs string // /proc/<pid>/
}

func startBulkServer(b *testing.B, dir, apnsURL, apnsCA string) *bulkServer {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envBulkDir+"="+dir, envBulkAPNs+"="+apnsURL, envBulkAPNsCA+"="+apnsCA)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close() // the server stops when its stdin closes
		if err := cmd.Wait(); err != nil {
			b.Errorf("server process: %v", err)
		}
	})
	s := &bulkServer{cmd: cmd, out: bufio.NewScanner(stdout), procs: fmt.Sprintf("/proc/%d/", cmd.Process.Pid)}
	addr, der := s.line(b, "addr"), s.line(b, "cert")
	raw, err := base64.StdEncoding.DecodeString(der)
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(raw)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	key, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		b.Fatal(err)
	}
	s.api = &apiclient.Client{BaseURL: "https://" + addr, Key: strings.TrimSpace(string(key)),
		HTTP: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	return s
}

// line reads the server's next line, which must start with word.
func (s *bulkServer) line(b *testing.B, word string) string {
	if !s.out.Scan() {
		b.Fatalf("server process said nothing (%v); want %q", s.out.Err(), word)
	}
	v, ok := strings.CutPrefix(s.out.Text(), word+" ")
	if !ok {
		b.Fatalf("server process said %q, want %q", s.out.Text(), word)
	}
	return v
}

type heapFigures struct{ peak, live uint64 }

// heap signals the server, which collects garbage and answers with its
// peak heap since the last signal and its live heap now.
func (s *bulkServer) heap(b *testing.B) heapFigures {
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		b.Fatal(err)
	}
	var h heapFigures
	if _, err := fmt.Sscan(s.line(b, "heap"), &h.peak, &h.live); err != nil {
		b.Fatal(err)
	}
	return h
}

// resetPeakRSS makes the server's VmHWM start again from its current RSS.
func (s *bulkServer) resetPeakRSS(b *testing.B) {
	if err := os.WriteFile(s.procs+"clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("cannot reset the server's peak RSS: %v", err)
	}
}

type rssFigures struct{ hwm, anon, file uint64 }

// samplePeakRSS samples the server's RssAnon and RssFile every 10 ms
// (the kernel keeps no peak of either) until the returned func is called,
// which reports those peaks and VmHWM.
func (s *bulkServer) samplePeakRSS(b *testing.B) func() rssFigures {
	stop, done := make(chan struct{}), make(chan rssFigures)
	go func() {
		var peak rssFigures
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			st := procStatus(s.procs + "status")
			peak.anon, peak.file = max(peak.anon, st["RssAnon"]), max(peak.file, st["RssFile"])
			select {
			case <-stop:
				peak.hwm = procStatus(s.procs + "status")["VmHWM"]
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() rssFigures { close(stop); return <-done }
}

// waitQuiet waits until the server used no CPU for three 100 ms samples
// in a row (a minute at most): an idle server, its start-up work (such as
// the renewal scan of every enrollment) done.
func (s *bulkServer) waitQuiet() {
	quiet, last := 0, time.Duration(-1)
	for deadline := time.Now().Add(time.Minute); quiet < 3 && time.Now().Before(deadline); {
		cpu := procCPU(s.procs + "stat")
		if cpu == last {
			quiet++
		} else {
			quiet = 0
		}
		last = cpu
		time.Sleep(100 * time.Millisecond)
	}
}

// procCPU is the user plus system CPU time in a /proc stat file.
func procCPU(path string) time.Duration {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the whole line, in clock ticks (100/s).
	_, rest, _ := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100)
}

// procStatus reads the kB fields of a /proc status file, in bytes.
func procStatus(path string) map[string]uint64 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if v, isKB := strings.CutSuffix(strings.TrimSpace(v), " kB"); ok && isKB {
			n, _ := strconv.ParseUint(v, 10, 64)
			out[k] = n << 10
		}
	}
	return out
}

// runBulkServer is the server process: it serves dir on a loopback port
// until its stdin closes, says where it listens and with which
// certificate, and on each SIGUSR1 answers "heap <peak> <live>".
func runBulkServer(dir, apnsURL, apnsCA string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "bulk server:", err); return 1 }
	// ORCHARD_BULK_HEAPPROFILE=<prefix> writes <prefix>-<n>.pprof, a heap
	// profile at each answer (go tool pprof -sample_index=inuse_space),
	// and <prefix>-peak.pprof each time the heap grew a tenth past its
	// highest yet (what the peak is made of, as of the GC before it).
	heapProfile := os.Getenv("ORCHARD_BULK_HEAPPROFILE")
	if heapProfile != "" {
		// Sample finely: the default (one sample per 512 KiB) cannot tell
		// apart the small per-device objects an idle heap is made of.
		runtime.MemProfileRate = 4 << 10
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	srv, err := server.New(server.Config{
		DataDir: dir, Listen: ln.Addr().String(), PublicURL: "https://" + ln.Addr().String(),
		APNsURL: apnsURL, APNsCA: apnsCA,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return fail(err)
	}
	// Before saying where it listens: a SIGUSR1 that comes before Notify
	// is lost, and the benchmark would wait for its answer forever.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	fmt.Printf("addr %s\ncert %s\n", ln.Addr(), base64.StdEncoding.EncodeToString(srv.TLSCertificate().Certificate[0]))

	var mu sync.Mutex
	var peak uint64
	go func() {
		var profiled uint64
		for range time.Tick(5 * time.Millisecond) {
			v := readMetric("/memory/classes/heap/objects:bytes")
			mu.Lock()
			peak = max(peak, v)
			mu.Unlock()
			if heapProfile != "" && v > profiled+profiled/10 {
				profiled = v
				writeHeapProfile(heapProfile + "-peak.pprof")
			}
		}
	}()
	go func() {
		for n := 1; ; n++ {
			if _, ok := <-usr1; !ok {
				return
			}
			runtime.GC()
			live := readMetric("/gc/heap/live:bytes")
			if heapProfile != "" {
				writeHeapProfile(fmt.Sprintf("%s-%d.pprof", heapProfile, n))
			}
			mu.Lock()
			p := max(peak, readMetric("/memory/classes/heap/objects:bytes"))
			peak = 0
			mu.Unlock()
			fmt.Printf("heap %d %d\n", p, live)
		}
	}()
	// ORCHARD_BULK_CPUPROFILE=<file> profiles the server process from
	// start to stop (go tool pprof -top on it shows where the bulk
	// command's CPU goes).
	if path := os.Getenv("ORCHARD_BULK_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			cancel()
			return fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			cancel()
			return fail(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	cancel()
	if err := <-done; err != nil {
		return fail(err)
	}
	return 0
}

func writeHeapProfile(path string) {
	if f, err := os.Create(path); err == nil {
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

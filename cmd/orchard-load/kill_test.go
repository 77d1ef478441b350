package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// orchardBinary builds cmd/orchard once per test binary.
var orchardBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "orchard-load-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "orchard")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/orchardmdm/orchard/cmd/orchard").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build cmd/orchard: %v: %s", err, out)
	}
	return bin, nil
})

// replicaProc is one `orchard serve` process of the test.
type replicaProc struct {
	url  string
	data string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startReplica runs `orchard serve` on PostgreSQL at dsn with data dir
// data, on plain HTTP as behind a TLS-terminating proxy, and waits until
// it answers. The test's cleanup kills it if it still runs.
func startReplica(t *testing.T, dsn, data string) *replicaProc {
	t.Helper()
	bin, err := orchardBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	r := &replicaProc{url: "http://" + addr, data: data, done: make(chan struct{})}
	r.args = []string{bin, "serve", "--data", data, "--listen", addr, "--public-url", "https://" + addr, "--plain-http",
		"--storage", "postgres", "--storage-dsn", dsn, "--apns-url", "https://127.0.0.1:9", "--log-level", "warn"}
	log, err := os.Create(data + ".log")
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(r.args[0], r.args[1:]...)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); log.Close(); close(r.done) }()
	t.Cleanup(func() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	waitHealthy(t, r.url, r.done)
	return r
}

func waitHealthy(t *testing.T, base string, exited <-chan struct{}) {
	t.Helper()
	for range 300 {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it answered", base)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s never answered", base)
}

func copyDataDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// jobsHeld reads which exclusive jobs a replica runs from its /metrics.
func jobsHeld(t *testing.T, base, key string) map[string]bool {
	t.Helper()
	raw, err := (&apiclient.Client{BaseURL: base, Key: key, HTTP: http.DefaultClient}).Call(context.Background(), http.MethodGet, "/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^orchard_exclusive_job_held\{job="([^"]+)"\} (\d)`).FindAllStringSubmatch(string(raw), -1) {
		held[m[1]] = m[2] == "1"
	}
	return held
}

// Two `orchard serve` processes on one PostgreSQL database, devices spread
// over both; the replica running the scheduled jobs is SIGKILLed a third
// of the way through the load and started again. The devices that lost
// their replica move to the other one; at the end every queued command
// is acknowledged with one stored result and none was offered twice, and
// the survivor runs every scheduled job.
func TestKillReplicaMidLoad(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	a := startReplica(t, dsn, filepath.Join(dir, "a"))
	key, err := os.ReadFile(filepath.Join(a.data, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	apiKey := strings.TrimSpace(string(key))
	push, err := apnstest.NewPushCert()
	if err != nil {
		t.Fatal(err)
	}
	admin := &apiclient.Client{BaseURL: a.url, Key: apiKey, HTTP: http.DefaultClient}
	if _, err := admin.Call(context.Background(), http.MethodPut, "/v1/push-certificate",
		map[string]any{"cert_pem": string(push.CertPEM), "key_pem": string(push.KeyPEM)}); err != nil {
		t.Fatal(err)
	}
	copyDataDir(t, a.data, filepath.Join(dir, "b"))
	b := startReplica(t, dsn, filepath.Join(dir, "b"))
	rs := []*replicaProc{a, b}

	// Wait until both replicas report the renewal job, one of them running it.
	var victim int
	deadline := time.Now().Add(30 * time.Second)
	for {
		ha, hb := jobsHeld(t, a.url, apiKey), jobsHeld(t, b.url, apiKey)
		_, inA := ha["identity-renewal"]
		_, inB := hb["identity-renewal"]
		if inA && inB && ha["identity-renewal"] != hb["identity-renewal"] {
			if hb["identity-renewal"] {
				victim = 1
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs not settled: %v %v", ha, hb)
		}
		time.Sleep(50 * time.Millisecond)
	}
	survivor := rs[1-victim]

	c, err := parseLoadFlags([]string{"--server", a.url, "--api-key", apiKey, "--scenario", "roundtrip",
		"--devices", "24", "--commands", "5", "--concurrency", "6", "--timeout", "2m",
		"--key-cache", filepath.Join(dir, "keys"), "--replicas", a.url + "," + b.url,
		"--kill-pid", fmt.Sprint(rs[victim].cmd.Process.Pid), "--kill-replica", fmt.Sprint(victim), "--kill-at", "0.3",
		"--restart-cmd", shellJoin(rs[victim].args)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	rep, err := runLoad(context.Background(), c, &logs)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	var text strings.Builder
	rep.writeText(&text)
	t.Logf("%s\n%s", logs.String(), text.String())
	if rep.Kill == nil || !rep.Kill.Restarted {
		t.Fatalf("no kill and restart reported: %+v", rep.Kill)
	}
	if d := rep.Delivery; d == nil || d.Queued != 24*5 || d.Acknowledged != d.Queued || d.Lost != 0 || d.StoredTwice != 0 || d.Redelivered != 0 {
		t.Fatalf("delivery %+v: want all 120 acknowledged once, none lost, none offered again", rep.Delivery)
	}
	if rep.Answered < 120 {
		t.Errorf("%d commands answered with 200, want at least 120", rep.Answered)
	}
	// The survivor took the killed replica's jobs over.
	for job, held := range jobsHeld(t, survivor.url, apiKey) {
		if !held {
			t.Errorf("survivor does not run %s after the kill", job)
		}
	}
}

// shellJoin quotes args for sh -c (the DSN holds '&').
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// treeCPU counts the process's own time (and its children's).
func TestTreeCPU(t *testing.T) {
	end := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
		_ = x * x
	}
	self, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if tree := treeCPU(os.Getpid()); tree < self.cpu || tree == 0 {
		t.Errorf("treeCPU = %v, own CPU %v", tree, self.cpu)
	}
}

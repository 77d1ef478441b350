package bolt_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

func enrollDevice(t testing.TB, s *bolt.Store, id string) {
	t.Helper()
	rec := &storage.AuthenticateRecord{Enrollment: storage.Enrollment{
		ID: id, DeviceID: id, Type: storage.Device, CertHash: "cert-" + id, EnrolledAt: time.Now(),
	}}
	if err := s.Authenticate(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
}

func newCommand(t testing.TB, uuid string) *storage.Command {
	t.Helper()
	raw, err := mdm.EncodeCommand(uuid, mdm.CommandPayload{"RequestType": "ProfileList"})
	if err != nil {
		t.Fatal(err)
	}
	return &storage.Command{UUID: uuid, RequestType: "ProfileList", Raw: raw, CreatedAt: time.Now()}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orchard.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	second, err := bolt.Open(path, bolt.Options{LockTimeout: 50 * time.Millisecond})
	if err == nil {
		second.Close()
		t.Fatal("a second Open of a file in use succeeded")
	}
	if !errors.Is(err, bolt.ErrLocked) {
		t.Fatalf("second Open: %v, want an error wrapping ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestWriteSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orchard.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	enrollDevice(t, s, "D1")
	c := newCommand(t, "c1")
	if err := s.Enqueue(t.Context(), c, []string{"D1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSetting(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSetting(t.Context(), "k", []byte("after close")); err == nil {
		t.Error("a write after Close returned nil")
	}

	s, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if e, err := s.Enrollment(t.Context(), "D1"); err != nil || !e.Enrolled || e.Generation != 1 {
		t.Errorf("after reopen: Enrollment = %+v, %v", e, err)
	}
	if got, err := s.Next(t.Context(), "D1"); err != nil || got == nil || got.UUID != "c1" || string(got.Raw) != string(c.Raw) {
		t.Errorf("after reopen: Next = %+v, %v; want c1", got, err)
	}
	if v, err := s.Setting(t.Context(), "k"); err != nil || string(v) != "v" {
		t.Errorf("after reopen: Setting = %q, %v", v, err)
	}
}

// One failing write in a group commit must not take its batch-mates down.
func TestBatchMateFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orchard.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n, failing = 50, 17
	errBoom := errors.New("boom")
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("D%02d", i)
			create := &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device}
			<-start
			errs[i] = s.UpdateEnrollment(t.Context(), id, create, func(e *storage.Enrollment) error {
				if i == failing {
					return errBoom
				}
				e.Topic = "topic-" + id
				return nil
			})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if i == failing && !errors.Is(err, errBoom) {
			t.Errorf("failing write returned %v, want its own error", err)
		}
		if i != failing && err != nil {
			t.Errorf("write %d failed with its batch-mate: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range n {
		id := fmt.Sprintf("D%02d", i)
		e, err := s.Enrollment(t.Context(), id)
		switch {
		case i == failing && !errors.Is(err, storage.ErrNotFound):
			t.Errorf("the failed write left %s: %+v, %v", id, e, err)
		case i != failing && (err != nil || e.Topic != "topic-"+id):
			t.Errorf("%s after reopen: %+v, %v", id, e, err)
		}
	}
}

const crashEnv = "ORCHARD_BOLT_CRASH_CHILD"

// TestCrashDurability kills a writer with SIGKILL mid-stream: every write
// it was told had succeeded must be in the file afterwards.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "orchard.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		uuid, ok := strings.CutPrefix(sc.Text(), "ENQUEUED ")
		if !ok {
			continue
		}
		acked = append(acked, uuid)
		if len(acked) == 300 && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed (%d writes): %v", len(acked), werr)
	}

	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	var lost []string
	for _, u := range acked {
		if _, _, err := s.Command(t.Context(), u); err != nil {
			lost = append(lost, u)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost after SIGKILL, e.g. %v", len(lost), len(acked), lost[:min(5, len(lost))])
	}
	depth, err := s.QueueDepth(t.Context(), "D1")
	if err != nil || depth < len(acked) {
		t.Errorf("QueueDepth = %d, %v; want at least the %d acknowledged", depth, err, len(acked))
	}
	t.Logf("%d acknowledged writes survived SIGKILL (%d in the queue)", len(acked), depth)
}

// crashChild enqueues from several goroutines, so writes share group
// commits, and prints each UUID only once Enqueue returned nil.
func crashChild(path string) {
	ctx := context.Background()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	rec := &storage.AuthenticateRecord{Enrollment: storage.Enrollment{ID: "D1", DeviceID: "D1", Type: storage.Device, CertHash: "cert-D1"}}
	if err := s.Authenticate(ctx, rec); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(30 * time.Second) // bounded if the parent is gone
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				u := fmt.Sprintf("w%d-%06d", w, i)
				raw, _ := mdm.EncodeCommand(u, mdm.CommandPayload{"RequestType": "ProfileList"})
				c := &storage.Command{UUID: u, RequestType: "ProfileList", Raw: raw, CreatedAt: time.Now()}
				if err := s.Enqueue(ctx, c, []string{"D1"}); err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Printf("ENQUEUED %s\n", u)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

// Package pgtest runs a throwaway PostgreSQL server for tests, from the
// binaries of Debian's postgresql package: one server per test binary in a
// temporary directory on a free loopback port, and a fresh schema per
// test. It never skips: without the binaries a test fails and says how to
// install them.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstallHint is the command that installs the server binaries.
const InstallHint = "apt-get update && apt-get install -y postgresql   (as root; `make test` does it for you)"

type server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	exit chan error
}

var (
	once    sync.Once
	srv     *server
	srvErr  error
	stopMu  sync.Mutex
	stopped bool
	dbSeq   atomic.Int64
)

// DSN returns the connection string of a fresh, empty schema on the
// shared test server (first in the search path, so unqualified names land
// in it), starting the server on first use. The schema is dropped when the
// test ends. Schemas, not databases: creating a database costs seconds of
// fsync, a schema a few milliseconds.
func DSN(t testing.TB) string {
	t.Helper()
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	admin := srv.dsn("postgres")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return // the server is gone with the binary
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema: %v", err)
		}
	})
	return srv.dsn("postgres") + "&search_path=" + name
}

// prepared holds, per key of Prepared, the schemas free for reuse and the
// tables whose rows prepare wrote (kept when a schema is emptied).
var prepared struct {
	sync.Mutex
	free map[string][]string
	keep map[string]map[string]bool
}

// Prepared is DSN for a schema that prepare (e.g. a store's migrations)
// has already run on: the first test of a key pays for prepare; a later
// one gets a schema a finished test used, emptied of every row written
// after prepare and with its sequences restarted, which costs a
// transaction instead of the DDL.
func Prepared(t testing.TB, key string, prepare func(dsn string) error) string {
	t.Helper()
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
	prepared.Lock()
	var name string
	if free := prepared.free[key]; len(free) > 0 {
		name, prepared.free[key] = free[len(free)-1], free[:len(free)-1]
	}
	prepared.Unlock()
	ctx := context.Background()
	if name == "" {
		name = fmt.Sprintf("p%d_%d", os.Getpid(), dbSeq.Add(1))
		conn, err := pgx.Connect(ctx, srv.dsn("postgres"))
		if err != nil {
			t.Fatalf("pgtest: connect: %v", err)
		}
		_, err = conn.Exec(ctx, "CREATE SCHEMA "+name)
		conn.Close(ctx)
		if err != nil {
			t.Fatalf("pgtest: create schema: %v", err)
		}
		if err := prepare(srv.dsn("postgres") + "&search_path=" + name); err != nil {
			t.Fatalf("pgtest: prepare %s: %v", key, err)
		}
		keep, err := tablesWithRows(ctx, name)
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		prepared.Lock()
		if prepared.keep == nil {
			prepared.free, prepared.keep = map[string][]string{}, map[string]map[string]bool{}
		}
		prepared.keep[key] = keep
		prepared.Unlock()
	}
	t.Cleanup(func() {
		prepared.Lock()
		keep := prepared.keep[key]
		prepared.Unlock()
		if err := empty(ctx, name, keep); err != nil {
			return // not reused: the server goes with the binary
		}
		prepared.Lock()
		prepared.free[key] = append(prepared.free[key], name)
		prepared.Unlock()
	})
	return srv.dsn("postgres") + "&search_path=" + name
}

func tablesWithRows(ctx context.Context, schema string) (map[string]bool, error) {
	conn, err := pgx.Connect(ctx, srv.dsn("postgres"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
	if err != nil {
		return nil, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, tb := range tables {
		var any bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgx.Identifier{schema, tb}.Sanitize()+")").Scan(&any); err != nil {
			return nil, err
		}
		keep[tb] = any
	}
	return keep, nil
}

// empty deletes the rows of every table of schema not in keep and
// restarts its sequences, in one transaction.
func empty(ctx context.Context, schema string, keep map[string]bool) error {
	conn, err := pgx.Connect(ctx, srv.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
		if err != nil {
			return err
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, tb := range tables {
			if keep[tb] {
				continue
			}
			if _, err := tx.Exec(ctx, "DELETE FROM "+pgx.Identifier{schema, tb}.Sanitize()); err != nil {
				return err
			}
		}
		rows, err = tx.Query(ctx, "SELECT sequencename FROM pg_sequences WHERE schemaname = $1", schema)
		if err != nil {
			return err
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, sq := range seqs {
			if _, err := tx.Exec(ctx, "ALTER SEQUENCE "+pgx.Identifier{schema, sq}.Sanitize()+" RESTART"); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Main runs a test binary's tests and stops the server after them; call it
// from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop shuts the server down and removes its directory. The server also
// dies with the test binary if Stop is never called.
func Stop() {
	stopMu.Lock()
	defer stopMu.Unlock()
	if stopped || srv == nil {
		stopped = true
		return
	}
	stopped = true
	_ = srv.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-srv.exit:
	case <-time.After(30 * time.Second):
		_ = srv.cmd.Process.Kill()
		<-srv.exit
	}
	os.RemoveAll(srv.dir)
}

// BinDir finds the directory holding initdb and postgres: $ORCHARD_PG_BIN,
// else the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	if d := os.Getenv("ORCHARD_PG_BIN"); d != "" {
		dirs = []string{d} // told where: look nowhere else
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	msg := "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (or $ORCHARD_PG_BIN); install them with: " + InstallHint
	if os.Getenv("CI") == "true" {
		msg = "CI: " + msg + " — the CI machine must have them (make test installs them as root)"
	}
	return "", errors.New(msg)
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func start() (*server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "orchard-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, exit: make(chan error, 1)}
	cred, err := unprivileged(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	// --no-sync only for initdb's own files: the server keeps fsync on.
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if s.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	started := make(chan error, 1)
	// The process is started from a locked thread that never exits, so
	// Pdeathsig stops the server when the test binary dies without Stop.
	go func() {
		runtime.LockOSThread()
		cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(s.port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir,
			"-c", "max_connections=300", "-c", "shared_buffers=32MB")
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		s.cmd = cmd
		started <- nil
		s.exit <- cmd.Wait()
		log.Close()
		select {} // keep the thread, so Pdeathsig stays armed
	}()
	if err := <-started; err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := s.waitReady(); err != nil {
		_ = s.cmd.Process.Kill()
		logText, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w; server log:\n%s", err, logText)
	}
	return s, nil
}

// waitReady polls until the server accepts connections (or exits).
func (s *server) waitReady() error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case e := <-s.exit:
			return fmt.Errorf("postgres exited at start: %v", e)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unprivileged returns the credentials to run the server with: none when
// not root; as root (PostgreSQL refuses to run as root) the user nobody,
// owning dir.
func unprivileged(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the user nobody to run postgres as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ServerCPU is the CPU time the test server has used so far, its exited
// backends included (0 before it starts), for benchmarks that charge a
// backend's work to each operation. It reads /proc (Linux), in clock ticks
// of 10ms.
func ServerCPU() time.Duration {
	if srv == nil || srv.cmd == nil {
		return 0
	}
	pgid := srv.cmd.Process.Pid
	var total time.Duration
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if grp, _ := strconv.Atoi(f[2]); grp != pgid {
			continue
		}
		last := 13 // utime, stime
		if pid == pgid {
			last = 15 // and the reaped children's cutime, cstime
		}
		for _, s := range f[11:last] {
			n, _ := strconv.ParseInt(s, 10, 64)
			total += time.Duration(n) * 10 * time.Millisecond
		}
	}
	return total
}

package postgres_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/postgres"
)

// freezer is a TCP proxy to PostgreSQL that can stop forwarding without
// closing anything, as a network partition does: no FIN, no RST, the
// bytes just stop.
type freezer struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen chan struct{} // closed once frozen
	done   chan struct{} // closed by close
	once   sync.Once
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, frozen: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(f.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, up)
			f.mu.Unlock()
			go f.pipe(c, up)
			go f.pipe(up, c)
		}
	}()
	return f
}

// pipe copies until frozen, then holds both ends open and silent.
func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-f.frozen:
			<-f.done // silent until the test closes the connections
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			return
		}
	}
}

func (f *freezer) freeze() { close(f.frozen) }

func (f *freezer) close() {
	f.once.Do(func() { close(f.done) })
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

// A listening session whose connection goes silent (a partition: nothing
// is closed) is reported lost once its heartbeat goes unanswered, so a
// replica does not keep trusting caches no notification can reach.
func TestSubscribeSilentConnectionLost(t *testing.T) {
	ctx := t.Context()
	u, err := url.Parse(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, u.Host)
	u.Host = f.ln.Addr().String()
	s, err := postgres.Open(ctx, u.String(), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	changes := s.Subscribe(ctx)
	if c := next(t, changes); c.Kind != storage.ChangeAll {
		t.Fatalf("first change %+v, want all", c)
	}
	f.freeze()
	if c := next(t, changes); c.Kind != storage.ChangeLost {
		t.Fatalf("after the connection went silent: %+v, want lost", c)
	}
	f.close() // before Close, whose goodbyes would wait on the silent sockets
	s.Close()
}

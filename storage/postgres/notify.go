package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/orchardmdm/orchard/storage"
)

var _ storage.Notifier = (*Store)(nil)

// retryListen is the pause before listening again after a lost connection.
const retryListen = 200 * time.Millisecond

// A listening session quiet for heartbeatAfter is pinged; one that does
// not answer within heartbeatTimeout counts as lost. A connection cut
// without a FIN or RST (a partition, a dead proxy) then ends the
// subscription within seconds, instead of when TCP gives up, and the
// replica stops trusting its caches.
const (
	heartbeatAfter   = time.Second
	heartbeatTimeout = 2 * time.Second
)

// Subscribe delivers the changes the triggers of migration 0004 send, on a
// connection of its own (LISTEN holds a session).
func (s *Store) Subscribe(ctx context.Context) <-chan storage.Change {
	out := make(chan storage.Change, 256)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			s.listen(ctx, out)
			if ctx.Err() != nil || !send(ctx, out, storage.Change{Kind: storage.ChangeLost}) {
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(retryListen):
			}
		}
	}()
	return out
}

// listen runs one LISTEN session until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, out chan<- storage.Change) {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return
	}
	// A session that listened never goes back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{"orchard:" + schema}.Sanitize()); err != nil {
		return
	}
	if !send(ctx, out, storage.Change{Kind: storage.ChangeAll}) {
		return
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, heartbeatAfter)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil || !pgconn.Timeout(err) {
				return
			}
			// Quiet: make sure the session still answers.
			pctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
			continue
		}
		kind, key, _ := strings.Cut(n.Payload, ":")
		if !send(ctx, out, storage.Change{Kind: storage.ChangeKind(kind), Key: key}) {
			return
		}
	}
}

func send(ctx context.Context, out chan<- storage.Change, c storage.Change) bool {
	select {
	case out <- c:
		return true
	case <-ctx.Done():
		return false
	}
}

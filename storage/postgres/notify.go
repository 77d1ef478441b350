package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/orchardmdm/orchard/storage"
)

var _ storage.Notifier = (*Store)(nil)

// retryListen is the pause before listening again after a lost connection.
const retryListen = 200 * time.Millisecond

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
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return
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

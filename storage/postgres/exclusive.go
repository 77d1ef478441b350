package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrLockLost: the session holding an exclusive lock ended under fn.
var ErrLockLost = errors.New("postgres: lost the connection holding the exclusive lock")

// lockCheck is how often a holder makes sure its session (and so its lock)
// is still alive.
const lockCheck = 10 * time.Second

// RunExclusive runs fn while holding the advisory lock name (per database
// and schema),
// so that of all replicas on the database one runs it at a time; the others
// wait in this call for the lock. It returns fn's error, ctx's, or
// ErrLockLost when the session died (fn's context is then cancelled, as
// another replica may already have taken over).
func (s *Store) RunExclusive(ctx context.Context, name string, fn func(context.Context) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Release()
	const key = "SELECT %s(hashtextextended('orchard:' || current_schema() || ':' || $1, 0))"
	if _, err := conn.Exec(ctx, fmt.Sprintf(key, "pg_advisory_lock"), name); err != nil {
		return fmt.Errorf("postgres: wait for lock %s: %w", name, err)
	}
	fctx, cancel := context.WithCancelCause(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-fctx.Done():
				return
			case <-time.After(lockCheck):
				if err := conn.Ping(fctx); err != nil && fctx.Err() == nil {
					cancel(ErrLockLost)
					return
				}
			}
		}
	}()
	err = fn(fctx)
	lost := errors.Is(context.Cause(fctx), ErrLockLost)
	cancel(nil)
	<-watched // the watcher no longer uses conn
	if lost {
		conn.Conn().Close(context.Background()) // the pool must not reuse it
		return ErrLockLost
	}
	if _, uerr := conn.Exec(context.WithoutCancel(ctx), fmt.Sprintf(key, "pg_advisory_unlock"), name); uerr != nil {
		// A session that cannot unlock must not go back to the pool holding the lock.
		conn.Conn().Close(context.Background())
	}
	return err
}

package bolt

import (
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// groupCommitter folds concurrent write functions into shared transactions.
// Unlike bbolt's DB.Batch it adds no timer delay: a lone writer commits at
// once, and writers that arrive while a commit is on disk ride the next one.
type groupCommitter struct {
	db *bolt.DB

	mu      sync.Mutex
	pending []*call
	running bool
	closed  bool
	idle    *sync.Cond
}

type call struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// maxBatch bounds one transaction so a flood of writers cannot build an
// unbounded dirty page set.
const maxBatch = 512

func newGroupCommitter(db *bolt.DB) *groupCommitter {
	g := &groupCommitter{db: db}
	g.idle = sync.NewCond(&g.mu)
	return g
}

var errClosed = errors.New("bolt: store is closed")

func (g *groupCommitter) do(fn func(*bolt.Tx) error) error {
	c := &call{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errClosed
	}
	g.pending = append(g.pending, c)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	return <-c.done
}

func (g *groupCommitter) loop() {
	for {
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.running = false
			g.idle.Broadcast()
			g.mu.Unlock()
			return
		}
		n := min(len(g.pending), maxBatch)
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()
		g.commit(batch)
	}
}

// commit runs a batch in one transaction. If one function fails, the
// transaction is rolled back, the failing call gets its error, and the
// rest are retried in a fresh transaction.
func (g *groupCommitter) commit(batch []*call) {
	for len(batch) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, c := range batch {
				if err := safeRun(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, c := range batch {
				c.done <- err // nil, or a commit error shared by all
			}
			return
		}
		batch[failed].done <- err
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

func safeRun(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bolt: write panicked: %v", p)
		}
	}()
	return fn(tx)
}

func (g *groupCommitter) close() {
	g.mu.Lock()
	g.closed = true
	for g.running {
		g.idle.Wait()
	}
	g.mu.Unlock()
}

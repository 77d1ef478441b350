package server

import (
	"context"
	"errors"
	"maps"
	"sync"
)

// Names of the jobs that run on one replica at a time (runExclusive); they
// are the advisory locks' names and the metric's job label.
const (
	jobDEPSync    = "dep-sync"
	jobRenewal    = "identity-renewal"
	jobPushExpiry = "push-expiry-warnings"
)

// heldJobs records which exclusive jobs this replica runs now.
type heldJobs struct {
	mu   sync.Mutex
	held map[string]bool
}

func (h *heldJobs) set(job string, held bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held == nil {
		h.held = map[string]bool{}
	}
	h.held[job] = held
}

func (h *heldJobs) snapshot() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.held)
}

// HoldsJob reports whether this replica runs the exclusive job now (tests;
// operators read orchard_exclusive_job_held).
func (s *Server) HoldsJob(job string) bool { return s.jobs.snapshot()[job] }

// logExclusive reports how an exclusive job's runner ended, unless it was
// the server stopping.
func (s *Server) logExclusive(what string, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error(what+" stopped", "err", err)
	}
}

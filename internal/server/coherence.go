package server

import (
	"context"

	"github.com/orchardmdm/orchard/internal/push"
	"github.com/orchardmdm/orchard/storage"
)

// followChanges keeps this replica's caches true to what other replicas
// change, when the store tells (storage.Notifier; bbolt has one process
// and needs none): a revoked certificate's record, the certificate
// bindings and enrolled channels, the push certificate. While
// notifications are lost the caches are bypassed, so no replica answers
// from authorization state another has changed.
func (s *Server) followChanges(ctx context.Context) {
	n, ok := s.store.(storage.Notifier)
	if !ok {
		return
	}
	for c := range n.Subscribe(ctx) {
		switch c.Kind {
		case storage.ChangeCert:
			s.verifier.Forget(c.Key)
		case storage.ChangeBinding, storage.ChangeEnrollment:
			s.svc.ForgetCached(false)
		case storage.ChangeSetting:
			if c.Key == push.SettingKey {
				s.reloadPush(ctx)
			}
		case storage.ChangeLost:
			s.log.Warn("lost the database's change notifications: reading authorization state through until subscribed again")
			s.readThrough()
		case storage.ChangeAll:
			s.verifier.ForgetAll(false)
			s.svc.ForgetCached(false)
			s.reloadPush(ctx)
		default:
			// A kind this binary does not know (a newer replica's): drop everything.
			s.verifier.ForgetAll(false)
			s.svc.ForgetCached(false)
		}
	}
}

// readThrough stops answering from caches until the next ChangeAll.
func (s *Server) readThrough() {
	s.verifier.ForgetAll(true)
	s.svc.ForgetCached(true)
}

func (s *Server) reloadPush(ctx context.Context) {
	if err := s.push.Reload(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("reload the push certificate another replica uploaded", "err", err)
	}
}

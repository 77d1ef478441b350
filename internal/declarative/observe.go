package declarative

import (
	"context"

	"github.com/orchardmdm/orchard/mdm/service"
)

var _ service.Observer = (*Engine)(nil)

// Observe syncs a channel as soon as it can receive commands, when a set
// already applies to it (it was scoped before it enrolled, or it
// re-enrolled): wired before the ADE setup observer, the sync is queued
// ahead of DeviceConfigured.
func (e *Engine) Observe(ctx context.Context, ev service.Event) {
	var id string
	switch ev := ev.(type) {
	case service.Enrolled:
		id = ev.Enrollment.ID
	case service.UserEnrolled:
		id = ev.Enrollment.ID
	default:
		return
	}
	m, err := e.manifest(ctx, id)
	if err != nil {
		e.log.Error("declarative: manifest at enrollment", "channel", id, "err", err)
		return
	}
	if len(m.decls) == len(base) {
		return // only Orchard's own declarations: nothing to tell it yet
	}
	if err := e.syncOne(ctx, id); err != nil {
		e.log.Error("declarative: queue sync at enrollment", "channel", id, "err", err)
	}
}

package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/storage"
)

// Through the device endpoint: a result for a queued command the channel
// was never offered is refused, and a later result after the first final
// one changes nothing. Issue #10, section 5.
func testResultRulesEndToEnd(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	first := send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"})
	second := send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "SecurityInfo"})
	if _, err := dev.Report(ctx, "Acknowledged", first.CommandUUID, nil); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("result before the command was offered: %v, want 400", err)
	}
	c, err := dev.Idle(ctx)
	if err != nil || c == nil || c.UUID != first.CommandUUID {
		t.Fatalf("idle: %+v %v", c, err)
	}
	if _, err := dev.Report(ctx, "Acknowledged", second.CommandUUID, nil); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("result for the command behind the offered one: %v, want 400", err)
	}
	if c, err = dev.Report(ctx, "Acknowledged", first.CommandUUID, nil); err != nil || c == nil || c.UUID != second.CommandUUID {
		t.Fatalf("acknowledge: %+v %v", c, err)
	}
	for _, late := range []string{"Error", "NotNow"} {
		if _, err := dev.Report(ctx, late, first.CommandUUID, nil); err != nil {
			t.Fatalf("late %s: %v, want 200 (ignored)", late, err)
		}
	}
	var view commandView
	s.API(t, "GET", "/v1/commands/"+first.CommandUUID, nil, &view)
	if len(view.Targets) != 1 || view.Targets[0].Status != string(storage.Acknowledged) {
		t.Fatalf("after late results: %+v", view.Targets)
	}
	res, err := s.Store().Results(ctx, first.CommandUUID)
	if err != nil || len(res) != 1 {
		t.Fatalf("stored results = %d, %v; want only the Acknowledged", len(res), err)
	}
}

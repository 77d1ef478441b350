package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

func runWebhooks(t *testing.T, open func(t *testing.T) storage.WebhookStore) {
	ctx := context.Background()
	t0 := time.Unix(1.7e9, 0).UTC()
	endpoint := func(id string) *storage.WebhookEndpoint {
		return &storage.WebhookEndpoint{ID: id, URL: "https://hooks.example/" + id, Topics: []string{"mdm.*"}, Enabled: true, CreatedAt: t0}
	}
	event := func(ep, topic string, at time.Time) storage.WebhookDelivery {
		return storage.WebhookDelivery{EndpointID: ep, EventID: topic + at.String(), Topic: topic, CreatedAt: at, Body: []byte(`{"topic":"` + topic + `"}`)}
	}
	t.Run("Endpoints", func(t *testing.T) {
		s := open(t)
		for _, id := range []string{"b", "a"} {
			if err := s.PutWebhook(ctx, endpoint(id)); err != nil {
				t.Fatal(err)
			}
		}
		ep := endpoint("a")
		ep.Enabled, ep.SecretSealed, ep.IncludeSecrets = false, []byte{1, 2, 3}, []string{"BootstrapToken"}
		if err := s.PutWebhook(ctx, ep); err != nil {
			t.Fatal(err)
		}
		got, err := s.Webhook(ctx, "a")
		if err != nil || got.Enabled || string(got.SecretSealed) != "\x01\x02\x03" || len(got.IncludeSecrets) != 1 || got.Topics[0] != "mdm.*" {
			t.Fatalf("a = %+v, %v", got, err)
		}
		all, err := s.ListWebhooks(ctx)
		if err != nil || len(all) != 2 || all[0].ID != "a" || all[1].ID != "b" {
			t.Fatalf("list = %+v, %v", all, err)
		}
		if _, err := s.Webhook(ctx, "zz"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		if err := s.DeleteWebhook(ctx, "zz"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("delete missing: %v", err)
		}
	})
	t.Run("OutboxOrder", func(t *testing.T) {
		s := open(t)
		for _, id := range []string{"a", "b"} {
			if err := s.PutWebhook(ctx, endpoint(id)); err != nil {
				t.Fatal(err)
			}
		}
		ds := []storage.WebhookDelivery{event("a", "mdm.Authenticate", t0), event("b", "mdm.Authenticate", t0),
			event("gone", "mdm.Authenticate", t0), event("a", "mdm.TokenUpdate", t0.Add(time.Second))}
		if err := s.AppendWebhookDeliveries(ctx, ds); err != nil {
			t.Fatal(err)
		}
		if ds[0].ID == 0 || ds[1].ID <= ds[0].ID || ds[2].ID != 0 || ds[3].ID <= ds[1].ID {
			t.Fatalf("IDs %d %d %d %d: want increasing, 0 for the unknown endpoint", ds[0].ID, ds[1].ID, ds[2].ID, ds[3].ID)
		}
		more := []storage.WebhookDelivery{event("a", "mdm.Connect", t0.Add(2*time.Second))}
		if err := s.AppendWebhookDeliveries(ctx, more); err != nil {
			t.Fatal(err)
		}
		pend, err := s.PendingWebhookDeliveries(ctx, "a", 0)
		if err != nil || len(pend) != 3 || pend[0].Topic != "mdm.Authenticate" || pend[1].Topic != "mdm.TokenUpdate" || pend[2].Topic != "mdm.Connect" {
			t.Fatalf("pending a = %+v, %v", pend, err)
		}
		if pend[0].State != storage.WebhookPending || string(pend[0].Body) != `{"topic":"mdm.Authenticate"}` || !pend[0].CreatedAt.Equal(t0) {
			t.Fatalf("entry = %+v", pend[0])
		}
		if two, _ := s.PendingWebhookDeliveries(ctx, "a", 2); len(two) != 2 || two[1].ID != pend[1].ID {
			t.Fatalf("limit 2 = %+v", two)
		}
		// Delivered and dead entries leave the pending list; the rest keep their order.
		first := pend[0]
		first.State, first.Attempts, first.DeliveredAt, first.LastStatus = storage.WebhookDelivered, 2, t0.Add(time.Minute), 200
		first.Body = []byte("ignored")
		if err := s.UpdateWebhookDelivery(ctx, &first); err != nil {
			t.Fatal(err)
		}
		second := pend[1]
		second.State, second.Attempts, second.LastAttemptAt, second.LastError = storage.WebhookDead, 9, t0.Add(2*time.Minute), "refused"
		if err := s.UpdateWebhookDelivery(ctx, &second); err != nil {
			t.Fatal(err)
		}
		left, err := s.PendingWebhookDeliveries(ctx, "a", 0)
		if err != nil || len(left) != 1 || left[0].ID != pend[2].ID {
			t.Fatalf("pending after updates = %+v, %v", left, err)
		}
		if n, err := s.CountPendingWebhookDeliveries(ctx, "a"); err != nil || n != 1 {
			t.Fatalf("backlog of a = %d, %v; want 1", n, err)
		}
		if n, err := s.CountPendingWebhookDeliveries(ctx, "b"); err != nil || n != 1 {
			t.Fatalf("backlog of b = %d, %v; want 1", n, err)
		}
		if n, err := s.CountPendingWebhookDeliveries(ctx, "gone"); err != nil || n != 0 {
			t.Fatalf("backlog of an unknown endpoint = %d, %v; want 0", n, err)
		}
		got, err := s.WebhookDelivery(ctx, first.ID)
		if err != nil || got.State != storage.WebhookDelivered || got.Attempts != 2 || got.LastStatus != 200 || string(got.Body) != `{"topic":"mdm.Authenticate"}` {
			t.Fatalf("delivered = %+v, %v", got, err)
		}
		if pending, dead, err := s.CountWebhookDeliveries(ctx); err != nil || pending != 2 || dead != 1 {
			t.Fatalf("counts = %d pending, %d dead, %v; want 2, 1", pending, dead, err)
		}
		// Replay: back to pending, in its old place (before the newer one).
		second.State, second.Attempts, second.NextAttemptAt = storage.WebhookPending, 0, t0
		if err := s.UpdateWebhookDelivery(ctx, &second); err != nil {
			t.Fatal(err)
		}
		left, _ = s.PendingWebhookDeliveries(ctx, "a", 0)
		if len(left) != 2 || left[0].ID != second.ID || left[1].ID != pend[2].ID {
			t.Fatalf("pending after replay = %+v", left)
		}
		if err := s.UpdateWebhookDelivery(ctx, &storage.WebhookDelivery{ID: 999999, State: storage.WebhookDead}); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		if _, err := s.WebhookDelivery(ctx, 999999); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
	})
	t.Run("ListAndPrune", func(t *testing.T) {
		s := open(t)
		for _, id := range []string{"a", "b"} {
			if err := s.PutWebhook(ctx, endpoint(id)); err != nil {
				t.Fatal(err)
			}
		}
		var ds []storage.WebhookDelivery
		for i := range 6 {
			ep := "a"
			if i%2 == 1 {
				ep = "b"
			}
			ds = append(ds, event(ep, "mdm.Connect", t0.Add(time.Duration(i)*time.Hour)))
		}
		if err := s.AppendWebhookDeliveries(ctx, ds); err != nil {
			t.Fatal(err)
		}
		all, err := s.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{})
		if err != nil || len(all) != 6 || all[0].ID != ds[5].ID || all[5].ID != ds[0].ID {
			t.Fatalf("list all = %d entries, %v; want 6 newest first", len(all), err)
		}
		page, _ := s.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{EndpointID: "a", Limit: 2})
		if len(page) != 2 || page[0].ID != ds[4].ID || page[1].ID != ds[2].ID {
			t.Fatalf("a page 1 = %+v", page)
		}
		page, _ = s.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{EndpointID: "a", Before: page[1].ID})
		if len(page) != 1 || page[0].ID != ds[0].ID {
			t.Fatalf("a page 2 = %+v", page)
		}
		// 0 and 1 delivered long ago, 2 dead long ago, 3 delivered recently, 4 and 5 pending.
		mark := func(d storage.WebhookDelivery, state string, at time.Time) {
			d.State = state
			if state == storage.WebhookDelivered {
				d.DeliveredAt = at
			}
			d.LastAttemptAt = at
			if err := s.UpdateWebhookDelivery(ctx, &d); err != nil {
				t.Fatal(err)
			}
		}
		mark(ds[0], storage.WebhookDelivered, t0.Add(time.Minute))
		mark(ds[1], storage.WebhookDelivered, t0.Add(2*time.Hour))
		mark(ds[2], storage.WebhookDead, t0.Add(3*time.Hour))
		mark(ds[3], storage.WebhookDelivered, t0.Add(10*time.Hour))
		dead, _ := s.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{State: storage.WebhookDead})
		if len(dead) != 1 || dead[0].ID != ds[2].ID {
			t.Fatalf("dead = %+v", dead)
		}
		n, err := s.PruneWebhookDeliveries(ctx, t0.Add(5*time.Hour))
		if err != nil || n != 3 {
			t.Fatalf("pruned %d, %v; want 3", n, err)
		}
		left, _ := s.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{})
		if len(left) != 3 || left[0].ID != ds[5].ID || left[2].ID != ds[3].ID {
			t.Fatalf("after prune = %+v", left)
		}
		// Deleting an endpoint takes its entries along.
		if err := s.DeleteWebhook(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		left, _ = s.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{})
		if len(left) != 1 || left[0].ID != ds[4].ID {
			t.Fatalf("after delete of b = %+v", left)
		}
		if p, _ := s.PendingWebhookDeliveries(ctx, "b", 0); len(p) != 0 {
			t.Fatalf("b still has pending %+v", p)
		}
		if pending, _, _ := s.CountWebhookDeliveries(ctx); pending != 1 {
			t.Fatalf("pending = %d, want 1", pending)
		}
		// A topic filter takes only that topic, with the other filters.
		more := []storage.WebhookDelivery{event("a", "mdm.CheckOut", t0.Add(6*time.Hour)), event("a", "mdm.Connect", t0.Add(7*time.Hour))}
		if err := s.AppendWebhookDeliveries(ctx, more); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{Topic: "mdm.CheckOut"}); len(got) != 1 || got[0].ID != more[0].ID {
			t.Fatalf("topic mdm.CheckOut = %+v", got)
		}
		got, _ := s.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{EndpointID: "a", Topic: "mdm.Connect", Limit: 2})
		if len(got) != 2 || got[0].ID != more[1].ID || got[1].ID != ds[4].ID {
			t.Fatalf("topic mdm.Connect of a = %+v", got)
		}
		if got, _ := s.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{Topic: "mdm.CheckOut", State: storage.WebhookDead}); len(got) != 0 {
			t.Fatalf("dead mdm.CheckOut = %+v", got)
		}
	})
}

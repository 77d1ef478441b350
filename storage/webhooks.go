package storage

import (
	"context"
	"time"
)

// WebhookEndpoint is a receiver of events: where they are posted, which
// topics it wants, and the sealed HMAC secret they are signed with.
type WebhookEndpoint struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Topics are exact topics ("mdm.Connect") or prefixes ending in ".*"
	// ("mdm.*"); "*" is every topic.
	Topics []string `json:"topics"`
	// SecretSealed is the HMAC key sealed by the server's secret box; it is
	// never answered.
	SecretSealed []byte `json:"secret_sealed,omitempty"`
	// IncludeSecrets names the device secrets (plist keys such as
	// BootstrapToken or PushMagic) this endpoint opted in to receive; all
	// others are cut from raw payloads.
	IncludeSecrets []string  `json:"include_secrets,omitempty"`
	Enabled        bool      `json:"enabled"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Delivery states of an outbox entry.
const (
	WebhookPending   = "pending"   // not yet accepted by the receiver
	WebhookDelivered = "delivered" // the receiver answered 2xx
	WebhookDead      = "dead"      // retried past the dead-letter age; replay moves it back to pending
)

// WebhookDelivery is one event for one endpoint in the outbox.
type WebhookDelivery struct {
	// ID is assigned by the store when appended; later appends get larger
	// IDs, so ID order is the order an endpoint is sent its events.
	ID         uint64    `json:"id"`
	EndpointID string    `json:"endpoint_id"`
	EventID    string    `json:"event_id"`
	Topic      string    `json:"topic"`
	CreatedAt  time.Time `json:"created_at"`
	// Body is the JSON envelope as posted; sealed (Sealed) when the
	// endpoint opted in to secrets, so no secret rests in the clear.
	Body   []byte `json:"body"`
	Sealed bool   `json:"sealed,omitempty"`

	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	LastAttemptAt time.Time `json:"last_attempt_at,omitzero"`
	LastStatus    int       `json:"last_status,omitempty"` // HTTP status of the last attempt (0: no answer)
	LastError     string    `json:"last_error,omitempty"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
}

// WebhookDeliveryFilter selects outbox entries; zero fields match all.
type WebhookDeliveryFilter struct {
	EndpointID string
	State      string
	Topic      string // an exact topic
	Before     uint64 // only IDs below it (0: no bound), for paging newest first
	Limit      int    // at most this many (<= 0: all)
}

// WebhookStore keeps webhook endpoints and the outbox of their events.
type WebhookStore interface {
	// PutWebhook creates or replaces an endpoint by ID.
	PutWebhook(ctx context.Context, ep *WebhookEndpoint) error
	// Webhook returns an endpoint, or ErrNotFound.
	Webhook(ctx context.Context, id string) (*WebhookEndpoint, error)
	// ListWebhooks returns every endpoint ordered by ID.
	ListWebhooks(ctx context.Context) ([]WebhookEndpoint, error)
	// DeleteWebhook removes an endpoint and all its outbox entries in one
	// write; ErrNotFound if unknown.
	DeleteWebhook(ctx context.Context, id string) error
	// AppendWebhookDeliveries adds entries in one durable write, assigning
	// each its ID (written back into ds) in slice order. Entries for an
	// endpoint that does not exist (deleted meanwhile) are dropped, with ID 0.
	AppendWebhookDeliveries(ctx context.Context, ds []WebhookDelivery) error
	// PendingWebhookDeliveries returns an endpoint's pending entries in ID
	// order, at most limit (<= 0: all). Its cost does not grow with the
	// number of delivered or dead entries.
	PendingWebhookDeliveries(ctx context.Context, endpointID string, limit int) ([]WebhookDelivery, error)
	// UpdateWebhookDelivery replaces an entry's delivery state (State,
	// Attempts, the attempt times, LastStatus, LastError, DeliveredAt); its
	// body, topic and endpoint stay. ErrNotFound if unknown.
	UpdateWebhookDelivery(ctx context.Context, d *WebhookDelivery) error
	// WebhookDelivery returns one entry, or ErrNotFound.
	WebhookDelivery(ctx context.Context, id uint64) (*WebhookDelivery, error)
	// ListWebhookDeliveries returns entries matching f, newest (highest ID) first.
	ListWebhookDeliveries(ctx context.Context, f WebhookDeliveryFilter) ([]WebhookDelivery, error)
	// PruneWebhookDeliveries deletes delivered entries delivered before the
	// given time and dead ones last tried before it; pending ones always
	// stay. It returns how many it deleted.
	PruneWebhookDeliveries(ctx context.Context, before time.Time) (int, error)
	// CountWebhookDeliveries counts pending and dead entries (for metrics).
	CountWebhookDeliveries(ctx context.Context) (pending, dead int, err error)
	// CountPendingWebhookDeliveries counts an endpoint's pending entries
	// (its backlog); like PendingWebhookDeliveries, its cost does not grow
	// with the delivered or dead ones.
	CountPendingWebhookDeliveries(ctx context.Context, endpointID string) (int, error)
}

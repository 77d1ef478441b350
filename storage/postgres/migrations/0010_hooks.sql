-- Webhooks: endpoints by ID, and the outbox of their events. An entry's
-- ID comes from a sequence, so an endpoint is sent its entries in ID
-- order; the partial index finds an endpoint's pending ones without
-- reading the delivered and dead ones kept for their retention.
CREATE TABLE webhooks (
    id  text COLLATE "C" PRIMARY KEY,
    doc json NOT NULL
);
CREATE SEQUENCE webhook_delivery_seq;
CREATE TABLE webhook_deliveries (
    id          bigint PRIMARY KEY,
    endpoint_id text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    state       text NOT NULL,
    created_at  timestamptz NOT NULL,
    ended_at    timestamptz, -- delivered_at, or the last attempt of a dead entry
    doc         json NOT NULL
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_ended ON webhook_deliveries (ended_at) WHERE state <> 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

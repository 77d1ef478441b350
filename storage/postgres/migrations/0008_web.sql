-- Version 8: web sessions of the server-rendered pages (console, portal),
-- by kind and the SHA-256 of the session id (never the id itself).
CREATE TABLE web_sessions (
    kind            text COLLATE "C" NOT NULL,
    id_hash         bytea NOT NULL,
    subject         text COLLATE "C" NOT NULL,
    idle_expires_at timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    doc             json NOT NULL,
    PRIMARY KEY (kind, id_hash)
);
CREATE INDEX web_sessions_subject ON web_sessions (kind, subject);
-- A channel's command history, newest first, without scanning other
-- channels' targets.
CREATE INDEX targets_channel_seq ON targets (channel, ((doc->>'seq')::bigint));

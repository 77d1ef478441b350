-- Version 3: admin accounts, their API tokens (only the SHA-256 of each
-- secret) and the audit log. Audit IDs are 16 hex digits of the sequence,
-- as on bbolt, so they sort in the order entries were written.
CREATE TABLE admins (
    username text COLLATE "C" PRIMARY KEY,
    doc      json NOT NULL
);
CREATE TABLE api_tokens (
    id       text COLLATE "C" PRIMARY KEY,
    admin    text COLLATE "C" NOT NULL REFERENCES admins (username) ON DELETE CASCADE,
    hash     bytea NOT NULL UNIQUE,
    doc      json NOT NULL
);
CREATE INDEX api_tokens_admin ON api_tokens (admin);
CREATE SEQUENCE audit_seq;
CREATE TABLE audit (
    id     text COLLATE "C" PRIMARY KEY,
    at     timestamptz NOT NULL,
    actor  text COLLATE "C" NOT NULL,
    action text COLLATE "C" NOT NULL,
    target text COLLATE "C" NOT NULL,
    doc    json NOT NULL
);
CREATE INDEX audit_actor ON audit (actor, id);

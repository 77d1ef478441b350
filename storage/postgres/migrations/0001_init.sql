-- Orchard's schema, version 1. Records are JSON documents (the same
-- encoding the bbolt backend keeps) beside the key columns the queries
-- select and order on; keys compare bytewise (COLLATE "C") so listings
-- come out in the same order on every backend and locale.
--
-- Documents are json, not jsonb: jsonb refuses a string holding U+0000,
-- which a device may put in any field it reports. Only targets, whose
-- fields Orchard writes itself, are jsonb, for patching in place.

CREATE TABLE enrollments (
    id        text COLLATE "C" PRIMARY KEY,
    device_id text COLLATE "C" NOT NULL,
    enrolled  boolean NOT NULL,
    generation bigint NOT NULL,
    doc       json NOT NULL
);
CREATE INDEX enrollments_device ON enrollments (device_id);

-- mdm.FoldDeviceID(device ID) -> the device ID as first stored.
CREATE TABLE device_fold (
    fold      text COLLATE "C" PRIMARY KEY,
    device_id text COLLATE "C" NOT NULL
);

CREATE TABLE cert_binding (
    cert_hash text COLLATE "C" PRIMARY KEY,
    device_id text COLLATE "C" NOT NULL
);

CREATE TABLE commands (
    uuid text COLLATE "C" PRIMARY KEY,
    doc  json NOT NULL,
    raw  bytea NOT NULL
);

CREATE TABLE targets (
    uuid    text COLLATE "C" NOT NULL,
    channel text COLLATE "C" NOT NULL,
    doc     jsonb NOT NULL,
    PRIMARY KEY (uuid, channel)
);

-- The per-channel FIFO: a row per queued or deferred (NotNow) target.
CREATE SEQUENCE queue_seq;
CREATE TABLE queue (
    channel  text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL,
    uuid     text COLLATE "C" NOT NULL,
    deferred boolean NOT NULL DEFAULT false,
    PRIMARY KEY (channel, seq)
);
-- Next reads the first row of this index: its cost stays flat in queue
-- depth and channel count.
CREATE INDEX queue_head ON queue (channel, seq) WHERE NOT deferred;

CREATE TABLE results (
    uuid    text COLLATE "C" NOT NULL,
    channel text COLLATE "C" NOT NULL,
    n       integer NOT NULL,
    doc     json NOT NULL,
    PRIMARY KEY (uuid, channel, n)
);

CREATE TABLE settings (
    key   text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE certs (
    hash   text COLLATE "C" PRIMARY KEY,
    serial text COLLATE "C" NOT NULL,
    doc    json NOT NULL
);
CREATE INDEX certs_serial ON certs (serial);

CREATE TABLE challenges (
    id  text COLLATE "C" PRIMARY KEY,
    ref text COLLATE "C" NOT NULL,
    doc json NOT NULL
);
CREATE INDEX challenges_ref ON challenges (ref);

CREATE TABLE invitations (
    id         text COLLATE "C" PRIMARY KEY,
    token_hash text COLLATE "C" NOT NULL UNIQUE,
    doc        json NOT NULL
);

CREATE TABLE configurator_profiles (
    id  text COLLATE "C" PRIMARY KEY,
    doc json NOT NULL
);

CREATE TABLE configurator_serials (
    serial     text COLLATE "C" PRIMARY KEY,
    profile_id text COLLATE "C" NOT NULL,
    doc        json NOT NULL
);
CREATE INDEX configurator_serials_profile ON configurator_serials (profile_id, serial);

CREATE TABLE inventory (
    device_id text COLLATE "C" PRIMARY KEY,
    doc       json NOT NULL
);

CREATE TABLE device_reports (
    channel text COLLATE "C" NOT NULL,
    kind    text COLLATE "C" NOT NULL,
    doc     json NOT NULL,
    PRIMARY KEY (channel, kind)
);

CREATE TABLE dep_tokens (
    id  text COLLATE "C" PRIMARY KEY,
    doc json NOT NULL
);

CREATE TABLE dep_sync (
    token_id text COLLATE "C" PRIMARY KEY,
    doc      json NOT NULL
);

CREATE TABLE dep_devices (
    serial     text COLLATE "C" PRIMARY KEY,
    token_id   text COLLATE "C" NOT NULL,
    status     text NOT NULL,
    profile_id text COLLATE "C" NOT NULL,
    doc        json NOT NULL
);
CREATE INDEX dep_devices_token ON dep_devices (token_id, serial);
CREATE INDEX dep_devices_status ON dep_devices (status, serial);

CREATE TABLE dep_profiles (
    token_id text COLLATE "C" NOT NULL,
    id       text COLLATE "C" NOT NULL,
    doc      json NOT NULL,
    PRIMARY KEY (token_id, id)
);

-- Undefer looks for a channel's deferred rows without walking its queue.
CREATE INDEX queue_deferred ON queue (channel) WHERE deferred;

-- Version 3: the configuration profile library (append-only versions)
-- and each profile's state per channel.
CREATE TABLE profiles (
    id  text COLLATE "C" PRIMARY KEY,
    doc json NOT NULL
);
CREATE TABLE profile_versions (
    profile_id text COLLATE "C" NOT NULL,
    version    integer NOT NULL,
    doc        json NOT NULL,
    PRIMARY KEY (profile_id, version)
);
CREATE TABLE profile_states (
    profile_id text COLLATE "C" NOT NULL,
    channel    text COLLATE "C" NOT NULL,
    doc        json NOT NULL,
    PRIMARY KEY (profile_id, channel)
);
CREATE INDEX profile_states_by_channel ON profile_states (channel, profile_id);

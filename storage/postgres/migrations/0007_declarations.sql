-- Version 5: Declarative Device Management. Declarations by identifier,
-- declaration sets by name (the declarations they name are checked by the
-- store, in the writing transaction), and each channel's merged status.
CREATE TABLE ddm_declarations (
    id  text COLLATE "C" PRIMARY KEY,
    doc json NOT NULL
);
CREATE TABLE ddm_sets (
    name text COLLATE "C" PRIMARY KEY,
    doc  json NOT NULL
);
CREATE TABLE ddm_status (
    channel text COLLATE "C" PRIMARY KEY,
    doc     json NOT NULL
);

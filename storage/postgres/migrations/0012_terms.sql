-- Terms and conditions: each document's current version, every version
-- (history), and users' acceptances of each version. No foreign keys: the
-- store checks documents and users in the writing transaction.
CREATE TABLE terms (
    name text COLLATE "C" PRIMARY KEY,
    doc  json NOT NULL
);
CREATE TABLE terms_versions (
    name    text COLLATE "C" NOT NULL,
    version integer NOT NULL,
    doc     json NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE terms_acceptances (
    document text COLLATE "C" NOT NULL,
    username text COLLATE "C" NOT NULL,
    version  integer NOT NULL,
    doc      json NOT NULL,
    PRIMARY KEY (document, username, version)
);
CREATE INDEX terms_acceptances_user ON terms_acceptances (username, document, version);

-- Version 4: the local directory (users, static groups, membership) and
-- devices' primary users, kept apart from enrollments so a re-enrollment
-- leaves them in place. No foreign keys: the store checks that users and
-- groups exist in the same transaction (FOR SHARE), and the copy from
-- bbolt loads tables in any order.
CREATE TABLE dir_users (
    username text COLLATE "C" PRIMARY KEY,
    doc      json NOT NULL
);
CREATE TABLE dir_groups (
    name text COLLATE "C" PRIMARY KEY,
    doc  json NOT NULL
);
CREATE TABLE dir_group_members (
    group_name text COLLATE "C" NOT NULL,
    username   text COLLATE "C" NOT NULL,
    PRIMARY KEY (group_name, username)
);
CREATE INDEX dir_group_members_user ON dir_group_members (username);
CREATE TABLE primary_users (
    device_id text COLLATE "C" PRIMARY KEY,
    username  text COLLATE "C" NOT NULL
);
CREATE INDEX primary_users_user ON primary_users (username);

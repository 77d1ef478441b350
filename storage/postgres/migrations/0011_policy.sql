-- Version 10: enrollment policy (internal/policy): platform and device-limit
-- policies, corporate identifiers, and the devices device enrollment
-- managers enrolled. A user's device slots are their primary_users rows.
CREATE SEQUENCE enrollment_policy_gen;
CREATE TABLE enrollment_policies (
    id  text COLLATE "C" PRIMARY KEY,
    doc json NOT NULL
);
CREATE TABLE corporate_ids (
    kind  text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    doc   json NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE TABLE dem_devices (
    username  text COLLATE "C" NOT NULL,
    device_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (username, device_id)
);

-- Version 14: the aggregates of SCEP-stage enrollment refusals, by code
-- and source address (storage.SCEPFailureStore), kept apart from the
-- failure log. IDs are "scep-" and 16 hex digits of the sequence.
CREATE SEQUENCE scep_failure_seq;
CREATE TABLE scep_failures (
    id  text COLLATE "C" PRIMARY KEY,
    doc json NOT NULL
);

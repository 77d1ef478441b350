-- Version 2: the record of refused enrollment attempts, newest
-- storage.MaxEnrollmentFailures kept. IDs are 16 hex digits of the
-- sequence, as on bbolt, so they sort in the order they were recorded.
CREATE SEQUENCE enrollment_failure_seq;
CREATE TABLE enrollment_failures (
    id  text COLLATE "C" PRIMARY KEY,
    doc json NOT NULL
);

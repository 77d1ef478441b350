-- Enrollment sessions: the stages each portal or Setup Assistant
-- enrollment reached, for the incomplete-enrollment report.
CREATE TABLE enrollment_sessions (
    id         text COLLATE "C" PRIMARY KEY,
    started_at timestamptz NOT NULL,
    doc        json NOT NULL
);
CREATE INDEX enrollment_sessions_started ON enrollment_sessions (started_at, id);

-- Device categories, and each device's category, kept apart from
-- enrollments so a re-enrollment leaves it in place. No foreign keys (as
-- in the directory's tables): the store checks in the writing transaction.
CREATE TABLE categories (
    name text COLLATE "C" PRIMARY KEY,
    doc  json NOT NULL
);
CREATE TABLE device_categories (
    device_id text COLLATE "C" PRIMARY KEY,
    category  text COLLATE "C" NOT NULL
);
CREATE INDEX device_categories_category ON device_categories (category, device_id);

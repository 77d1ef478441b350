-- Version 16: device search and the dashboard's counts.
--
-- Device search (storage.InventorySearch) reads each
-- inventory's search key (storage.DeviceInventory.SearchKey, written by
-- Orchard with the document) instead of decoding every document, through a
-- trigram index when the pg_trgm extension can be had: it ships with
-- PostgreSQL's contrib, which Debian's postgresql-15 package includes, and
-- is trusted, so a database owner may create it. Without it the column
-- alone still spares reading the documents. Rows written before this
-- version get their key when Orchard opens the database; until then (and
-- for rows a replica not yet upgraded inserts) search is NULL and such rows
-- are decoded and checked as before. (A device such a replica renames is
-- found by its old name until an upgraded one writes its inventory.)
ALTER TABLE inventory ADD COLUMN search text COLLATE "C";
CREATE INDEX inventory_search_missing ON inventory (device_id) WHERE search IS NULL;

-- The dashboard's counts (storage.FleetCounter) group these instead of
-- reading every document (about 10 us each): the platform and OS version
-- as bytes (a device may report U+0000, which text cannot hold), written
-- with search (and filled with it), and when each enrollment was last
-- seen, taken from the documents here: "last_seen" is a top-level member
-- holding an RFC 3339 time, and JSON escapes every quote inside a string.
ALTER TABLE inventory ADD COLUMN platform bytea, ADD COLUMN os_version bytea, ADD COLUMN retired boolean;
ALTER TABLE enrollments ADD COLUMN last_seen timestamptz;
UPDATE enrollments SET last_seen = substring(doc::text FROM '"last_seen":"([^"]*)"')::timestamptz;

DO $$
DECLARE
    trgm name;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm not created (%): device search reads the search column without an index', SQLERRM;
        END;
    END IF;
    -- The extension lives in one schema per database, maybe not this one.
    SELECT n.nspname INTO trgm FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    IF trgm IS NOT NULL THEN
        EXECUTE format('CREATE INDEX inventory_search_trgm ON inventory USING gin (search %I.gin_trgm_ops)', trgm);
    END IF;
END
$$;

-- Version 15: the fleet-wide command log (storage.CommandLog) walks every
-- target by queue position, newest first; seqs come from queue_seq, so
-- this order is commit order.
CREATE INDEX targets_seq ON targets (((doc->>'seq')::bigint));

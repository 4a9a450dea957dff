-- Treasure Data's first example query ("a regular SELECT query from a table"), adapted to examples/events.csv.
-- event_time holds UNIX seconds before 2026-11-29T00:00:00Z (1795910400). Shifting it to now keeps
-- the demo inside LINE's 90-day window whenever it runs; with your own table, select your
-- timestamp column as it is.
SELECT
  order_id    AS deduplication_key,
  event_type,
  source_type,
  event_time + (CAST(epoch(current_timestamp) AS BIGINT) - 1795910400) AS event_timestamp,
  phone,
  email
FROM 'examples/events.csv'

-- The conversions of the session's day (${session_date}, Asia/Tokyo), from the sample events.
-- event_time holds UNIX seconds before 2026-11-29T00:00:00Z; shifting them to the session keeps
-- the sample inside LINE's 90-day window whatever day it runs for.
SELECT
  order_id    AS deduplication_key,
  event_type,
  event_name,
  source_type,
  event_time + (TD_SCHEDULED_TIME() - 1795910400) AS event_timestamp,
  email,
  phone
FROM read_csv('examples/events.csv', all_varchar = false)
WHERE event_type = 'conversion'

-- The day's conversions (the session's day, as TD_SCHEDULED_TIME() gives it), with their
-- timestamps moved to the session so the sample stays inside LINE's 90-day window.
SELECT
  order_id AS deduplication_key,
  event_type,
  event_name,
  source_type,
  CAST(event_time AS BIGINT) + (TD_SCHEDULED_TIME() - 1795910400) AS event_timestamp,
  email,
  phone,
  category
FROM raw_events
WHERE event_type = 'conversion' AND category IS NOT NULL

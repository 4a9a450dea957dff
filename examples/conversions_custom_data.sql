-- Treasure Data's second example query (with a custom_data column), adapted to examples/events.csv: every LINE
-- column, renamed from the table's own names, and the custom object built as JSON.
-- See conversions.sql for why event_time is shifted to now.
SELECT
  order_id     AS deduplication_key,
  event_type,
  event_name,
  source_type,
  event_time + (CAST(epoch(current_timestamp) AS BIGINT) - 1795910400) AS event_timestamp,
  email,
  phone,
  customer_id  AS external_id,
  browser_id,
  click_id,
  ifa,
  page_url     AS url,
  referrer,
  page_title   AS title,
  user_agent,
  ip_address,
  CASE WHEN value IS NOT NULL THEN
    json_object('value', value, 'currency', currency, 'quantity', quantity,
                'item_ids', [item_ids], 'category', category)
  END AS custom_data
FROM 'examples/events.csv'

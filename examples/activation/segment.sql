-- A segment of a customer profile table (profiles.csv): high-value customers. Its columns are
-- the table's own (mail, tel, customer_id, ...), not LINE's; mapping.json maps them.
-- seconds_ago keeps the example inside LINE's 90-day window whenever it runs.
SELECT
  customer_id,
  mail,
  tel,
  last_order_id,
  ltv_jpy,
  CAST(epoch(current_timestamp) AS BIGINT) - seconds_ago AS visited_at
FROM 'examples/activation/profiles.csv'
WHERE ltv_jpy >= 20000

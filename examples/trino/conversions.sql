-- Conversions built from Trino's TPC-H sample orders, as a warehouse table would hold them.
-- Shows Trino types mapped by the connector: a `timestamp(3) with time zone` becomes
-- event_timestamp, and a ROW becomes the custom object.
SELECT
  'order-' || CAST(o.orderkey AS varchar)                         AS deduplication_key,
  'conversion'                                                    AS event_type,
  'Purchase'                                                      AS event_name,
  'web'                                                           AS source_type,
  current_timestamp - (o.orderkey % 86400) * INTERVAL '1' SECOND  AS event_timestamp,
  'customer' || CAST(o.custkey AS varchar) || '@example.com'      AS email,
  CAST(ROW(CAST(o.totalprice AS decimal(12, 2)), 'JPY', o.shippriority + 1)
       AS ROW(value decimal(12, 2), currency varchar, quantity integer)) AS custom_data
FROM tpch.tiny.orders AS o
ORDER BY o.orderkey

-- ${brand}'s conversions for ${session_date}.
SELECT deduplication_key, event_type, event_name, source_type, event_timestamp, email, phone
FROM brand_conversions
WHERE category = '${brands[brand].category}'

"""The source stage: the user's SQL on an engine through SQLAlchemy, streamed in partitions or
Arrow batches, optionally restricted to one shard."""
from .engine import ARROW_BATCH_ROWS, DEFAULT_PARTITION_ROWS, Source, Stream
from .sharding import Shard, parse_shard, shard_of, shard_sql
from .urls import (DATABASE_URL_ENV, DEFAULT_DATABASE_URL, database_url, parse_database_url,
                   safe_url, url_secrets)

__all__ = ["ARROW_BATCH_ROWS", "DATABASE_URL_ENV", "DEFAULT_DATABASE_URL", "DEFAULT_PARTITION_ROWS",
           "Shard", "Source", "Stream", "database_url", "parse_database_url", "parse_shard", "safe_url", "shard_of",
           "shard_sql", "url_secrets"]

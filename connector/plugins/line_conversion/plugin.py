"""The `line_conversion` output: LINE Conversion API v1."""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

import phonenumbers

from connector.errors import ConfigError
from connector.plugins.base import OutputPlugin, Pushdown, RecordEncoder, Sink

from .client import DryRunSink, LineSink
from .fields import KNOWN_COLUMNS, REQUIRED_COLUMNS, VISIBLE_COLUMNS, columns_markdown
from .transform import LineEventEncoder


_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class LineConversionOutput(OutputPlugin):
    type = "line_conversion"
    required_columns = REQUIRED_COLUMNS
    known_columns = KNOWN_COLUMNS
    visible_columns = VISIBLE_COLUMNS
    shard_column = "deduplication_key"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        # A header value must be visible ASCII; a stray space or newline from an environment
        # variable would otherwise fail every request (and the HTTP library echoes the value).
        if not _VISIBLE_ASCII.fullmatch(config["access_token"]):
            raise ConfigError("access_token: must be visible ASCII characters without spaces "
                              "(check the variable for a trailing space or newline)")
        region = config.get("default_phone_region")
        if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(f"default_phone_region: {region!r} is not a region phonenumbers knows "
                              "(ISO 3166-1 alpha-2, for example JP)")
        parts = urlsplit(config["endpoint"])
        if not parts.hostname:
            raise ConfigError(f"endpoint: {config['endpoint']!r} has no host")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ConfigError(
                "endpoint: plain http is allowed only for loopback hosts (127.0.0.1, ::1, "
                "localhost); use https"
            )

    @property
    def batch_size(self) -> int:
        return int(self.config["max_records"])

    @property
    def ignore_invalid_records(self) -> bool:
        return bool(self.config["ignore_invalid_records"])

    def encoder(self, columns: Sequence[str]) -> RecordEncoder:
        return LineEventEncoder(
            columns,
            channel_id_present=bool(self.config.get("line_channel_id")),
            test_flag=bool(self.config["test_flag"]),
            default_phone_region=self.config.get("default_phone_region"),
        )

    def pushdown(self, sql: str, dialect: str,
                 described: Sequence[tuple[str, str]]) -> Pushdown | None:
        if dialect != "duckdb":
            return None
        from .pushdown import compile_plan  # pyarrow is imported only when it is used

        return compile_plan(
            sql, described,
            channel_id_present=bool(self.config.get("line_channel_id")),
            test_flag=bool(self.config["test_flag"]),
            default_phone_region=self.config.get("default_phone_region"),
        )

    def sink(self) -> Sink:
        c = self.config
        return LineSink(
            endpoint=c["endpoint"], tag_id=c["line_tag_id"], token=c["access_token"],
            channel_id=c.get("line_channel_id"), timeout=float(c["connection_timeout"]),
            max_retry=int(c["max_retry"]), initial_retry_wait=float(c["initial_retry_wait"]),
            max_retry_wait=float(c["max_retry_wait"]),
        )

    def dry_run_sink(self, path: str) -> Sink:
        return DryRunSink(path)

    def describe_destination(self) -> str:
        return f"{self.config['endpoint'].rstrip('/')}/v1/{self.config['line_tag_id']}/events"

    @classmethod
    def columns_markdown(cls) -> str:
        return columns_markdown()

"""The `line_conversion` output: LINE Conversion API v1."""
from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Mapping

import phonenumbers

from connector.delivery import DryRunSink, HttpBatchDelivery, RetryPolicy, Sink, check_base_url
from connector.errors import ConfigError
from connector.mapping import ColumnBinding
from connector.outputs.base import Emulator, OutputPlugin, Pushdown, RecordEncoder

from . import wire
from .docs import columns_markdown
from .encoders import LineEventEncoder
from .fields import KNOWN_COLUMNS, REQUIRED_COLUMNS, VISIBLE_COLUMNS

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


class LineConversionOutput(OutputPlugin):
    type = "line_conversion"
    schema_resource: ClassVar[tuple[str, str]] = ("schemas", "line_conversion.json")
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
        check_base_url(config["endpoint"], "endpoint")
        self._pushdown: Pushdown | None = None

    @property
    def batch_size(self) -> int:
        return int(self.config["max_records"])

    @property
    def ignore_invalid_records(self) -> bool:
        return bool(self.config["ignore_invalid_records"])

    def _encoder_options(self) -> dict[str, Any]:
        return {"channel_id_present": bool(self.config.get("line_channel_id")),
                "test_flag": bool(self.config["test_flag"]),
                "default_phone_region": self.config.get("default_phone_region")}

    def encoder(self, columns: ColumnBinding) -> RecordEncoder:
        return LineEventEncoder(columns.index, **self._encoder_options())

    def pushdown(self, sql: str, dialect: str, columns: ColumnBinding) -> Pushdown | None:
        if dialect != "duckdb":
            return None
        from .encoders.pushdown import compile_pushdown  # pyarrow is imported only when used

        self._pushdown = compile_pushdown(sql, columns, **self._encoder_options())
        return self._pushdown

    def sink(self) -> Sink:
        c = self.config
        return HttpBatchDelivery(
            url=wire.events_url(c["endpoint"], c["line_tag_id"]),
            headers=wire.request_headers(c["access_token"], c.get("line_channel_id")),
            classify=wire.classify,
            retry=RetryPolicy(max_retry=int(c["max_retry"]),
                              initial_wait=float(c["initial_retry_wait"]),
                              max_wait=float(c["max_retry_wait"])),
            timeout=float(c["connection_timeout"]),
            parallelism=int(c["parallelism"]),
            adaptive=bool(c["adaptive_parallelism"]),
        )

    def dry_run_sink(self, path: str) -> Sink:
        return DryRunSink(path)

    def describe_destination(self) -> str:
        return wire.events_url(self.config["endpoint"], self.config["line_tag_id"])

    def report_section(self) -> Mapping[str, Any]:
        # Rows whose event the engine built (pushdown); the rest were encoded in Python.
        return {"engine_encoded_rows": self._pushdown.engine_rows if self._pushdown else 0}

    @classmethod
    def docs_sections(cls) -> Mapping[str, str]:
        return {"columns": columns_markdown(), "statuses": wire.statuses_markdown()}

    @classmethod
    def emulator(cls) -> AbstractContextManager[Emulator]:
        from .sandbox.emulator import sandbox_emulator

        return sandbox_emulator()

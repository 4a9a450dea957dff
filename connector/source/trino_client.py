"""How the exporter reads Trino through the trino client: the fetch path, chosen by measurement.

Measured on a single-node Trino 476 (bench/trino_bench.py prints the figures):
- The coordinator gzips every result page unless the client asks otherwise. That roughly
  tripled its CPU per row, and the client paid a decompression, for bytes that cross a loopback
  or a LAN: results are asked for uncompressed (`Accept-Encoding: identity`), unless the URL's
  `http_headers` ask for an encoding (a slow link).
- Parsing each page's JSON is on the critical path (one page at a time, the next asked for only
  once this one is read): orjson parses a page about twice as fast as the standard library.
- The client converts every value to its Python type (one call per value); the pushdown asks
  for the raw JSON values instead and converts only what it reads (RowBatch).
- The spooling protocol needs an object store (S3, GCS or Azure) for its segments; Trino 476's
  file-system spooling manager has no local file system, so it is not measured here.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import orjson
import requests
import sqlalchemy as sa

from connector.errors import ConfigError, SourceError
from connector.records import RowBatch

# Rows per RowBatch: about one page of the client protocol.
TRINO_BATCH_ROWS = 2048


class _Response(requests.Response):
    """A response whose JSON is parsed by orjson (the standard library's parser, as requests
    has it, on what orjson refuses)."""

    def json(self, **kwargs: Any) -> Any:
        if not kwargs:
            try:
                return orjson.loads(self.content)
            except orjson.JSONDecodeError:
                pass
        return super().json(**kwargs)


class _Session(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        # The URL's http_headers, sent with every request, win over this default.
        self.headers["Accept-Encoding"] = "identity"

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        response.__class__ = _Response
        return response


def install(engine: sa.engine.Engine) -> None:
    """Give each new trino connection of `engine` the fetch path above."""

    @sa.event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        if "http_session" not in cparams:
            session = _Session()
            # The client applies `verify` only to the session it would have made itself.
            session.verify = cparams.get("verify", True)
            cparams["http_session"] = session


def check_url(url: sa.engine.URL) -> None:
    """The URL options this module reads, checked before connecting."""
    headers = url.query.get("http_headers")
    if headers is not None:
        try:
            if not isinstance(json.loads(headers), dict):  # type: ignore[arg-type]
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError('--database: http_headers must be a JSON object, for example '
                              '{"Accept-Encoding": "gzip"}') from None


def converters(cursor: Any, names: list[str]) -> list[Callable[[Any], Any]]:
    """The trino client's own conversion of each column of the cursor's result (what the row
    path reads), raising SourceError as the row path would fail."""
    from trino.mapper import RowMapperFactory

    # The client keeps the columns' type signatures on its query object only.
    signatures = getattr(getattr(cursor, "_query", None), "columns", None)
    if not signatures:
        raise SourceError("the trino client gives no column types for its results "
                          "(use --no-pushdown)")
    mappers = RowMapperFactory().create(columns=signatures, legacy_primitive_types=False)

    def converter(name: str, mapper: Any) -> Callable[[Any], Any]:
        def convert(value: Any) -> Any:
            try:
                return mapper.map(value)
            except Exception as exc:  # noqa: BLE001 - as the client's own TrinoDataError
                raise SourceError(f"query failed while reading rows: column {name!r}: "
                                  f"{type(exc).__name__}") from None
        return convert

    return [converter(n, m) for n, m in zip(names, mappers.columns)]


def batches(cursor: Any, convert: list[Callable[[Any], Any]]) -> Iterator[RowBatch]:
    """The cursor's rows (raw JSON values: legacy_primitive_types) in RowBatches."""
    while True:
        rows = cursor.fetchmany(TRINO_BATCH_ROWS)
        if not rows:
            return
        yield RowBatch(rows, convert)

"""The LINE output's three encoders, each in its own module, none reading another's internals:

- `reference`: the definition, one field at a time;
- `fastpath`: Python generated per run from the same plan, byte-identical where it accepts;
- the pushdown: the field table compiled to the engine's SQL, byte-identical where the engine is
  sure, the reference deciding every other row: `sqlcore` (what every engine shares),
  `pushdown` (DuckDB), `pushdown_trino` (Trino).

`LineEventEncoder` is the row encoder the output hands the pipeline: the fast path first, the
reference when the fast path is not sure.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

from connector.outputs.base import RecordEncoder

from .fastpath import compile_fast
from .plan import EncodingOptions, FieldPlan, build_plan
from .reference import ReferenceEncoder

__all__ = ["EncodingOptions", "FieldPlan", "LineEventEncoder", "build_plan"]


class LineEventEncoder(RecordEncoder):
    """Builds, validates and encodes one event per row; raises FieldError on the first broken
    rule."""

    def __init__(self, columns: Mapping[str, int], *, channel_id_present: bool, test_flag: bool,
                 default_phone_region: str | None, clock: Callable[[], float] = time.time,
                 fast: bool = True) -> None:
        self.plan = build_plan(columns, EncodingOptions(channel_id_present, test_flag,
                                                        default_phone_region))
        self._reference = ReferenceEncoder(self.plan)
        self._clock = clock
        # Refreshed per partition by the runtime via refresh_clock(); reading the clock per row
        # would cost more than the window check itself.
        self._now = clock()
        self._fast = compile_fast(self.plan) if fast else None

    def refresh_clock(self) -> None:
        self._now = self._clock()

    @property
    def now(self) -> float:
        """The clock reading the window checks use (refreshed per partition)."""
        return self._now

    def build(self, row: Sequence[Any]) -> dict[str, Any]:
        return self._reference.build(row, self._now)

    def encode(self, row: Sequence[Any]) -> bytes:
        fast = self._fast
        if fast is not None:
            try:
                out = fast(row, self._now)
            except Exception:  # noqa: BLE001 - the reference decides (and names the error)
                out = None
            if out is not None:
                return out
        return self._reference.encode(row, self._now)

    def encode_reference(self, row: Sequence[Any]) -> bytes:
        """The reference path alone (for tests and benchmarks)."""
        return self._reference.encode(row, self._now)

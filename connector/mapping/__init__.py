"""The mapping stage, between the query and the output: which result columns reach the output,
under which names. It compiles to a SQL projection around the user's query, so the engine does
the work and everything after it sees plain columns.

Today the mapping is the identity (every column, as named). The binding resolves the mapped
names against the output's columns once per run.
"""
from __future__ import annotations

from dataclasses import dataclass

from .binding import ColumnBinding, bind_columns

__all__ = ["ColumnBinding", "OutputMapping", "bind_columns"]


@dataclass(frozen=True)
class OutputMapping:
    """How query columns become output columns. The empty mapping passes every column as is."""

    def is_identity(self) -> bool:
        return True

    def apply(self, sql: str, dialect: str) -> str:
        """The user's query wrapped in the mapping's projection."""
        return sql

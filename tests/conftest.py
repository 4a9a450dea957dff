"""Shared fixtures: a real sandbox on loopback (helpers live in helpers.py)."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from connector.outputs.line_conversion.sandbox import run_sandbox


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Any]:
    with run_sandbox() as sb:
        yield sb


@pytest.fixture
def sandbox(sandbox_server: Any) -> Any:
    sandbox_server.reset()
    sandbox_server.clear_faults()
    return sandbox_server

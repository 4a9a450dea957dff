"""Shared fixtures: a real sandbox on loopback, the local Trino server (helpers live in
helpers.py)."""
from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

from helpers import trino_url

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


@pytest.fixture(scope="session")
def trino() -> str:
    """The local Trino server's URL; under CI=true a missing server fails the test."""
    url = trino_url()
    if url is None:
        message = "no Trino server on 127.0.0.1 (start one with: bash .ci/trino.sh start)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url

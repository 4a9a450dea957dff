"""Shared fixtures: a real sandbox on loopback, the local Trino server (helpers live in
helpers.py); the property-based tests' profiles."""
from __future__ import annotations

import os
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, settings

from helpers import required_service_missing, trino_url

from connector.outputs.line_conversion.sandbox import run_sandbox

# Property-based tests: a modest number of generated examples per test by default (the whole
# suite stays within CI's budget); HYPOTHESIS_PROFILE=deep runs many more (see docs/testing.md).
# No deadline: the machine is shared and each example runs real SQL, so timings are noisy.
_COMMON: dict[str, Any] = dict(deadline=None, print_blob=True,
                               suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 40)),
                          **_COMMON)
settings.register_profile("deep", max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 2000)),
                          **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
        required_service_missing("no Trino server on 127.0.0.1 (start one with: bash .ci/trino.sh "
                                 "start)")
    return url

"""The sandbox as the LINE output's emulator, for `connector demo`."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from connector.wording import plural

from .server import Sandbox, run_sandbox


class SandboxEmulator:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.url = sandbox.url
        self.config: Mapping[str, Any] = {"endpoint": sandbox.url}

    def banner(self) -> str:
        return f"LINE sandbox listening at {self.url} (console: {self.url}/)"

    def summary(self) -> str:
        stats = self.sandbox.stats()
        return (f"sandbox received {plural(stats['requests'], 'request')} and stored "
                f"{plural(stats['accepted'], 'event')}")


@contextmanager
def sandbox_emulator() -> Iterator[SandboxEmulator]:
    with run_sandbox() as sandbox:
        yield SandboxEmulator(sandbox)

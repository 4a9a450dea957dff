"""The command line: thin commands over `connector.run_export` and the registries.

    connector QUERY_FILE --result RESULT ...   export (connector.cli.export)
    connector outputs | docs | demo | schedule | scheduler   built-in commands
    connector connections | secrets            saved connections and secrets
    connector NAME ...                         commands that installed outputs add (e.g. sandbox)

Exit status: 0 success, 1 the job failed, 2 bad usage or configuration.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence

from connector.outputs import command_names, load_command

from . import connections, demo, docs, export, outputs, schedule, scheduler, secrets

BUILTIN: dict[str, Callable[[Sequence[str]], int]] = {
    "outputs": outputs.main,
    "docs": docs.main,
    "demo": demo.main,
    "connections": connections.main,
    "secrets": secrets.main,
    "schedule": schedule.main,
    "scheduler": scheduler.main,
}


def commands() -> list[str]:
    return sorted({*BUILTIN, *command_names()})


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv:
        command = BUILTIN.get(argv[0]) or load_command(argv[0])
        if command is not None:
            return command(argv[1:])
    return export.main(argv, commands())

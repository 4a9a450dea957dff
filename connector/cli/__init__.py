"""The command line: thin commands over `connector.run_export` and the registries.

    connector QUERY_FILE --result RESULT ...   export (connector.cli.export)
    connector outputs | docs | demo            built-in commands
    connector schedule | workflow              scheduled exports, Treasure Workflow files
    connector scheduler                        the service that runs schedules on time
    connector activation                       saved activations (segment + output mapping)
    connector connections | secrets            saved connections and secrets
    connector NAME ...                         commands that installed outputs add (e.g. sandbox)

Exit status: 0 success, 1 the job failed, 2 bad usage or configuration.
"""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from connector.outputs import command_names, load_command

from . import (activation, connections, demo, docs, export, outputs, schedule, scheduler, secrets,
               workflow)

BUILTIN: dict[str, Callable[[Sequence[str]], int]] = {
    "outputs": outputs.main,
    "docs": docs.main,
    "demo": demo.main,
    "connections": connections.main,
    "secrets": secrets.main,
    "schedule": schedule.main,
    "scheduler": scheduler.main,
    "activation": activation.main,
    "workflow": workflow.main,
}


def commands() -> list[str]:
    return sorted({*BUILTIN, *command_names()})


DEBUG_ENV = "CONNECTOR_DEBUG"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv:
            command = BUILTIN.get(argv[0]) or load_command(argv[0])
            if command is not None:
                return command(argv[1:])
        return export.main(argv, commands())
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug, not bad input
        if os.environ.get(DEBUG_ENV):
            raise
        # The exception's text may quote a value (a token, an address): only its type and
        # where it was raised are shown.
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"connector: internal error: {type(exc).__name__} in {Path(frame.filename).name}:"
              f"{frame.lineno}. This is a bug; {DEBUG_ENV}=1 shows the traceback.",
              file=sys.stderr)
        return 1

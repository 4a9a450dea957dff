"""Loading a workflow file: read, compiled and checked, so that everything that can be refused is
refused before any task runs."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from connector.errors import ConfigError
from connector.session import zone

from .checks import check_workflow
from .definition import SUFFIX, Workflow, read_workflow
from .errors import WorkflowError
from .schedule_block import parse_schedule
from .tasks import compile_tasks


def load_workflow(path: str | Path, params: Mapping[str, Any] | None = None) -> Workflow:
    """Load, compile and check `path`; WorkflowError (exit 2) for anything that cannot run."""
    file = Path(path)
    if file.suffix != SUFFIX:
        raise WorkflowError(f"{path}: a workflow file name ends with {SUFFIX}")
    if not file.is_file():
        raise WorkflowError(f"{path}: no such workflow file")
    file = file.absolute()
    project = file.parent
    timezone, root_config = read_workflow(file, project)
    tz = timezone or "UTC"
    try:
        zone(tz)
    except ConfigError:
        raise WorkflowError(f"{file.name}: timezone: unknown time zone {tz!r} (an IANA name such "
                            "as Asia/Tokyo, or UTC)") from None
    schedule = parse_schedule(root_config["schedule"]) if root_config.get("schedule") else None
    name = file.name[:-len(SUFFIX)]
    root = compile_tasks("", "+" + name, root_config, project)
    workflow = Workflow(file, name, project, tz, schedule, root)
    workflow.warnings.extend(check_workflow(workflow, dict(params or {})))
    return workflow

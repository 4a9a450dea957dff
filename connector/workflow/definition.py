"""A workflow file, loaded, compiled and checked: everything that can be refused is refused here,
before any task runs."""
from __future__ import annotations

import os.path
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from .errors import WorkflowError
from .loader import load_file
from .schedule_block import ScheduleBlock
from .tasks import Task, compile_tasks, split_workflow_file

SUFFIX = ".dig"


@dataclass
class Workflow:
    path: Path
    name: str  # the file name without .dig, as digdag names a workflow
    project: Path  # the folder of the file: query files and call> targets must be inside it
    timezone: str
    schedule: ScheduleBlock | None
    root: Task
    warnings: list[str] = field(default_factory=list)


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.normpath(path)).relative_to(os.path.normpath(folder))
    except ValueError:
        return False
    return True


def project_file(workdir: Path, project: Path, name: str, what: str) -> Path:
    """A file a task names, relative to its folder, that must stay inside the project."""
    if not name:
        raise WorkflowError(f"{what}: the file name is empty")
    path = Path(os.path.normpath(workdir / name))
    if Path(name).is_absolute() or not _inside(path, project):
        raise WorkflowError(f"{what}: {name}: files must be inside the workflow's folder "
                            f"{project} (no absolute paths, no .. out of it)")
    return path


def read_workflow(path: Path, project: Path) -> tuple[str | None, dict[str, Any]]:
    """(timezone, root configuration) of a .dig file."""
    config = load_file(path, project)
    return split_workflow_file(path.name[:-len(SUFFIX)] if path.name.endswith(SUFFIX)
                               else path.name, config)


def called_workflow(task: Task, target: Any, project: Path) -> tuple[Path, Task]:
    """The workflow a call> task runs, compiled as its `^sub` group (its own timezone is
    ignored: the session stays the caller's)."""
    if not isinstance(target, str) or not target.strip():
        raise WorkflowError(f"{task.full_name}: call> needs a workflow file name")
    name = target.strip()
    if not name.endswith(SUFFIX):
        name += SUFFIX
    path = project_file(task.workdir, project, name, f"{task.full_name}: call>")
    if not path.is_file():
        raise WorkflowError(f"{task.full_name}: call>: {name}: no such workflow file")
    _, root = read_workflow(path, project)
    return path, compile_tasks(task.full_name, "^sub", root, path.parent)

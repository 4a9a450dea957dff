"""A workflow's tasks as digdag compiles them: a tree of groups (`+name:` children) and operator
tasks (exactly one `xxx>:` key), with the rules digdag checks before anything runs."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import WorkflowError

# Keys a group may hold (digdag's WorkflowCompiler), besides `+children` and `_disable`.
GROUP_KEYS = ("timezone", "schedule", "sla", "_parallel", "_background", "_after", "_error",
              "_check", "_retry", "_export", "_secrets")
# `_` keys an operator task may hold; any other is an error that names it.
TASK_KEYS = ("_do", "_else_do", "_parallel", "_background", "_after", "_error", "_check",
             "_retry", "_export", "_disable", "_type", "_command", "_secrets")
# Keys of a workflow file's top level (digdag's WorkflowFile), besides `+tasks`.
TOP_KEYS = ("timezone", "_export", "schedule", "sla", "_error", "_check", "_retry", "_parallel")


def suggest(key: str, candidates: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=3, cutoff=0.5)
    return f"'{key}' (did you mean {', '.join(close)}?)" if close else f"'{key}'"


@dataclass
class Task:
    """One task. `config` holds its own keys (not its children); `operator` is None for a
    group."""

    name: str  # its own part of the name: "+load", "^sub", "^error"
    full_name: str  # "+workflow+group+load"
    config: dict[str, Any]
    workdir: Path  # relative files (queries, call> targets) are read from here
    operator: str | None = None
    children: list["Task"] = field(default_factory=list)
    disabled: bool = False

    @property
    def command(self) -> Any:
        if "_type" in self.config:
            return self.config.get("_command")
        return self.config.get(f"{self.operator}>")

    @property
    def is_group(self) -> bool:
        return self.operator is None and not self.disabled

    def walk(self) -> "list[Task]":
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def compile_tasks(parent_full_name: str, name: str, config: Mapping[str, Any],
                  workdir: Path) -> Task:
    """`config` as a task named `name` under `parent_full_name`: a group of its `+children`, or
    an operator task. WorkflowError for what digdag refuses to compile."""
    if not isinstance(config, Mapping):
        raise WorkflowError(f"{parent_full_name}{name}: a task must be a mapping of keys, got "
                            f"{type(config).__name__}")
    full = parent_full_name + name
    children = [(k, v) for k, v in config.items() if k.startswith("+")]
    own = {k: v for k, v in config.items() if not k.startswith("+")}
    if own.get("_disable") is True or own.get("_disable") == "true":
        return Task(name, full, {"_disable": True}, workdir, disabled=True)
    operators = [k for k in own if k.endswith(">")]
    if "_type" in own or operators:
        if children:
            raise WorkflowError(f"{full}: a task can't have subtasks: it has an operator "
                                f"({(operators or ['_type'])[0]}) and {children[0][0]}")
        if len(operators) > 1 or ("_type" in own and operators):
            raise WorkflowError(f"{full}: a task can't have more than one operator: "
                                f"{', '.join(operators)}")
        unknown = [k for k in own if k.startswith("_") and k not in TASK_KEYS]
        if unknown:
            raise WorkflowError(f"{full}: unknown key {suggest(unknown[0], TASK_KEYS)}")
        operator = str(own["_type"]) if "_type" in own else operators[0][:-1]
        task = Task(name, full, own, workdir, operator=operator)
    else:
        invalid = [k for k in own if k not in GROUP_KEYS and k != "_disable"]
        if invalid:
            listed = ", ".join(suggest(k, GROUP_KEYS) for k in invalid)
            raise WorkflowError(f"{full}: contains invalid keys: {listed}")
        task = Task(name, full, own, workdir)
        for child_name, child in children:
            task.children.append(compile_tasks(full, child_name, child, workdir))
    for special in ("_error", "_check"):
        if special in own and own[special] is not None:
            compile_tasks(full, "^" + special[1:], own[special], workdir)
    return task


def split_workflow_file(name: str, config: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(timezone, the root group's configuration) of a workflow file; its top level may hold only
    `+tasks` and digdag's top-level keys."""
    unknown = [k for k in config if not k.startswith("+") and k not in TOP_KEYS]
    if unknown:
        listed = ", ".join(suggest(k, TOP_KEYS) for k in unknown)
        raise WorkflowError(f"workflow {name!r} includes unknown keys: {listed} (a task's name "
                            "starts with +)")
    timezone = config.get("timezone")
    if timezone is not None and not isinstance(timezone, str):
        raise WorkflowError(f"workflow {name!r}: timezone must be a name such as Asia/Tokyo")
    root = {k: v for k, v in config.items() if k != "timezone"}
    return timezone, root

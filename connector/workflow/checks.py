"""What is refused before any task runs (exit 2, naming the operator or key), and the warnings for
keys that mean nothing here.

Each task is checked with the parameters that reach it as written (the `-p` values and every
`_export` above it, not yet evaluated): a `td>` task's `result_connection` may come from an
`_export` of its group, as on Treasure Workflow.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import WorkflowError
from .operators import OPERATORS, is_template, supported
from .params import deep_merge
from .tasks import Task, compile_tasks

if TYPE_CHECKING:
    from .definition import Workflow

# Operators of Treasure Workflow that cannot run faithfully here, and why.
_WHY = {
    "sh": "it runs a shell command", "py": "it runs Python code", "rb": "it runs Ruby code",
    "http": "it calls an HTTP endpoint", "http_call": "it calls an HTTP endpoint",
    "mail": "it sends mail", "td_run": "it runs a query saved on Treasure Data",
    "td_result_export": "it exports a job result stored on Treasure Data",
    "td_load": "it runs a Treasure Data import", "td_for_each": "it loops over a Treasure Data "
    "query's results", "td_wait": "it polls Treasure Data", "td_wait_table": "it polls Treasure "
    "Data", "td_table_export": "it exports a Treasure Data table", "embulk": "it runs Embulk",
}
_GROUP_IGNORED = {"sla": "SLA alerts are not raised here", "_secrets": "secrets come from "
                  "connector secrets and the environment here"}
_USED_BY_EVERY_TASK = {"_do", "_else_do", "_parallel", "_background", "_after", "_error",
                       "_check", "_retry", "_export", "_disable", "_type", "_command", "_secrets"}


class Checker:
    def __init__(self, workflow: "Workflow", params: Mapping[str, Any]) -> None:
        self.workflow = workflow
        self.params = dict(params)
        self.warnings: list[str] = []
        self._ignored: dict[str, str] = {}
        self._calls: list[Path] = [workflow.path]

    def ignored(self, key: str, where: str) -> None:
        """A key that means nothing here: one warning per key, naming the first task."""
        if key not in self._ignored:
            self._ignored[key] = where
            self.warnings.append(f"{where}: {key} means nothing here and is ignored")

    def walk(self, task: Task, scope: Mapping[str, Any]) -> None:
        if task.disabled:
            return
        here = dict(scope)
        export = task.config.get("_export")
        if isinstance(export, Mapping):
            here = deep_merge(here, export)
        for key, why in _GROUP_IGNORED.items():
            if key in task.config and key not in self._ignored:
                self._ignored[key] = task.full_name
                self.warnings.append(f"{task.full_name}: {key}: {why}; ignored")
        self._retry(task)
        self._parallel(task)
        for special in ("_error", "_check"):
            body = task.config.get(special)
            if body is not None:
                self.walk(compile_tasks(task.full_name, "^" + special[1:], body, task.workdir),
                          here)
        if task.operator is None:
            for child in task.children:
                self.walk(child, here)
            return
        operator = OPERATORS.get(task.operator)
        if operator is None:
            why = _WHY.get(task.operator)
            reason = f": {why} outside Treasure Workflow" if why else ""
            raise WorkflowError(f"{task.full_name}: {task.operator}> cannot run here{reason} "
                                f"(supported operators: {supported()})")
        local = {k: v for k, v in task.config.items() if k not in ("_export", "_error", "_check")}
        operator.check(task, deep_merge(dict(here), local), self)
        op_key = f"{task.operator}>"
        unused = [k for k in task.config if k != op_key and not k.startswith("_")
                  and k not in operator.keys]
        for key in unused:
            self.warnings.append(f"{task.full_name}: {key} is not used by {op_key}")

    def _retry(self, task: Task) -> None:
        retry = task.config.get("_retry")
        if retry is None or is_template(retry) or isinstance(retry, int) and not isinstance(retry, bool):
            return
        if isinstance(retry, Mapping):
            limit = retry.get("limit")
            kind = retry.get("interval_type", "constant")
            if (isinstance(limit, int) or is_template(limit)) and (
                    is_template(kind) or str(kind).lower() in ("constant", "exponential")):
                return
            if not isinstance(limit, int) and not is_template(limit):
                raise WorkflowError(f"{task.full_name}: _retry: limit must be a number")
            raise WorkflowError(f"{task.full_name}: _retry: interval_type must be constant or "
                                "exponential")
        if isinstance(retry, str) and retry.strip().isdigit():
            return
        raise WorkflowError(f"{task.full_name}: _retry must be a number or "
                            "{limit: N, interval: SECONDS, interval_type: constant|exponential}")

    def _parallel(self, task: Task) -> None:
        value = task.config.get("_parallel")
        if value is None or isinstance(value, bool) or is_template(value):
            return
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return
        if isinstance(value, Mapping) and isinstance(value.get("limit"), int) and value["limit"] > 0:
            return
        raise WorkflowError(f"{task.full_name}: _parallel must be true, false or {{limit: N}}")

    def called(self, path: Path, sub: Task, scope: Mapping[str, Any]) -> None:
        """A call> target, checked where it is called (a file calling itself is refused)."""
        if path in self._calls:
            chain = " -> ".join(p.name for p in [*self._calls, path])
            raise WorkflowError(f"{sub.full_name}: call> cycle: {chain}")
        self._calls.append(path)
        try:
            self.walk(sub, scope)
        finally:
            self._calls.pop()


def check_workflow(workflow: "Workflow", params: Mapping[str, Any]) -> list[str]:
    """WorkflowError for the first thing that cannot run; the warnings otherwise."""
    checker = Checker(workflow, params)
    checker.walk(workflow.root, dict(params))
    return checker.warnings


def check_called(workflow: "Workflow", sub: Task) -> list[str]:
    """A call> target named by a template, checked when its task runs."""
    checker = Checker(workflow, {})
    checker.walk(sub, {})
    return checker.warnings

"""Running a workflow's tasks as digdag runs them.

- A group's children run in file order; `_parallel: true` runs them at the same time (at most
  `max_parallel` tasks do work at once in the whole run), `_parallel: {limit: N}` in batches of
  N; `_background: true` lets the next child start; `_after` orders children of a parallel group.
- A task that fails stops the children after it (those that wait for it); children that do not
  wait for it still run. `_retry` runs a failed task (a group: all of it) again; `_error` tasks
  run once a task has failed for good; `_check` tasks run after it succeeded and can fail it.
- Parameters: the `-p` values < each `_export` from the top down, with what earlier tasks stored
  (td.last_job_id, ...) < the session variables and task_name; `_export` reaches only the task
  and its children.
"""
from __future__ import annotations

import copy
import threading
import time
import uuid
import zlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from connector.cancel import CancelToken
from connector.errors import Cancelled, ConnectorError
from connector.masking import Redactor
from connector.session import SessionContext

from .checks import check_called
from .database import Database
from .definition import Workflow
from .load import load_workflow
from .errors import TaskFailed, WorkflowError
from .expressions import Evaluator
from .operators import OPERATORS, OpContext, OpResult, parse_bool, parse_int
from .params import Stored, deep_merge
from .report import (TaskRecord, WorkflowObserver, WorkflowResult, new_run_dir, write_json)
from .tasks import Task, compile_tasks

DEFAULT_MAX_PARALLEL = 4
RUNS_FOLDER = Path(".connector") / "runs"


@dataclass(frozen=True)
class WorkflowSpec:
    """One run of a workflow file, as a value (a command or a schedule's slot builds it)."""

    path: str
    params: Mapping[str, Any] = field(default_factory=dict)  # -p KEY=VALUE
    # The session; its zone should be the workflow's (see session_for).
    session: SessionContext = field(default_factory=SessionContext)
    database_url: str | None = None
    runs_dir: str | None = None  # where run folders go (default: .connector/runs/<workflow>)
    dry_run: bool = False  # exports send nothing: request bodies go to the run folder
    max_parallel: int = DEFAULT_MAX_PARALLEL


def default_runs_dir(workflow: Workflow) -> Path:
    return workflow.project / RUNS_FOLDER / workflow.name


@dataclass
class _Retry:
    limit: int = 0
    interval: float = 0.0
    exponential: bool = False
    max_interval: float | None = None

    def wait(self, retry_count: int) -> float:
        if not self.exponential:
            return self.interval
        seconds = self.interval * (2 ** retry_count)
        return min(seconds, self.max_interval) if self.max_interval is not None else seconds


class RunState:
    """What every task of one run shares."""

    def __init__(self, workflow: Workflow, spec: WorkflowSpec, session: SessionContext,
                 run_dir: Path, attempt: int, cancel: CancelToken, observer: WorkflowObserver,
                 redactor: Redactor) -> None:
        self.workflow = workflow
        self.spec = spec
        self.session = session
        self.unixtime = session.unixtime
        self.run_dir = run_dir
        self.cancel = cancel
        self.observer = observer
        self.redactor = redactor
        self.dry_run = spec.dry_run
        self.width = max(1, spec.max_parallel)
        self._leaves = threading.BoundedSemaphore(self.width)
        self._lock = threading.Lock()
        self._job = 0
        self.records: list[TaskRecord] = []
        self.database: Database  # set by run_workflow
        self.evaluator: Evaluator
        key = f"{workflow.path}|{self.unixtime}"
        self.runtime: dict[str, Any] = {
            **session.parameters(),
            "session_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
            "session_id": zlib.crc32(key.encode()) & 0x7FFFFFFF,
            "attempt_id": attempt,
            "project_id": zlib.crc32(str(workflow.project).encode()) & 0x7FFFFFFF,
            "retry_attempt_name": None,
        }
        for prefix in ("last_executed_session_",):  # set by digdag only for scheduled sessions
            for suffix in ("time", "date", "date_compact", "local_time", "unixtime"):
                self.runtime[prefix + suffix] = ""
            self.runtime[prefix + "tz_offset"] = "+0000"

    # ------------------------------------------------------------------ shared services
    def warn(self, message: str) -> None:
        self.observer.warning(self.redactor(message))

    def next_job_id(self) -> int:
        with self._lock:
            self._job += 1
            return self._job

    @contextmanager
    def leaf(self) -> Iterator[None]:
        """A slot for a task's work (queries, exports): at most `max_parallel` at once."""
        self._leaves.acquire()
        try:
            yield
        finally:
            self._leaves.release()

    def record(self, record: TaskRecord) -> None:
        if record.error:
            record.error = self.redactor(record.error)
        with self._lock:
            self.records.append(record)
        self.observer.task_finished(record)

    def check_called(self, sub: Task) -> None:
        for message in check_called(self.workflow, sub):
            self.warn(message)

    # ------------------------------------------------------------------ tasks
    def execute(self, task: Task, ctx: dict[str, Any]) -> tuple[bool, Stored, str | None]:
        """Run `task` with the parameters `ctx` that reach it: (succeeded, what it stored, the
        error that failed it)."""
        if task.disabled:
            self.record(TaskRecord(task.full_name, None, "disabled"))
            return True, Stored(), None
        here = copy.deepcopy(ctx)
        export = task.config.get("_export")
        if isinstance(export, dict):
            deep_merge(here, export)
        try:
            retry = self._retry(task, here)
        except TaskFailed as exc:
            self.record(TaskRecord(task.full_name, task.operator, "error", error=str(exc),
                                   reason=exc.reason))
            return False, Stored(), str(exc)
        count = 0
        while True:
            ok, stored, error = self._attempt(task, here)
            if ok or self.cancel.cancelled or count >= retry.limit:
                break
            seconds = retry.wait(count)
            count += 1
            self.warn(f"{task.full_name}: failed; retry {count} of {retry.limit}"
                      + (f" in {seconds:g}s" if seconds else ""))
            if seconds and self.cancel.wait(seconds):
                break
        if not ok and not self.cancel.cancelled and task.config.get("_error") is not None:
            error_ctx = stored.apply(copy.deepcopy(here))
            error_ctx["error"] = {"message": error or "", "stacktrace": ""}
            handler = compile_tasks(task.full_name, "^error", task.config["_error"], task.workdir)
            self.execute(handler, error_ctx)
        return ok, stored, error

    def _evaluated(self, task: Task, here: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        """Some of a group's own keys, evaluated in its parameters."""
        wanted = {k: task.config[k] for k in keys if k in task.config}
        if not any(isinstance(v, str) and "$" in v for v in wanted.values()):
            return wanted
        params = {**copy.deepcopy(dict(here)), **self.runtime, "task_name": task.full_name}
        return self.evaluator.evaluate(wanted, params)

    def _retry(self, task: Task, here: Mapping[str, Any]) -> _Retry:
        value = self._evaluated(task, here, ("_retry",)).get("_retry")
        if value is None:
            return _Retry()
        if isinstance(value, dict):
            kind = str(value.get("interval_type", "constant")).lower()
            return _Retry(parse_int(value.get("limit"), "_retry: limit"),
                          float(parse_int(value.get("interval", 0), "_retry: interval")),
                          kind == "exponential",
                          float(parse_int(value["max_interval"], "_retry: max_interval"))
                          if value.get("max_interval") is not None else None)
        return _Retry(parse_int(value, "_retry"))

    def _attempt(self, task: Task, here: dict[str, Any]) -> tuple[bool, Stored, str | None]:
        if self.cancel.cancelled:
            return False, Stored(), "interrupted"
        if task.operator is None:
            try:
                ok, stored, error = self._group(task, here)
            except TaskFailed as exc:
                self.record(TaskRecord(task.full_name, None, "error", error=str(exc),
                                       reason=exc.reason))
                return False, Stored(), str(exc)
        else:
            ok, stored, error = self._operator(task, here)
        if ok and task.config.get("_check") is not None:
            check = compile_tasks(task.full_name, "^check", task.config["_check"], task.workdir)
            check_ok, check_stored, check_error = self.execute(check, stored.apply(copy.deepcopy(here)))
            stored.extend(check_stored)
            if not check_ok:
                return False, stored, check_error
        return ok, stored, error

    def _operator(self, task: Task, here: dict[str, Any]) -> tuple[bool, Stored, str | None]:
        operator = OPERATORS[task.operator or ""]
        started = time.monotonic()
        started_at = time.time()
        result = OpResult()
        try:
            params = deep_merge(copy.deepcopy(here), {**self.runtime, "task_name": task.full_name})
            local = {k: v for k, v in task.config.items() if k not in ("_export", "_error", "_check")}
            config = self.evaluator.evaluate(deep_merge(copy.deepcopy(params), local), params)
            result = operator.run(OpContext(self, task, config))
        except TaskFailed as exc:
            partial = getattr(exc, "result", None)
            if isinstance(partial, OpResult):
                result = partial
            self._finish(task, started, started_at, result, "error", str(exc), exc.reason)
            return False, Stored(), str(exc)
        except Cancelled:
            self._finish(task, started, started_at, result, "interrupted", "interrupted", "interrupted")
            return False, Stored(), "interrupted"
        except ConnectorError as exc:
            self._finish(task, started, started_at, result, "error", str(exc), exc.reason)
            return False, Stored(), str(exc)
        self._finish(task, started, started_at, result, "success", None, None)
        stored = result.stored
        if result.subtasks is not None:
            ok, sub_stored, error = self.execute(result.subtasks, stored.apply(copy.deepcopy(here)))
            stored.extend(sub_stored)
            if not ok:
                return False, stored, error
        return True, stored, None

    def _finish(self, task: Task, started: float, started_at: float, result: OpResult,
                status: str, error: str | None, reason: str | None) -> None:
        self.record(TaskRecord(task.full_name, task.operator, status,
                               round(time.monotonic() - started, 3), result.rows, result.events,
                               error, reason, result.report, result.job_id, result.counts,
                               started_at))

    # ------------------------------------------------------------------ groups
    def _group(self, task: Task, here: dict[str, Any]) -> tuple[bool, Stored, str | None]:
        children = task.children
        if not children:
            return True, Stored(), None
        parallel = self._evaluated(task, here, ("_parallel",)).get("_parallel")
        ups = upstreams(task, children, parallel)
        closure = _transitive(ups)
        status: list[str | None] = [None] * len(children)
        stores = [Stored() for _ in children]
        errors: list[str | None] = [None] * len(children)
        running: dict[Future[Any], int] = {}

        def start(pool: ThreadPoolExecutor, i: int) -> None:
            ctx = copy.deepcopy(here)
            for u in sorted(closure[i]):
                stores[u].apply(ctx)
            running[pool.submit(self.execute, children[i], ctx)] = i
            status[i] = "running"

        with ThreadPoolExecutor(max_workers=self.width,
                                thread_name_prefix="workflow-task") as pool:
            while True:
                for i, child in enumerate(children):
                    if status[i] is not None:
                        continue
                    if any(status[u] in ("error", "blocked") for u in ups[i]):
                        status[i] = "blocked"
                        self.record(TaskRecord(child.full_name, child.operator, "blocked",
                                               error="an earlier task failed"))
                    elif (all(status[u] == "success" for u in ups[i])
                          and not self.cancel.cancelled and len(running) < self.width):
                        start(pool, i)
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    i = running.pop(future)
                    ok, stored, error = future.result()
                    status[i] = "success" if ok else "error"
                    stores[i] = stored
                    errors[i] = error
        merged = Stored()
        for s in stores:
            merged.extend(s)
        failed = [e for s, e in zip(status, errors) if s == "error"]
        if failed or any(s is None for s in status):  # an error, or cancelled before starting
            return False, merged, failed[0] if failed else "interrupted"
        return True, merged, None


def upstreams(task: Task, children: list[Task], parallel: Any) -> list[list[int]]:
    """Which children each child waits for, by digdag's rules."""
    names = {c.name: i for i, c in enumerate(children)}
    ups: list[list[int]] = [[] for _ in children]
    limit = 0
    if isinstance(parallel, dict):
        limit = parse_int(parallel.get("limit"), f"{task.full_name}: _parallel: limit")
        is_parallel = True
    else:
        is_parallel = parse_bool(parallel, f"{task.full_name}: _parallel") if parallel is not None else False
    if is_parallel:
        if limit > 0:
            for i in range(len(children)):
                chunk = i // limit
                ups[i] = list(range(max(0, (chunk - 1) * limit), chunk * limit))
        for i, child in enumerate(children):
            if parse_bool(child.config.get("_background", False), "_background"):
                raise TaskFailed(f"{child.full_name}: _background: true is invalid (unnecessary) "
                                 "when its parent has _parallel: true", "config_error")
            after = child.config.get("_after") or []
            for name in [after] if isinstance(after, str) else after:
                if name not in names:
                    raise TaskFailed(f"{child.full_name}: _after: task {name!r} does not exist",
                                     "config_error")
                ups[i].append(names[name])
        return ups
    before: list[int] = []
    for i, child in enumerate(children):
        if "_after" in child.config:
            raise TaskFailed(f"{child.full_name}: _after is valid only when the parent has "
                             "_parallel: true", "config_error")
        if parse_bool(child.config.get("_background", False), "_background"):
            before.append(i)
        else:
            ups[i] = list(before)
            before = [i]
    return ups


def _transitive(ups: list[list[int]]) -> list[set[int]]:
    out: list[set[int]] = []
    for i in range(len(ups)):
        seen: set[int] = set()
        stack = list(ups[i])
        while stack:
            u = stack.pop()
            if u not in seen:
                seen.add(u)
                stack.extend(ups[u])
        out.append(seen)
    return out


def run_workflow(spec: WorkflowSpec, cancel: CancelToken | None = None,
                 observer: WorkflowObserver | None = None,
                 workflow: Workflow | None = None) -> WorkflowResult:
    """Run every task of the workflow to the end (or until `cancel`). WorkflowError (exit 2) for
    a file that cannot run, before any task runs; otherwise the result says how each task went."""
    cancel = cancel or CancelToken()
    observer = observer or WorkflowObserver()
    workflow = workflow or load_workflow(spec.path, spec.params)
    session = spec.session.resolved()
    assert session.scheduled_time is not None
    base = Path(spec.runs_dir) if spec.runs_dir else default_runs_dir(workflow)
    run_dir, attempt = new_run_dir(base, session.scheduled_time)
    redactor = Redactor()
    state = RunState(workflow, spec, session, run_dir, attempt, cancel, observer, redactor)
    started = time.monotonic()
    for message in workflow.warnings:
        state.warn(message)
    result = WorkflowResult(workflow.name, session.parameters()["session_time"], "error",
                            run_dir, 0.0)
    try:
        state.database = Database(spec.database_url, run_dir, redactor, state.warn)
        try:
            with Evaluator() as evaluator:
                state.evaluator = evaluator
                ok, _, error = state.execute(workflow.root, dict(spec.params))
        finally:
            state.database.close()
        result.status = "success" if ok else "interrupted" if cancel.cancelled else "error"
        result.error = None if ok else redactor(error or "failed")
    except WorkflowError:
        raise
    finally:
        result.seconds = time.monotonic() - started
        result.tasks = list(state.records)
        write_json(run_dir / "run.json", {**result.to_dict(), "run_dir": str(run_dir),
                                          "database": getattr(state, "database", None)
                                          and state.database.describe(),
                                          "params": sorted(spec.params),
                                          "dry_run": spec.dry_run}, redactor)
    return result

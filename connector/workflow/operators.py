"""The operators a workflow can use here, each with what it checks before the run and what it
does when its task runs.

`td>` runs its query on the configured engine (DuckDB, Trino, ...) and sends the rows through
`run_export` when the task has an output (`result_url`, or `result_connection` with
`result_settings`); `create_table`/`insert_into` and `td_ddl>` write tables on that engine.
`if>`, `for_each>`, `loop>` and `call>` make subtasks; `echo>` and `fail>` say something.
"""
from __future__ import annotations

import copy
import datetime as dt
import decimal
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from connector.api import ExportObserver, ExportSpec, run_export
from connector.connections import ConnectionStore
from connector.errors import ConfigError
from connector.outputs import available_outputs
from connector.source import Source
from connector.source.tables import TableName

from .definition import called_workflow, project_file
from .errors import TaskFailed, WorkflowError
from .params import Stored, merge_default
from .report import safe_name
from .tasks import Task

# The run's shared state (runner.RunState) and the checker (checks.Checker) are passed in; this
# module does not import them (they import the operators).
RunState = Any
Checker = Any

SETTINGS_WITHOUT_CONNECTION = "result_settings is valid only if result_connection is set"
MAX_GENERATED = 1000  # subtasks one for_each>/loop> may make (digdag's default task limit)


@dataclass
class OpResult:
    stored: Stored = field(default_factory=Stored)
    subtasks: Task | None = None  # the `^sub` group the task runs next
    rows: int | None = None
    events: int | None = None
    report: str | None = None
    job_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class OpContext:
    state: RunState
    task: Task
    config: dict[str, Any]  # the task's parameters and keys, evaluated

    @property
    def command(self) -> Any:
        if "_type" in self.config:
            return self.config.get("_command")
        return self.config.get(f"{self.task.operator}>")


def is_template(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def parse_bool(value: Any, what: str) -> bool:
    """A boolean as digdag reads one from a parameter (templates make text)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
        if text == "":
            return False
    raise TaskFailed(f"{what}: expected true or false, got {json.dumps(value)}", "config_error")


def parse_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise TaskFailed(f"{what}: expected a number, got {json.dumps(value)}", "config_error")
    try:
        return int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise TaskFailed(f"{what}: expected a number, got {json.dumps(value)}",
                         "config_error") from None


def parse_json_value(value: Any, kind: type, what: str) -> Any:
    """A mapping or list written in YAML, or as JSON text (what a template gives)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TaskFailed(f"{what}: expected {_kind_name(kind)} or its JSON text, got "
                             f"{value[:80]!r}", "config_error") from None
    if not isinstance(value, kind):
        raise TaskFailed(f"{what}: expected {_kind_name(kind)}, got {type(value).__name__}",
                         "config_error")
    return value


def _kind_name(kind: type) -> str:
    return "a mapping" if kind is dict else "a list"


class Operator:
    name = ""
    keys: tuple[str, ...] = ()  # the task keys it reads
    ignored: tuple[str, ...] = ()  # keys that mean nothing here (warned about, then ignored)

    def check(self, task: Task, scope: Mapping[str, Any], checker: Checker) -> None:
        """Refuse (WorkflowError) what cannot run, before any task runs."""

    def run(self, ctx: OpContext) -> OpResult:
        raise NotImplementedError


# --------------------------------------------------------------------------- echo>, fail>

class Echo(Operator):
    name = "echo"

    def run(self, ctx: OpContext) -> OpResult:
        message = ctx.command
        text = message if isinstance(message, str) else json.dumps(message)
        ctx.state.observer.echo(ctx.state.redactor(text))
        return OpResult()


class Fail(Operator):
    name = "fail"

    def run(self, ctx: OpContext) -> OpResult:
        message = ctx.command
        raise TaskFailed(message if isinstance(message, str) and message else "fail> task")


# --------------------------------------------------------------------------- subtask makers

def _subtasks(ctx: OpContext, config: Mapping[str, Any]) -> Task:
    from .tasks import compile_tasks

    return compile_tasks(ctx.task.full_name, "^sub", config, ctx.task.workdir)


def _check_do(task: Task, scope: Mapping[str, Any], checker: Checker, keys: tuple[str, ...],
              extra: Mapping[str, Any]) -> None:
    from .tasks import compile_tasks

    for key in keys:
        body = task.config.get(key)
        if body is None:
            continue
        sub = compile_tasks(task.full_name, "^sub", body, task.workdir)
        checker.walk(sub, {**scope, **extra})


class If(Operator):
    name = "if"
    keys = ("_do", "_else_do")

    def check(self, task: Task, scope: Mapping[str, Any], checker: Checker) -> None:
        if task.config.get("_do") is None and task.config.get("_else_do") is None:
            raise WorkflowError(f"{task.full_name}: if>: both _do and _else_do are not specified")
        if not is_template(task.command) and not isinstance(task.command, bool):
            parse_bool(task.command, f"{task.full_name}: if>")
        _check_do(task, scope, checker, ("_do", "_else_do"), {})

    def run(self, ctx: OpContext) -> OpResult:
        condition = parse_bool(ctx.command, "if>")
        body = ctx.config.get("_do" if condition else "_else_do")
        return OpResult(subtasks=_subtasks(ctx, body) if body else None)


def _parallel_of(config: Mapping[str, Any]) -> dict[str, Any]:
    return {"_parallel": config["_parallel"]} if "_parallel" in config else {}


def _with_export(body: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    sub = copy.deepcopy(dict(body))
    export = sub.get("_export")
    sub["_export"] = {**(export if isinstance(export, dict) else {}), **values}
    return sub


def _name_tag(value: Any) -> str:
    """digdag's tag of a value in a generated task's name: its first 8 characters, URL-encoded."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    out = []
    for byte in text[:8].encode("utf-8"):
        ch = chr(byte)
        out.append(ch if ch.isascii() and (ch.isalnum() or ch in ".-*_") else f"%{byte:02X}")
    return "".join(out)


class ForEach(Operator):
    name = "for_each"
    keys = ("_do",)

    def check(self, task: Task, scope: Mapping[str, Any], checker: Checker) -> None:
        if not isinstance(task.config.get("_do"), Mapping):
            raise WorkflowError(f"{task.full_name}: for_each>: _do is required")
        names: dict[str, Any] = {}
        if isinstance(task.command, Mapping):
            names = {k: None for k in task.command}
        elif not is_template(task.command):
            raise WorkflowError(f"{task.full_name}: for_each>: expected a mapping of names to "
                                "lists, such as {fruit: [apple, orange]}")
        _check_do(task, scope, checker, ("_do",), names)

    def run(self, ctx: OpContext) -> OpResult:
        variables = parse_json_value(ctx.command, dict, "for_each>")
        entries: list[tuple[str, list[Any]]] = []
        count = 1
        for key, values in variables.items():
            items = parse_json_value(values, list, f"for_each>: {key}")
            entries.append((key, items))
            count *= len(items)
            if count > MAX_GENERATED:
                raise TaskFailed(f"for_each>: too many subtasks (limit {MAX_GENERATED})",
                                 "config_error")
        combos: list[list[tuple[int, str, int, Any]]] = [[]]
        for i, (key, items) in enumerate(entries):
            combos = [c + [(i, key, j, v)] for c in combos for j, v in enumerate(items)]
        if not entries:
            combos = []
        generated: dict[str, Any] = _parallel_of(ctx.config)
        for combo in combos:
            name = "+for-" + "&".join(f"{i}={_name_tag(k)}={j}={_name_tag(v)}"
                                      for i, k, j, v in combo)
            generated[name] = _with_export(ctx.config["_do"], {k: v for _, k, _, v in combo})
        return OpResult(subtasks=_subtasks(ctx, generated))


class Loop(Operator):
    name = "loop"
    keys = ("_do", "count")

    def check(self, task: Task, scope: Mapping[str, Any], checker: Checker) -> None:
        if not isinstance(task.config.get("_do"), Mapping):
            raise WorkflowError(f"{task.full_name}: loop>: _do is required")
        _check_do(task, scope, checker, ("_do",), {"i": 0})

    def run(self, ctx: OpContext) -> OpResult:
        count = parse_int(ctx.config.get("count", ctx.command), "loop>")
        if count > MAX_GENERATED:
            raise TaskFailed(f"loop>: too many subtasks (limit {MAX_GENERATED})", "config_error")
        generated: dict[str, Any] = _parallel_of(ctx.config)
        for i in range(max(count, 0)):
            generated[f"+loop-{i}"] = _with_export(ctx.config["_do"], {"i": i})
        return OpResult(subtasks=_subtasks(ctx, generated))


class Call(Operator):
    name = "call"

    def check(self, task: Task, scope: Mapping[str, Any], checker: Checker) -> None:
        if is_template(task.command):
            return  # read when the task runs
        path, sub = called_workflow(task, task.command, checker.workflow.project)
        checker.called(path, sub, scope)

    def run(self, ctx: OpContext) -> OpResult:
        try:
            _, sub = called_workflow(ctx.task, ctx.command, ctx.state.workflow.project)
            if is_template(ctx.task.command):
                # a file named by a template could not be checked before the run
                ctx.state.check_called(sub)
        except WorkflowError as exc:
            raise TaskFailed(str(exc), "config_error") from None
        return OpResult(subtasks=sub)


# --------------------------------------------------------------------------- td>

TD_KEYS = ("query", "database", "engine", "create_table", "insert_into", "download_file",
           "store_last_results", "preview", "result_url", "result_connection", "result_settings",
           "priority", "job_retry", "presto_pool_name", "hive_pool_name", "engine_version",
           "hive_engine_version", "endpoint", "use_ssl", "apikey", "td")
TD_IGNORED = ("priority", "job_retry", "engine_version", "hive_engine_version",
              "presto_pool_name", "hive_pool_name", "preview", "endpoint", "use_ssl")


def _effective(scope: Mapping[str, Any], key: str) -> Any:
    """A td> parameter as the operator reads it: the task's own (or exported) value, else the
    `td:` defaults."""
    if key in scope:
        return scope[key]
    td = scope.get("td")
    return td.get(key) if isinstance(td, Mapping) else None


def _present(scope: Mapping[str, Any], key: str) -> bool:
    td = scope.get("td")
    return key in scope or (isinstance(td, Mapping) and key in td)


def parse_result_url(value: Any, what: str, error: type[Exception]) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        message = (f"{what}: result_url: only its JSON form can run here, e.g. "
                   '{"type": "line_conversion", "line_tag_id": ..., "access_token": '
                   '"${secret:KEY}"} (URL forms such as td://... name outputs of Treasure Data)')
        raise error(message) if error is WorkflowError else error(message, "config_error")
    return parsed


class Td(Operator):
    name = "td"
    keys = TD_KEYS
    ignored = TD_IGNORED

    def check(self, task: Task, scope: Mapping[str, Any], checker: Checker) -> None:
        where = task.full_name
        command = task.command
        if command is None and not _present(scope, "query"):
            raise WorkflowError(f"{where}: td> needs a query file (td>: FILE.sql) or query:")
        if isinstance(command, str) and not is_template(command):
            path = project_file(task.workdir, checker.workflow.project, command, f"{where}: td>")
            if not path.is_file():
                raise WorkflowError(f"{where}: td>: {command}: no such query file")
        elif isinstance(command, Mapping) and "data" not in command:
            raise WorkflowError(f"{where}: td>: a mapping needs data: (the query)")
        if _present(scope, "download_file"):
            raise WorkflowError(f"{where}: download_file is not supported: a workflow here "
                                "exports rows through outputs; it writes no result files")
        if _present(scope, "result_settings") and not _present(scope, "result_connection"):
            raise WorkflowError(f"{where}: {SETTINGS_WITHOUT_CONNECTION}")
        if _present(scope, "result_url") and _present(scope, "result_connection"):
            raise WorkflowError(f"{where}: result_url and result_connection cannot be used "
                                "together: give the connection's name in result_connection "
                                "and the rest in result_settings")
        if _present(scope, "create_table") and _present(scope, "insert_into"):
            raise WorkflowError(f"{where}: setting both insert_into and create_table is invalid")
        writes = _present(scope, "create_table") or _present(scope, "insert_into")
        if writes and (_present(scope, "result_url") or _present(scope, "result_connection")):
            raise WorkflowError(f"{where}: create_table/insert_into cannot be combined with "
                                "result_url/result_connection: an insert has no rows to "
                                "export; export from the table in a later td> task")
        engine = _effective(scope, "engine")
        if engine is not None and not is_template(engine) and str(engine) != "presto":
            raise WorkflowError(f"{where}: engine: {engine} cannot run here: td> queries run on "
                                "the configured engine as Presto/Trino SQL (engine: presto)")
        url = _effective(scope, "result_url")
        if url is not None and not is_template(url) and not (
                isinstance(url, Mapping) and any(is_template(v) for v in url.values())):
            parse_result_url(url, where, WorkflowError)
        for key in self.ignored:
            if _present(scope, key):
                checker.ignored(key, where)

    # ------------------------------------------------------------------ run
    def run(self, ctx: OpContext) -> OpResult:
        state = ctx.state
        cfg = merge_default(copy.deepcopy(ctx.config),
                            ctx.config["td"] if isinstance(ctx.config.get("td"), dict) else {})
        engine = cfg.get("engine", "presto")
        if str(engine) != "presto":
            raise TaskFailed(f"engine: {engine} cannot run here (engine: presto)", "config_error")
        query = self._query(ctx, cfg)
        database = cfg.get("database")
        database = str(database) if database not in (None, "") else None
        store_last = parse_bool(cfg.get("store_last_results", False), "store_last_results")
        job_id = state.next_job_id()
        result = OpResult(job_id=job_id)
        last_results: dict[str, Any] | None = None
        if cfg.get("create_table") or cfg.get("insert_into"):
            result.rows = self._write(ctx, cfg, query, database)
            last_results = {}  # an insert has no result rows, as on Treasure Data
        elif cfg.get("result_url") is not None or cfg.get("result_connection") is not None:
            self._export(ctx, cfg, query, database, job_id, result)
            if store_last:
                last_results = self._first_row(ctx, query, database)
        else:
            result.rows, last_results = self._query_only(ctx, query, database)
        td: dict[str, Any] = {"last_job_id": str(job_id),
                              "last_job": {"id": str(job_id), "num_records": result.rows or 0}}
        if store_last:
            td["last_results"] = last_results or {}
            result.stored.add({"td": td}, resets=(("td", "last_results"),))
        else:
            result.stored.add({"td": td})
        return result

    def _query(self, ctx: OpContext, cfg: Mapping[str, Any]) -> str:
        command = ctx.command
        if isinstance(command, str) and command:
            try:
                path = project_file(ctx.task.workdir, ctx.state.workflow.project, command, "td>")
                text = path.read_text(encoding="utf-8")
            except WorkflowError as exc:
                raise TaskFailed(str(exc), "config_error") from None
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise TaskFailed(f"td>: cannot read {command}: {reason}", "config_error") from None
            sql = ctx.state.evaluator.template(text, cfg)
        elif isinstance(command, Mapping) and "data" in command:
            sql = str(command["data"])
        elif cfg.get("query") is not None:
            sql = str(cfg["query"])
        else:
            raise TaskFailed("td> needs a query file (td>: FILE.sql) or query:", "config_error")
        sql = sql.strip().rstrip(";").strip()
        if not sql:
            raise TaskFailed("td>: the query is empty", "config_error")
        return sql

    def _write(self, ctx: OpContext, cfg: Mapping[str, Any], query: str,
               database: str | None) -> int:
        state = ctx.state
        key = "create_table" if cfg.get("create_table") else "insert_into"
        table = TableName.parse(str(cfg[key]), database)
        with state.leaf(), state.database.writer(state.unixtime, state.cancel) as writer:
            state.database.ensure_schema(table.schema, writer, key)
            if database is not None:
                state.database.ensure_schema(database, writer, "database")
                writer.use_schema(database)
            if key == "create_table":
                return writer.create_table_as(table, query)
            return writer.insert_into(table, query)

    def _output(self, cfg: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
        if cfg.get("result_connection") is not None:
            settings = cfg.get("result_settings")
            if settings is None:
                return str(cfg["result_connection"]), {}
            return str(cfg["result_connection"]), parse_json_value(settings, dict, "result_settings")
        if cfg.get("result_settings") is not None:
            raise TaskFailed(SETTINGS_WITHOUT_CONNECTION, "config_error")
        return None, parse_result_url(cfg["result_url"], "td>", TaskFailed)

    def _export(self, ctx: OpContext, cfg: Mapping[str, Any], query: str, database: str | None,
                job_id: int, result: OpResult) -> None:
        state = ctx.state
        connection, output = self._output(cfg)
        if connection is not None:
            self._check_connection_type(connection)
        stem = f"{job_id}-{safe_name(ctx.task.full_name)}"
        report_path = state.run_dir / "reports" / f"{stem}.json"
        report_path.parent.mkdir(exist_ok=True)
        dry_run = None
        if state.dry_run:
            dry_run = state.run_dir / "dry-run" / f"{stem}.jsonl"
            dry_run.parent.mkdir(exist_ok=True)
        spec = ExportSpec(query=query, output=output, connection=connection,
                          database_url=state.database.export_url, schema=database,
                          session=state.session, report_path=str(report_path),
                          dry_run_path=str(dry_run) if dry_run else None)
        observer = _ExportWarnings(state, ctx.task.full_name)
        with state.leaf():
            state.database.schema_ready(database, state.unixtime, state.cancel, "database")
            with state.database.lock.reading():
                try:
                    report = run_export(spec, state.cancel, observer)
                except ConfigError as exc:
                    raise TaskFailed(str(exc), ConfigError.reason) from None
        result.report = str(report_path)
        result.rows = report.rows_read
        result.events = report.events_sent
        data = report.to_dict()
        result.counts = {k: int(data.get(k) or 0) for k in (
            "rows_read", "events_sent", "invalid_records", "rejected_events", "failed_events")}
        if report.status != "success":
            raise _ExportFailed(report.redact(report.error or report.reason or "export failed"),
                                report.reason or "error", result)

    def _check_connection_type(self, name: str) -> None:
        try:
            saved = ConnectionStore().get(name)
        except ConfigError as exc:
            raise TaskFailed(f"result_connection: {exc}", ConfigError.reason) from None
        installed = available_outputs()
        if saved.type not in installed:
            raise TaskFailed(
                f"result_connection {name!r} is a connection of type {saved.type!r}, and no "
                f"{saved.type} output is installed here (installed: "
                f"{', '.join(sorted(installed)) or 'none'}): this task cannot export locally; "
                "guard it with if> to run the workflow without it", ConfigError.reason)

    def _source(self, ctx: OpContext, database: str | None) -> Source:
        state = ctx.state
        return Source(state.database.url, cancel=state.cancel, scheduled_time=state.unixtime,
                      schema=database)

    def _query_only(self, ctx: OpContext, query: str,
                    database: str | None) -> tuple[int, dict[str, Any]]:
        state = ctx.state
        with state.leaf():
            state.database.schema_ready(database, state.unixtime, state.cancel, "database")
            with state.database.lock.reading():
                source = self._source(ctx, database)
                try:
                    rows = 0
                    first: dict[str, Any] = {}
                    with source.stream(query) as stream:
                        for part in stream.partitions:
                            if rows == 0 and part:
                                first = {c: _json_value(v) for c, v in zip(stream.columns, part[0])}
                            rows += len(part)
                    return rows, first
                finally:
                    source.dispose()

    def _first_row(self, ctx: OpContext, query: str, database: str | None) -> dict[str, Any]:
        with ctx.state.database.lock.reading():
            source = self._source(ctx, database)
            try:
                with source.stream(f"SELECT * FROM (\n{query}\n) AS q LIMIT 1") as stream:
                    for part in stream.partitions:
                        if part:
                            return {c: _json_value(v) for c, v in zip(stream.columns, part[0])}
            finally:
                source.dispose()
        return {}


class _ExportFailed(TaskFailed):
    def __init__(self, message: str, reason: str, result: OpResult) -> None:
        super().__init__(message, reason)
        self.result = result


class _ExportWarnings(ExportObserver):
    def __init__(self, state: RunState, task: str) -> None:
        self.state = state
        self.task = task

    def warning(self, message: str) -> None:
        self.state.warn(f"{self.task}: {message}")


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


# --------------------------------------------------------------------------- td_ddl>

DDL_KEYS = ("create_tables", "drop_tables", "empty_tables", "rename_tables", "create_databases",
            "drop_databases", "empty_databases", "database", "endpoint", "use_ssl", "apikey", "td")


class TdDdl(Operator):
    name = "td_ddl"
    keys = DDL_KEYS
    ignored = ("endpoint", "use_ssl")

    def check(self, task: Task, scope: Mapping[str, Any], checker: Checker) -> None:
        renames = task.config.get("rename_tables")
        if isinstance(renames, list):
            for entry in renames:
                if not isinstance(entry, Mapping) or "from" not in entry or "to" not in entry:
                    raise WorkflowError(f"{task.full_name}: rename_tables: each entry needs "
                                        "from: and to:")
                to = entry["to"]
                if isinstance(to, str) and "." in to and not is_template(to):
                    raise WorkflowError(f"{task.full_name}: 'to' option of rename_tables can't "
                                        "include database name")
        for key in self.ignored:
            if _present(scope, key):
                checker.ignored(key, task.full_name)

    def _list(self, cfg: Mapping[str, Any], key: str) -> list[Any]:
        value = cfg.get(key)
        if value is None:
            return []
        return parse_json_value(value, list, key)

    def run(self, ctx: OpContext) -> OpResult:
        state = ctx.state
        cfg = merge_default(copy.deepcopy(ctx.config),
                            ctx.config["td"] if isinstance(ctx.config.get("td"), dict) else {})
        database = cfg.get("database")
        database = str(database) if database not in (None, "") else None

        def tables(key: str) -> list[TableName]:
            return [TableName.parse(str(t), database) for t in self._list(cfg, key)]

        renames = []
        for entry in self._list(cfg, "rename_tables"):
            if not isinstance(entry, Mapping) or "from" not in entry or "to" not in entry:
                raise TaskFailed("rename_tables: each entry needs from: and to:", "config_error")
            if "." in str(entry["to"]):
                raise TaskFailed("'to' option of rename_tables can't include database name",
                                 "config_error")
            renames.append((TableName.parse(str(entry["from"]), database), str(entry["to"])))
        drop_dbs = [str(d) for d in self._list(cfg, "drop_databases") + self._list(cfg, "empty_databases")]
        create_dbs = [str(d) for d in self._list(cfg, "create_databases") + self._list(cfg, "empty_databases")]
        with state.leaf(), state.database.writer(state.unixtime, state.cancel) as writer:
            for name in drop_dbs:
                writer.drop_schema(name)
            for name in create_dbs:
                writer.create_schema(name)
            for table in tables("drop_tables") + tables("empty_tables"):
                writer.drop(table)
            for table in tables("create_tables") + tables("empty_tables"):
                state.database.ensure_schema(table.schema, writer, "create_tables")
                writer.create_empty(table)
            for source, target in renames:
                writer.rename(source, target)
        return OpResult()


OPERATORS: dict[str, Operator] = {op.name: op for op in (
    Td(), TdDdl(), If(), ForEach(), Loop(), Call(), Echo(), Fail())}


def supported() -> str:
    return ", ".join(f"{name}>" for name in OPERATORS)

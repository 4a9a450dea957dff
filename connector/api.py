"""The one way to run an export: an ExportSpec in, a JobReport out.

The command line, `connector demo`, and later the scheduler and the workflow runner all call
`run_export`; nothing builds an argument list to call the CLI.

    from connector import ExportSpec, run_export
    report = run_export(ExportSpec(query="SELECT ... FROM 'events.csv'",
                                   output={"type": "line_conversion", ...}))
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import result_url
from connector.cancel import CancelToken
from connector.errors import ConfigError
from connector.mapping import OutputMapping
from connector.masking import Redactor, show_value
from connector.pipeline import ExportJob
from connector.report import JobReport
from connector.session import SessionContext, render
from connector.source import Shard, Source, database_url, url_secrets

__all__ = ["ExportObserver", "ExportSpec", "SessionContext", "run_export"]


@dataclass(frozen=True)
class ExportSpec:
    """Everything one export needs, as a value: it can be stored, scheduled and run again."""

    query: str
    # The output configuration (the --result object), or with `connection` the settings
    # layered over that saved connection. ${NAME}, ${secret:KEY} and the connection's secret
    # references are read when the run starts, so a stored spec picks up a rotated token.
    output: Mapping[str, Any] = field(default_factory=dict)
    connection: str | None = None  # the name of a saved connection (connector connections)
    database_url: str | None = None  # None: $CONNECTOR_DATABASE_URL, else the embedded DuckDB
    # The schema unqualified table names are looked up in (a workflow task's `database`);
    # None: the engine's default (DuckDB's main, the schema in a Trino URL).
    schema: str | None = None
    mapping: OutputMapping = field(default_factory=OutputMapping)  # with segment metadata
    shard: Shard | None = None
    dry_run_path: str | None = None  # write the request bodies here instead of sending
    report_path: str | None = None  # write the JSON report here
    pushdown: bool = True  # let the engine build the records where the output supports it
    session: SessionContext = field(default_factory=SessionContext)  # the time the run is for
    activation: str | None = None  # the saved activation this run is of, for the report


class ExportObserver:
    """What a caller sees of a run while it goes; every method is optional."""

    def started(self, report: JobReport) -> None:
        """The run is configured and about to read; `report` is live from now on."""

    def warning(self, message: str) -> None:
        """A warning (already redacted), as it happens."""

    def report_not_written(self, report: JobReport) -> None:
        """The report file could not be written at the end (a warning says why); the
        report is final. The command line prints it rather than lose it."""

    def finished(self, report: JobReport) -> None:
        """The run ended; the report is final (and written, if asked and possible)."""


def check_writable(option: str, path: str | None) -> None:
    """Fail before the query runs, not after every event was sent.

    The path itself is tried (opened for appending, or created and removed again), because
    permission bits say nothing for root, and a long name, /proc or /sys, a read-only file
    system or a file where a folder should be only fail when the file is opened.
    """
    if path is None:
        return
    shown = show_value(path, 256)
    if not path.strip():
        raise ConfigError(f"{option}: the path is empty")
    try:
        if os.path.isdir(path):
            raise ConfigError(f"{option}: {shown} is a folder")
        if os.path.lexists(path):
            with open(path, "ab"):  # appends nothing: the file is left as it is
                pass
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            os.unlink(path)
    except OSError as exc:
        raise ConfigError(f"{option}: cannot write {shown}: {exc.strerror or exc}") from None
    except ValueError:  # a NUL character
        raise ConfigError(f"{option}: cannot write {shown}: not a valid path") from None


def check_output_paths(paths: Mapping[str, str | None]) -> None:
    """Every output path (option -> path) can be written, and no two are the same file."""
    seen: dict[str, str] = {}
    for option, path in paths.items():
        check_writable(option, path)
        if path is None:
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise ConfigError(f"{option} and {seen[key]} name the same file")
        seen[key] = option


def write_report(path: str, report: JobReport) -> None:
    Path(path).write_text(report_json(report) + "\n", encoding="utf-8")


def report_json(report: JobReport) -> str:
    """The report as the JSON of --report-file (redacted)."""
    return report.redact(json.dumps(report.to_dict(), indent=2))


def run_export(spec: ExportSpec, cancel: CancelToken | None = None,
               observer: ExportObserver | None = None) -> JobReport:
    """Run one export to the end, or until `cancel` is tripped.

    Raises ConfigError (its message redacted) for a configuration problem found before the run
    starts. Everything after that ends in the returned report, whose reason is `config_error`
    for a problem found once the query's columns are known.
    """
    cancel = cancel or CancelToken()
    observer = observer or ExportObserver()
    redactor = Redactor()
    warnings: list[str] = []  # found while configuring; shown once the report exists
    try:
        check_output_paths({"--report-file": spec.report_path, "--dry-run": spec.dry_run_path})
        sql = spec.query.strip().rstrip(";").strip()
        if not sql:
            raise ConfigError("the query is empty")
        # The run's time is fixed once: TD_SCHEDULED_TIME() and ${session_*} read this value.
        session = spec.session.resolved()
        sql = render(sql, session.variables())
        url = database_url(spec.database_url)
        # Every variable that is missing or empty, in the output and the URL, in one message.
        labelled = ({f"{k} (from {result_url.SETTINGS})": v for k, v in spec.output.items()}
                    if spec.connection else spec.output)
        result_url.check_env({**labelled, "--database": url})
        plugin = result_url.build_output(spec.output, redactor, connection=spec.connection,
                                         warn=warnings.append)
        expander = result_url.Expander(redactor=redactor, warn=warnings.append)
        url = expander.text("--database", url)
        for secret in url_secrets(url):
            redactor.add(secret)
        if spec.shard is not None and plugin.shard_column is None:
            raise ConfigError(f"--shard: the {plugin.type} output has no shard key")
        source = Source(url, cancel=cancel, scheduled_time=session.unixtime, schema=spec.schema)
    except ConfigError as exc:
        for message in warnings:
            observer.warning(redactor(message))
        raise ConfigError(redactor(str(exc))) from None

    report = JobReport(output_type=plugin.type, destination=plugin.describe_destination(),
                       dry_run=spec.dry_run_path is not None, redact=redactor)
    report.sections.append(plugin.report_section)
    if spec.activation is not None or spec.mapping.metadata:
        # Like Treasure Data's activation log: which activation, for which segment.
        context = {"name": spec.activation, "metadata": dict(spec.mapping.metadata)}
        report.sections.append(lambda: {"activation": context})
    observer.started(report)
    for message in warnings:
        observer.warning(report.warn(message))
    # The String Builder's timestamp: the time of the export, read once for every row.
    export_time = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    job = ExportJob(plugin, source, report, cancel=cancel, dry_run_path=spec.dry_run_path,
                    on_warning=observer.warning, pushdown=spec.pushdown, mapping=spec.mapping,
                    export_time=export_time, shard=spec.shard)
    try:
        job.run(sql)
    except ConfigError as exc:
        report.fail(ConfigError.reason, str(exc))
        report.finish()
    finally:
        source.dispose()
    if spec.report_path:
        try:
            write_report(spec.report_path, report)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            observer.warning(report.warn(f"--report-file: cannot write "
                                         f"{show_value(spec.report_path, 256)}: {reason}"))
            observer.report_not_written(report)
    observer.finished(report)
    return report
